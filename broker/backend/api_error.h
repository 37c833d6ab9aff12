// The REST API's error mapping: absl::Status (the store's deliberate codes,
// or our own) → HTTP status + {"code": "<stable code>", "message": "..."}.
// A status may carry an explicit stable code (WithErrorCode) where the
// absl code alone is too coarse ("invalid_json" vs "invalid_field").
// Pure functions: thread-safe.
#ifndef TRACIM_BROKER_BACKEND_API_ERROR_H_
#define TRACIM_BROKER_BACKEND_API_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/http/http_response.h"

namespace tracim::broker {

// Stable codes beyond the defaults of ErrorResponse.
inline constexpr absl::string_view kInvalidJson = "invalid_json";
inline constexpr absl::string_view kAuthenticationRequired = "authentication_required";
inline constexpr absl::string_view kInvalidCredentials = "invalid_credentials";

// `status` (not OK) with `code` attached as its stable error code.
absl::Status WithErrorCode(absl::Status status, absl::string_view code);

// INVALID_ARGUMENT → 400 invalid_field, FAILED_PRECONDITION → 400
// failed_precondition, UNAUTHENTICATED → 401 invalid_credentials (+
// WWW-Authenticate), PERMISSION_DENIED → 403 forbidden, NOT_FOUND → 404
// not_found, ALREADY_EXISTS → 409 already_exists, UNAVAILABLE → 503
// unavailable, anything else → 500 internal_error "internal error" (the
// cause is logged, not sent). An attached code replaces the default code.
HttpResponse ErrorResponse(const absl::Status& status);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_API_ERROR_H_
