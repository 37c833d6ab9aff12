#include "broker/backend/authenticator.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "broker/backend/api_error.h"

namespace tracim::broker {

bool HasCredentials(const HttpHeaders& headers) {
  return headers.Has("Authorization") || headers.Has("Tracim-Api-Key") ||
         headers.Has("Tracim-Api-Login");
}

absl::StatusOr<User> AuthenticateRequest(Store& store, const HttpHeaders& headers) {
  std::optional<absl::string_view> key = headers.Get("Tracim-Api-Key");
  std::optional<absl::string_view> login = headers.Get("Tracim-Api-Login");
  if (key.has_value() || login.has_value()) {
    if (!key.has_value() || !login.has_value()) {
      return absl::UnauthenticatedError(
          "Tracim-Api-Key and Tracim-Api-Login must be sent together");
    }
    return store.VerifyApiKey(*login, *key);
  }
  std::optional<absl::string_view> authorization = headers.Get("Authorization");
  if (!authorization.has_value()) {
    return WithErrorCode(
        absl::UnauthenticatedError(
            "authentication required: HTTP Basic or Tracim-Api-Key + Tracim-Api-Login"),
        kAuthenticationRequired);
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  if (!absl::StartsWithIgnoreCase(value, "basic ")) {
    return absl::UnauthenticatedError("unsupported authorization scheme: use Basic");
  }
  value = absl::StripAsciiWhitespace(value.substr(6));
  std::string decoded;
  size_t colon = std::string::npos;
  if (absl::Base64Unescape(value, &decoded)) colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::UnauthenticatedError("malformed Basic credentials");
  }
  return store.VerifyPassword(absl::string_view(decoded).substr(0, colon),
                              absl::string_view(decoded).substr(colon + 1));
}

}  // namespace tracim::broker
