// Tracim's hooks that out-of-process plugins may subscribe to, with the event
// type each one carries. One catalogue shared by the broker and the C++ SDK
// (docs/protocol.md lists the same names). Fixed at compile time: thread-safe.
#ifndef TRACIM_PLUGIN_V1_HOOK_CATALOGUE_H_
#define TRACIM_PLUGIN_V1_HOOK_CATALOGUE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace tracim::plugin::v1 {

inline constexpr char kOnPluginsLoaded[] = "on_plugins_loaded";
inline constexpr char kPluginsLoadedEventType[] = "plugins.loaded";

// Every hook name a plugin may register, in catalogue order.
const std::vector<std::string>& AllHooks();

bool IsKnownHook(absl::string_view hook);

// The event type prefix of a hook: "on_user_created" → "user.created",
// "on_user_config_in_workspace_deleted" → "workspace_member.deleted",
// "on_content_created" → "content.created" (a content subtype is appended to
// the actual event's type: "content.created.file"). nullopt if unknown.
std::optional<std::string> EventTypeForHook(absl::string_view hook);

// The reverse: "content.modified.file" → "on_content_modified". nullopt if
// the event type matches no hook.
std::optional<std::string> HookForEventType(absl::string_view event_type);

}  // namespace tracim::plugin::v1

#endif  // TRACIM_PLUGIN_V1_HOOK_CATALOGUE_H_
