#include "tracim/plugin/v1/hook_catalogue.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tracim::plugin::v1 {
namespace {

struct HookEntry {
  const char* hook;
  const char* event_type;
};

// Tracim's CRUD hooks (tracim.md) and the event types of tracim's live
// messages. In-process-only hooks (add_new_hooks, web_include, the context
// hooks) have no meaning out of process and are not offered.
constexpr HookEntry kHooks[] = {
    {kOnPluginsLoaded, kPluginsLoadedEventType},
    {"on_user_created", "user.created"},
    {"on_user_modified", "user.modified"},
    {"on_user_deleted", "user.deleted"},
    {"on_workspace_created", "workspace.created"},
    {"on_workspace_modified", "workspace.modified"},
    {"on_workspace_deleted", "workspace.deleted"},
    {"on_user_config_in_workspace_created", "workspace_member.created"},
    {"on_user_config_in_workspace_modified", "workspace_member.modified"},
    {"on_user_config_in_workspace_deleted", "workspace_member.deleted"},
    {"on_content_created", "content.created"},
    {"on_content_modified", "content.modified"},
    {"on_content_deleted", "content.deleted"},
    {"on_content_revision_created", "content_revision.created"},
    {"on_workspace_subscription_created", "workspace_subscription.created"},
    {"on_workspace_subscription_modified", "workspace_subscription.modified"},
    {"on_workspace_subscription_deleted", "workspace_subscription.deleted"},
    {"on_reaction_created", "reaction.created"},
    {"on_reaction_modified", "reaction.modified"},
    {"on_reaction_deleted", "reaction.deleted"},
    {"on_tag_created", "tag.created"},
    {"on_tag_modified", "tag.modified"},
    {"on_tag_deleted", "tag.deleted"},
    {"on_content_tag_created", "content_tag.created"},
    {"on_content_tag_deleted", "content_tag.deleted"},
    {"on_user_call_created", "user_call.created"},
    {"on_user_call_modified", "user_call.modified"},
    {"on_user_call_deleted", "user_call.deleted"},
    {"on_user_config_created", "user_config.created"},
    {"on_user_config_modified", "user_config.modified"},
    {"on_user_config_deleted", "user_config.deleted"},
};

const HookEntry* Find(absl::string_view hook) {
  for (const auto& e : kHooks) {
    if (hook == e.hook) return &e;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& AllHooks() {
  static const auto* hooks = [] {
    auto* v = new std::vector<std::string>;
    for (const auto& e : kHooks) v->push_back(e.hook);
    return v;
  }();
  return *hooks;
}

bool IsKnownHook(absl::string_view hook) { return Find(hook) != nullptr; }

std::optional<std::string> EventTypeForHook(absl::string_view hook) {
  const HookEntry* e = Find(hook);
  if (e == nullptr) return std::nullopt;
  return std::string(e->event_type);
}

std::optional<std::string> HookForEventType(absl::string_view event_type) {
  for (const auto& e : kHooks) {
    absl::string_view type = e.event_type;
    // Exact, or the type followed by ".<subtype>" (content events only).
    if (event_type == type ||
        (absl::StartsWith(event_type, absl::StrCat(type, ".")) &&
         absl::StartsWith(type, "content.") && event_type.size() > type.size() + 1)) {
      return std::string(e.hook);
    }
  }
  return std::nullopt;
}

}  // namespace tracim::plugin::v1
