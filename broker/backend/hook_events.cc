#include "broker/backend/hook_events.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::broker {

namespace pb = tracim::plugin::v1;

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  // protobuf's own conversion normalises negative times as Timestamp wants.
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}

pb::User ToProto(const User& user) {
  pb::User out;
  out.set_user_id(user.user_id);
  out.set_email(user.email);
  out.set_username(user.username);
  out.set_public_name(user.public_name);
  out.set_profile(std::string(ToString(user.profile)));
  out.set_is_active(user.is_active);
  out.set_is_deleted(user.is_deleted);
  out.set_lang(user.lang);
  out.set_timezone(user.timezone);
  *out.mutable_created() = ToTimestamp(user.created);
  return out;
}

pb::Workspace ToProto(const Workspace& workspace) {
  pb::Workspace out;
  out.set_workspace_id(workspace.workspace_id);
  out.set_label(workspace.label);
  out.set_description(workspace.description);
  out.set_is_deleted(workspace.is_deleted);
  out.set_access_type(std::string(ToString(workspace.access_type)));
  out.set_default_user_role(std::string(ToString(workspace.default_user_role)));
  out.set_parent_id(workspace.parent_id);
  out.set_owner_id(workspace.owner_id);
  *out.mutable_created() = ToTimestamp(workspace.created);
  return out;
}

pb::Membership ToProto(const Membership& membership, const User* user) {
  pb::Membership out;
  out.set_user_id(membership.user_id);
  out.set_workspace_id(membership.workspace_id);
  out.set_role(std::string(ToString(membership.role)));
  if (user != nullptr) *out.mutable_user() = ToProto(*user);
  return out;
}

pb::Content ToProto(const Content& content, const User* author) {
  pb::Content out;
  out.set_content_id(content.content_id);
  out.set_label(content.label);
  out.set_content_type(std::string(ToString(content.content_type)));
  out.set_raw_content(content.raw_content);
  out.set_file_name(content.file_name);
  out.set_file_extension(content.file_extension);
  out.set_file_mimetype(content.file_mimetype);
  out.set_status(std::string(ToString(content.status)));
  out.set_is_deleted(content.is_deleted);
  out.set_is_archived(content.is_archived);
  out.set_workspace_id(content.workspace_id);
  out.set_parent_id(content.parent_id);
  if (author != nullptr) {
    *out.mutable_author() = ToProto(*author);
  } else {
    out.mutable_author()->set_user_id(content.author_id);
  }
  out.set_revision_type(std::string(ToString(content.revision_type)));
  *out.mutable_created() = ToTimestamp(content.created);
  *out.mutable_modified() = ToTimestamp(content.modified);
  return out;
}

pb::Event MakeEvent(absl::string_view hook, std::optional<ContentType> subtype, absl::Time created,
                    const User& author) {
  std::optional<std::string> event_type = pb::EventTypeForHook(hook);
  if (!event_type.has_value()) std::abort();  // a hook name typo in our own code
  pb::Event event;
  event.set_hook(std::string(hook));
  event.set_event_type(subtype.has_value() ? absl::StrCat(*event_type, ".", ToString(*subtype))
                                           : *event_type);
  *event.mutable_created() = ToTimestamp(created);
  *event.mutable_author() = ToProto(author);
  return event;
}

}  // namespace tracim::broker
