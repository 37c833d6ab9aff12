// Tracim's hook catalogue as far as out-of-process plugins are concerned: the
// hook names a plugin may subscribe to and the event type each one carries.
// Constant data: safe from any thread.
#ifndef TRACIM_SDK_CPP_SRC_HOOK_CATALOGUE_H_
#define TRACIM_SDK_CPP_SRC_HOOK_CATALOGUE_H_

#include <string>
#include <string_view>
#include <vector>

namespace tracim::plugin::internal {

struct HookInfo {
  // pluggy's hook name: "on_user_created".
  std::string_view hook;
  // Tracim's event type without the content subtype: "user.created".
  std::string_view event_type;
};

// Every hook, in catalogue order (docs/protocol.md lists the same names).
const std::vector<HookInfo>& HookCatalogue();

// Whether `hook` is in the catalogue.
bool IsKnownHook(std::string_view hook);

// The event type `hook` carries ("content.created" for on_content_created),
// or "" for an unknown hook.
std::string EventTypeOfHook(std::string_view hook);

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_HOOK_CATALOGUE_H_
