// PluginRegistry: everything a PluginManager collected (plugins, hook
// handlers, routes, version, context) and the dispatch of events and HTTP
// requests to them. Shared by the gRPC server (run_plugin.cc) and the test
// harness, so both apply the same rules (exception → logged, event still
// acknowledged; exception → 500, or a cut response after a streamed head).
//
// Thread-safety: registration methods run on one thread before serving.
// Afterwards DispatchEvent is called from one thread at a time, the HTTP
// methods from any thread concurrently, SetRegistration between deliveries
// only.
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
#include "sdk_cpp/src/http_transport.h"
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
  void AddStreamingRoute(std::string_view method, std::string_view path,
                         StreamingRouteHandler handler, const RouteOptions& options);
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

  // A registered route: exactly one of handler / streaming_handler is set.
  struct Route {
    std::string method;
    v1::RoutePattern pattern;
    RouteHandler handler;
    StreamingRouteHandler streaming_handler;
    RouteOptions options;

    bool streaming() const { return streaming_handler != nullptr; }
  };

  // The outcome of MatchRoute: a route, or else the answer to give.
  struct RouteMatch {
    const Route* route = nullptr;
    HttpResponse no_route{};  // 404 or 405 {"message"}, when route is null
  };

  // Finds the route of a request: by head.route when the broker set it and
  // this process knows it, else by matching method and path like the broker
  // (filling head.route and head.path_params).
  RouteMatch MatchRoute(HttpRequestHead& head) const;

  // Calls a buffered route's handler. One that throws is logged as
  // "route <METHOD> <route> threw: <what>" and answered with 500
  // {"message": <what>}; an invalid status becomes a 500 too.
  HttpResponse CallBuffered(const Route& route, const HttpRequest& request,
                            const LogSink& log) const;

  // Runs a streaming route's handler over `transport`, on the calling
  // thread, until it returns. Returns OK when the response is complete, or
  // the status to end the call with (the broker then cuts the response):
  // INTERNAL "route <METHOD> <route> threw after the response head: <what>",
  // or the stream's CANCELLED error. Before a head, a throwing handler gets
  // a 500 {"message": <what>} and one that returned without a head a 500
  // {"message": "the streaming route handler returned without a response
  // head"}; both are logged.
  absl::Status CallStreaming(const Route& route, const HttpRequestHead& head,
                             HttpTransport& transport, const LogSink& log) const;

  // One whole exchange over `transport` on the calling thread, whatever the
  // route's kind (buffered handlers get the body read whole first). Used by
  // the test harness; the gRPC service schedules the same steps itself.
  absl::Status ServeHttp(HttpRequestHead head, HttpTransport& transport, const LogSink& log) const;

 private:
  void AddAnyRoute(std::string_view function, std::string_view method, std::string_view path,
                   RouteHandler handler, StreamingRouteHandler streaming_handler,
                   const RouteOptions& options);
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
