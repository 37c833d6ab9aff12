// PluginRegistry: everything a PluginManager collected (plugins, hook
// handlers, routes, version, context) and the dispatch of events and HTTP
// requests to them. Shared by the gRPC server (run_plugin.cc) and the test
// harness, so both apply the same rules (exception → logged, event still
// acknowledged; exception → 500).
//
// Thread-safety: registration methods run on one thread before serving.
// Afterwards DispatchEvent is called from one thread at a time, HandleHttp
// from any thread concurrently, SetRegistration between deliveries only.
#ifndef TRACIM_SDK_CPP_SRC_PLUGIN_REGISTRY_H_
#define TRACIM_SDK_CPP_SRC_PLUGIN_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/v1/broker.pb.h"
#include "tracim/plugin/v1/route_pattern.h"

namespace tracim::plugin::internal {

// Where dispatch failures are reported: one line, without newline.
using LogSink = std::function<void(std::string_view line)>;

class PluginRegistry {
 public:
  explicit PluginRegistry(std::string plugin_name);

  // --- Registration (register_tracim_plugin's thread). Mistakes are kept in
  // status(), the first one wins.
  void AddPlugin(std::unique_ptr<Plugin> plugin, const std::vector<std::string_view>& hooks);
  void Subscribe(std::string_view hook, EventHandler handler);
  void AddRoute(std::string_view method, std::string_view path, RouteHandler handler,
                const RouteOptions& options);
  void SetVersion(std::string version) { version_ = std::move(version); }
  void SetDescription(std::string description) { description_ = std::move(description); }
  const absl::Status& status() const { return status_; }

  // --- What the plugin declares at registration.
  // Subscribed hooks, sorted, without duplicates.
  std::vector<std::string> Hooks() const;
  // Routes in registration order, as sent to the broker.
  std::vector<v1::Route> Routes() const;
  const std::optional<std::string>& version() const { return version_; }
  const std::optional<std::string>& description() const { return description_; }

  // --- The registration's answer.
  void SetRegistration(std::map<std::string, std::string> settings, std::string broker_version);
  const PluginContext& context() const { return context_; }
  PluginContext& mutable_context() { return context_; }

  // --- Dispatch.
  // Calls every handler subscribed to event.hook(), in registration order.
  // A handler that throws is logged through `log` as
  //   "hook <hook> threw on event <id>: <what>"
  // and the next handlers still run. Returns OK, or INTERNAL with the first
  // failure's line. Either way the caller acknowledges the event.
  absl::Status DispatchEvent(const Event& event, const LogSink& log) const;

  // Finds the route (by request.route when the broker set it, else by
  // matching method and path, filling route and path_params) and calls its
  // handler. No route: 404 or 405 {"message"}. A handler that throws is
  // logged as "route <METHOD> <route> threw: <what>" and answered with 500
  // {"message": <what>}; an invalid status becomes a 500 too.
  HttpResponse HandleHttp(HttpRequest request, const LogSink& log) const;

 private:
  struct Route {
    std::string method;
    v1::RoutePattern pattern;
    RouteHandler handler;
    RouteOptions options;
  };

  void Fail(absl::Status status);

  PluginContext context_;
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::map<std::string, std::vector<EventHandler>, std::less<>> handlers_;
  std::vector<Route> routes_;
  std::optional<std::string> version_;
  std::optional<std::string> description_;
  absl::Status status_;
};

// Gives the SDK and the harness the registry behind a PluginManager.
struct PluginManagerAccess {
  static PluginRegistry& Registry(PluginManager& manager) { return *manager.registry_; }
  static const PluginRegistry& Registry(const PluginManager& manager) { return *manager.registry_; }
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_PLUGIN_REGISTRY_H_
