// JSON for the REST API: entities as tracim's REST API spells them, and
// JsonBody, typed access to a request body with errors that name the field.
// Pure functions and value types: thread-compatible.
#ifndef TRACIM_BROKER_BACKEND_ENTITY_JSON_H_
#define TRACIM_BROKER_BACKEND_ENTITY_JSON_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/json/object.hpp"
#include "broker/store/entities.h"

namespace tracim::broker {

// RFC 3339 in UTC: "2024-01-02T03:04:05Z" (fractional seconds when any).
std::string JsonTime(absl::Time time);

// Ids that may be empty (0) are written as null, as tracim does.
boost::json::object UserJson(const User& user);
boost::json::object WorkspaceJson(const Workspace& workspace);
// `user`, when known, is embedded as "user".
boost::json::object MembershipJson(const Membership& membership, const User* user);
boost::json::object ContentJson(const Content& content);

// A request body that must be a JSON object. Accessors return nullopt for
// an absent field and INVALID_ARGUMENT (stable code "invalid_field") for a
// field of the wrong type: `field "email" must be a string`.
class JsonBody {
 public:
  // INVALID_ARGUMENT with stable code "invalid_json": "request body is not
  // valid JSON" or "request body must be a JSON object".
  static absl::StatusOr<JsonBody> Parse(absl::string_view body);

  absl::StatusOr<std::optional<std::string>> String(absl::string_view name) const;
  // `missing field "email"` when absent or null.
  absl::StatusOr<std::string> RequiredString(absl::string_view name) const;
  absl::StatusOr<std::optional<bool>> Bool(absl::string_view name) const;
  // An integer id; null reads as 0 ("none"). Negative ids are invalid.
  absl::StatusOr<std::optional<int64_t>> Id(absl::string_view name) const;
  absl::StatusOr<int64_t> RequiredId(absl::string_view name) const;

 private:
  explicit JsonBody(boost::json::object object) : object_(std::move(object)) {}
  boost::json::object object_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_ENTITY_JSON_H_
