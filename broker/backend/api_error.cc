#include "broker/backend/api_error.h"

#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "spdlog/spdlog.h"

namespace tracim::broker {
namespace {

// The status payload that carries an explicit stable code.
constexpr absl::string_view kCodePayload = "type.tracim.org/rest_api.error_code";

}  // namespace

absl::Status WithErrorCode(absl::Status status, absl::string_view code) {
  status.SetPayload(kCodePayload, absl::Cord(code));
  return status;
}

HttpResponse ErrorResponse(const absl::Status& status) {
  int http_status = 500;
  std::string code = "internal_error";
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      http_status = 400;
      code = "invalid_field";
      break;
    case absl::StatusCode::kFailedPrecondition:
      http_status = 400;
      code = "failed_precondition";
      break;
    case absl::StatusCode::kUnauthenticated:
      http_status = 401;
      code = std::string(kInvalidCredentials);
      break;
    case absl::StatusCode::kPermissionDenied:
      http_status = 403;
      code = "forbidden";
      break;
    case absl::StatusCode::kNotFound:
      http_status = 404;
      code = "not_found";
      break;
    case absl::StatusCode::kAlreadyExists:
      http_status = 409;
      code = "already_exists";
      break;
    case absl::StatusCode::kUnavailable:
      http_status = 503;
      code = "unavailable";
      break;
    default:
      spdlog::error("rest api: {}", status.ToString());
      message = "internal error";
      break;
  }
  if (auto explicit_code = status.GetPayload(kCodePayload)) {
    code = std::string(*explicit_code);
  }
  HttpResponse response = JsonErrorResponse(http_status, code, message);
  if (http_status == 401) response.headers.Set("WWW-Authenticate", "Basic realm=\"tracim\"");
  return response;
}

}  // namespace tracim::broker
