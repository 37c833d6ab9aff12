#include "tracim/plugin/plugin_manager.h"

#include <utility>

#include "sdk_cpp/src/plugin_registry.h"
#include "tracim/plugin/plugin.h"

namespace tracim::plugin {

PluginManager::PluginManager(std::string plugin_name)
    : registry_(std::make_unique<internal::PluginRegistry>(std::move(plugin_name))) {}

PluginManager::~PluginManager() = default;

void PluginManager::RegisterPlugin(std::unique_ptr<Plugin> plugin,
                                   std::vector<std::string_view> hooks) {
  if (plugin != nullptr) plugin->context_ = &registry_->context();
  registry_->AddPlugin(std::move(plugin), hooks);
}

void PluginManager::Subscribe(std::string_view hook, EventHandler handler) {
  registry_->Subscribe(hook, std::move(handler));
}

void PluginManager::AddRoute(std::string_view method, std::string_view path, RouteHandler handler,
                             RouteOptions options) {
  registry_->AddRoute(method, path, std::move(handler), options);
}

void PluginManager::AddStreamingRoute(std::string_view method, std::string_view path,
                                      StreamingRouteHandler handler, RouteOptions options) {
  registry_->AddStreamingRoute(method, path, std::move(handler), options);
}

void PluginManager::SetVersion(std::string version) { registry_->SetVersion(std::move(version)); }

void PluginManager::SetDescription(std::string description) {
  registry_->SetDescription(std::move(description));
}

const PluginContext& PluginManager::context() const { return registry_->context(); }

absl::Status PluginManager::status() const { return registry_->status(); }

}  // namespace tracim::plugin
