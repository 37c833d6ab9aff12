// What a plugin knows about itself at run time: its name and the settings the
// broker handed it at registration. Filled by the SDK before the first event
// or request is dispatched and read-only afterwards: safe to read from any
// handler thread.
#ifndef TRACIM_PLUGIN_PLUGIN_CONTEXT_H_
#define TRACIM_PLUGIN_PLUGIN_CONTEXT_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace tracim::plugin {

namespace internal {
class PluginRegistry;
}  // namespace internal

class PluginContext {
 public:
  PluginContext() = default;

  // The plugin's name: its folder name without "tracim_backend_".
  const std::string& name() const { return name_; }

  // Every INI key "plugin.<name>.<setting>" of the broker's configuration as
  // "<setting>" → value. Empty while register_tracim_plugin runs: read
  // settings from OnPluginsLoaded (or later), as tracim's plugins do.
  const std::map<std::string, std::string>& settings() const { return settings_; }

  // The setting `key`, or nullopt when the operator did not set it.
  std::optional<std::string> FindSetting(std::string_view key) const;
  // The setting `key`, or `default_value`.
  std::string Setting(std::string_view key, std::string_view default_value = "") const;

  // The broker's version, from the registration answer; empty before.
  const std::string& broker_version() const { return broker_version_; }

 private:
  friend class internal::PluginRegistry;

  std::string name_;
  std::map<std::string, std::string> settings_;
  std::string broker_version_;
};

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_PLUGIN_CONTEXT_H_
