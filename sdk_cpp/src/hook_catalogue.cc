#include "sdk_cpp/src/hook_catalogue.h"

#include <algorithm>

namespace tracim::plugin::internal {

const std::vector<HookInfo>& HookCatalogue() {
  static const auto* const kCatalogue = new std::vector<HookInfo>{
      {"on_plugins_loaded", "plugins.loaded"},
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
  return *kCatalogue;
}

namespace {
const HookInfo* FindHook(std::string_view hook) {
  const auto& catalogue = HookCatalogue();
  auto it = std::find_if(catalogue.begin(), catalogue.end(),
                         [hook](const HookInfo& info) { return info.hook == hook; });
  return it == catalogue.end() ? nullptr : &*it;
}
}  // namespace

bool IsKnownHook(std::string_view hook) { return FindHook(hook) != nullptr; }

std::string EventTypeOfHook(std::string_view hook) {
  const HookInfo* info = FindHook(hook);
  return info == nullptr ? std::string() : std::string(info->event_type);
}

}  // namespace tracim::plugin::internal
