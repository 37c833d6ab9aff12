#include "broker/backend/entity_json.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/json/parse.hpp"
#include "boost/json/value.hpp"
#include "broker/backend/api_error.h"

namespace tracim::broker {
namespace {

boost::json::value OptionalId(int64_t id) {
  if (id == 0) return nullptr;
  return id;
}

absl::Status WrongType(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("field \"", name, "\" must be ", what));
}

std::string View(absl::string_view s) { return std::string(s); }

}  // namespace

std::string JsonTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

boost::json::object UserJson(const User& user) {
  boost::json::object out;
  out["user_id"] = user.user_id;
  out["email"] = user.email;
  out["username"] = user.username;
  out["public_name"] = user.public_name;
  out["profile"] = View(ToString(user.profile));
  out["is_active"] = user.is_active;
  out["is_deleted"] = user.is_deleted;
  out["lang"] = user.lang;
  out["timezone"] = user.timezone;
  out["created"] = JsonTime(user.created);
  return out;
}

boost::json::object WorkspaceJson(const Workspace& workspace) {
  boost::json::object out;
  out["workspace_id"] = workspace.workspace_id;
  out["label"] = workspace.label;
  out["description"] = workspace.description;
  out["access_type"] = View(ToString(workspace.access_type));
  out["default_user_role"] = View(ToString(workspace.default_user_role));
  out["parent_id"] = OptionalId(workspace.parent_id);
  out["owner_id"] = OptionalId(workspace.owner_id);
  out["is_deleted"] = workspace.is_deleted;
  out["created"] = JsonTime(workspace.created);
  return out;
}

boost::json::object MembershipJson(const Membership& membership, const User* user) {
  boost::json::object out;
  out["workspace_id"] = membership.workspace_id;
  out["user_id"] = membership.user_id;
  out["role"] = View(ToString(membership.role));
  out["created"] = JsonTime(membership.created);
  if (user != nullptr) out["user"] = UserJson(*user);
  return out;
}

boost::json::object ContentJson(const Content& content) {
  boost::json::object out;
  out["content_id"] = content.content_id;
  out["workspace_id"] = content.workspace_id;
  out["parent_id"] = OptionalId(content.parent_id);
  out["content_type"] = View(ToString(content.content_type));
  out["label"] = content.label;
  out["raw_content"] = content.raw_content;
  out["file_name"] = content.file_name;
  out["file_extension"] = content.file_extension;
  out["file_mimetype"] = content.file_mimetype;
  out["status"] = View(ToString(content.status));
  out["is_deleted"] = content.is_deleted;
  out["is_archived"] = content.is_archived;
  out["author_id"] = content.author_id;
  out["revision_type"] = View(ToString(content.revision_type));
  out["created"] = JsonTime(content.created);
  out["modified"] = JsonTime(content.modified);
  return out;
}

absl::StatusOr<JsonBody> JsonBody::Parse(absl::string_view body) {
  boost::system::error_code ec;
  boost::json::value value =
      boost::json::parse(boost::json::string_view(body.data(), body.size()), ec);
  if (ec) {
    return WithErrorCode(absl::InvalidArgumentError("request body is not valid JSON"),
                         kInvalidJson);
  }
  if (!value.is_object()) {
    return WithErrorCode(absl::InvalidArgumentError("request body must be a JSON object"),
                         kInvalidJson);
  }
  return JsonBody(std::move(value.get_object()));
}

absl::StatusOr<std::optional<std::string>> JsonBody::String(absl::string_view name) const {
  const boost::json::value* v =
      object_.if_contains(boost::json::string_view(name.data(), name.size()));
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_string()) return WrongType(name, "a string");
  return std::string(v->get_string());
}

absl::StatusOr<std::string> JsonBody::RequiredString(absl::string_view name) const {
  absl::StatusOr<std::optional<std::string>> value = String(name);
  if (!value.ok()) return value.status();
  if (!value->has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("missing field \"", name, "\""));
  }
  return std::move(**value);
}

absl::StatusOr<std::optional<bool>> JsonBody::Bool(absl::string_view name) const {
  const boost::json::value* v =
      object_.if_contains(boost::json::string_view(name.data(), name.size()));
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_bool()) return WrongType(name, "a boolean");
  return v->get_bool();
}

absl::StatusOr<std::optional<int64_t>> JsonBody::Id(absl::string_view name) const {
  const boost::json::value* v =
      object_.if_contains(boost::json::string_view(name.data(), name.size()));
  if (v == nullptr) return std::nullopt;
  if (v->is_null()) return int64_t{0};
  if (v->is_int64() && v->get_int64() >= 0) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return WrongType(name, "a non-negative integer or null");
}

absl::StatusOr<int64_t> JsonBody::RequiredId(absl::string_view name) const {
  absl::StatusOr<std::optional<int64_t>> value = Id(name);
  if (!value.ok()) return value.status();
  if (!value->has_value() || **value == 0) {
    return absl::InvalidArgumentError(absl::StrCat("missing field \"", name, "\""));
  }
  return **value;
}

}  // namespace tracim::broker
