// PluginManager: what register_tracim_plugin receives, as pluggy's
// plugin_manager in tracim. The plugin registers its Plugin objects, extra
// hook handlers and HTTP routes on it. Include "tracim/plugin/plugin.h"
// rather than this header (Register<T> is defined there).
//
// Thread-safety: configure it from register_tracim_plugin only (one thread).
// Afterwards the SDK only reads it; context() is safe from any handler.
#ifndef TRACIM_PLUGIN_PLUGIN_MANAGER_H_
#define TRACIM_PLUGIN_PLUGIN_MANAGER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "tracim/plugin/entities.h"
#include "tracim/plugin/http.h"
#include "tracim/plugin/plugin_context.h"

namespace tracim::plugin {

class Plugin;

namespace internal {
class PluginRegistry;
struct PluginManagerAccess;
}  // namespace internal

class PluginManager {
 public:
  // `plugin_name` is the plugin's name (TRACIM_PLUGIN_NAME): routes must live
  // under /plugins/<plugin_name>/.
  explicit PluginManager(std::string plugin_name);
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Takes ownership of `plugin` and subscribes to exactly the hooks whose
  // On...() method T overrides (detected at compile time), so hooks are never
  // listed twice. Overrides must be public. Defined in plugin.h.
  template <typename T>
  void Register(std::unique_ptr<T> plugin);

  // Subscribes `handler` to any hook of tracim's catalogue by name, e.g.
  // "on_reaction_created", for hooks that have no typed Plugin method. Several
  // handlers of one hook run in registration order. An unknown hook name is
  // recorded as an error (see status()).
  void Subscribe(std::string_view hook, EventHandler handler);

  // Serves `method` ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
  // "OPTIONS") on `path`, an absolute path under /plugins/<name>/ whose
  // segments may be "{param}" (passed in HttpRequest::path_params). A
  // malformed or duplicate route is recorded as an error (see status()).
  void AddRoute(std::string_view method, std::string_view path, RouteHandler handler,
                RouteOptions options = {});

  // Serves `method` on `path` (same rules as AddRoute, and one route per
  // method and shape across both kinds) with a handler that reads the
  // request body and writes the response chunk by chunk through an
  // HttpStream (see http.h): for bodies too large to hold in memory, or to
  // answer before the upload ends. Each request runs on a thread of its own.
  void AddStreamingRoute(std::string_view method, std::string_view path,
                         StreamingRouteHandler handler, RouteOptions options = {});

  // The plugin's version and description sent at registration. When unset,
  // the SDK takes "version" / "description" from ./plugin.json (the broker
  // starts plugins in their folder), so the manifest is the single source.
  void SetVersion(std::string version);
  void SetDescription(std::string description);

  // The plugin's name and, once registered with the broker, its settings.
  const PluginContext& context() const;
  const std::string& name() const { return context().name(); }

  // OK, or INVALID_ARGUMENT naming the first mistake made while registering
  // (unknown hook, malformed or duplicate route, null plugin or handler).
  // The SDK refuses to start a plugin whose status is not OK.
  absl::Status status() const;

 private:
  friend struct internal::PluginManagerAccess;

  // Non-template part of Register<T>: owns `plugin`, subscribes `hooks`.
  void RegisterPlugin(std::unique_ptr<Plugin> plugin, std::vector<std::string_view> hooks);

  std::unique_ptr<internal::PluginRegistry> registry_;
};

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_PLUGIN_MANAGER_H_
