#include "tracim/plugin/plugin_context.h"

namespace tracim::plugin {

PluginContext::PluginContext() : host_api_(HostApi::FromEnvironment()) {}

std::optional<std::string> PluginContext::FindSetting(std::string_view key) const {
  auto it = settings_.find(std::string(key));
  if (it == settings_.end()) return std::nullopt;
  return it->second;
}

std::string PluginContext::Setting(std::string_view key, std::string_view default_value) const {
  std::optional<std::string> value = FindSetting(key);
  return value ? *std::move(value) : std::string(default_value);
}

}  // namespace tracim::plugin
