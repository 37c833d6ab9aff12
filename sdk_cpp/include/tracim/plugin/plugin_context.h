// What a plugin knows about itself at run time: its name, the settings the
// broker handed it at registration, and its client of the broker's host API.
// Filled by the SDK before the first event or request is dispatched and
// read-only afterwards: safe to read from any handler thread.
#ifndef TRACIM_PLUGIN_PLUGIN_CONTEXT_H_
#define TRACIM_PLUGIN_PLUGIN_CONTEXT_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "tracim/plugin/host_api.h"

namespace tracim::plugin {

namespace internal {
class PluginRegistry;
}  // namespace internal
namespace testing {
class PluginHarness;
}  // namespace testing

class PluginContext {
 public:
  // Connects host_api() from the launch environment (HostApi::FromEnvironment).
  PluginContext();

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

  // The broker's host API, as this plugin (see host_api.h); usable from any
  // hook or route handler, concurrently. Outside a broker launch (a unit
  // test without PluginHarness's HarnessOptions::host_api) every call fails
  // with FAILED_PRECONDITION.
  const HostApi& host_api() const { return host_api_; }

 private:
  friend class internal::PluginRegistry;
  friend class testing::PluginHarness;  // points host_api_ at a fake

  std::string name_;
  std::map<std::string, std::string> settings_;
  std::string broker_version_;
  HostApi host_api_;
};

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_PLUGIN_CONTEXT_H_
