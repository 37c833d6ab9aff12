// Builds the tracim::plugin::v1 messages a hook carries from the store's
// entities: typed entities, and Events with tracim's hook name and event
// type ("on_content_created" → "content.created.file").
// Pure functions: thread-safe.
#ifndef TRACIM_BROKER_BACKEND_HOOK_EVENTS_H_
#define TRACIM_BROKER_BACKEND_HOOK_EVENTS_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "broker/store/entities.h"
#include "google/protobuf/timestamp.pb.h"
#include "tracim/plugin/v1/entities.pb.h"
#include "tracim/plugin/v1/events.pb.h"

namespace tracim::broker {

google::protobuf::Timestamp ToTimestamp(absl::Time time);

tracim::plugin::v1::User ToProto(const User& user);
tracim::plugin::v1::Workspace ToProto(const Workspace& workspace);
// `user`, when known, fills Membership.user.
tracim::plugin::v1::Membership ToProto(const Membership& membership, const User* user);
// `author`, when known, fills Content.author (else only author.user_id).
tracim::plugin::v1::Content ToProto(const Content& content, const User* author);

// An event for `hook` (a CRUD hook of the catalogue, e.g. "on_user_created"):
// event_type from the catalogue, plus ".<subtype>" when given (contents),
// created and author set; entity fields left for the caller; event_id 0.
// `hook` must be in the catalogue (a programming error otherwise: aborts).
tracim::plugin::v1::Event MakeEvent(absl::string_view hook, std::optional<ContentType> subtype,
                                    absl::Time created, const User& author);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_HOOK_EVENTS_H_
