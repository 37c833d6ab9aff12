// Authenticates an HTTP caller the way tracim does: HTTP Basic with an email
// or a username and the password, or Tracim-Api-Key + Tracim-Api-Login.
// Shared by the REST API (/api/) and the plugin route proxy (/plugins/).
// Thread-safe as the Store is; blocking (store queries, yescrypt): call it
// on the blocking executor, never on the HTTP io thread.
//
//   if (HasCredentials(request.head.headers)) {
//     absl::StatusOr<User> user = AuthenticateRequest(store, request.head.headers);
//     if (!user.ok()) respond(ErrorResponse(user.status()));  // 401 JSON
//   }
#ifndef TRACIM_BROKER_BACKEND_AUTHENTICATOR_H_
#define TRACIM_BROKER_BACKEND_AUTHENTICATOR_H_

#include "absl/status/statusor.h"
#include "broker/http/http_headers.h"
#include "broker/store/store.h"

namespace tracim::broker {

// Whether the request carries credentials of a scheme the broker reads
// (Authorization, Tracim-Api-Key or Tracim-Api-Login). Pure and cheap: the
// proxy uses it on the io thread to skip the blocking executor for anonymous
// calls.
bool HasCredentials(const HttpHeaders& headers);

// The authenticated user. Errors (UNAUTHENTICATED, for ErrorResponse → 401):
//  - no credentials: code authentication_required "authentication required:
//    HTTP Basic or Tracim-Api-Key + Tracim-Api-Login";
//  - one of Tracim-Api-Key / Tracim-Api-Login without the other;
//  - another scheme than Basic, malformed Basic credentials;
//  - wrong login, password or key (the store's message).
// Other codes come from the store (UNAVAILABLE: database busy).
absl::StatusOr<User> AuthenticateRequest(Store& store, const HttpHeaders& headers);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_AUTHENTICATOR_H_
