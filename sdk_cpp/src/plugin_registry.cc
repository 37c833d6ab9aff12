#include "sdk_cpp/src/plugin_registry.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "tracim/plugin/v1/hook_catalogue.h"
#include "tracim/plugin/v1/route_pattern.h"

namespace tracim::plugin::internal {
namespace {

// Calls the typed Plugin method of one hook with the event's entity.
using HookCaller = void (*)(Plugin& plugin, const Event& event);

HookCaller TypedHookCaller(std::string_view hook) {
  static const auto* const kCallers = new std::map<std::string_view, HookCaller>{
      {"on_plugins_loaded",
       [](Plugin& p, const Event& e) { p.OnPluginsLoaded(e, e.plugins_loaded()); }},
      {"on_user_created", [](Plugin& p, const Event& e) { p.OnUserCreated(e, e.user()); }},
      {"on_user_modified", [](Plugin& p, const Event& e) { p.OnUserModified(e, e.user()); }},
      {"on_user_deleted", [](Plugin& p, const Event& e) { p.OnUserDeleted(e, e.user()); }},
      {"on_workspace_created",
       [](Plugin& p, const Event& e) { p.OnWorkspaceCreated(e, e.workspace()); }},
      {"on_workspace_modified",
       [](Plugin& p, const Event& e) { p.OnWorkspaceModified(e, e.workspace()); }},
      {"on_workspace_deleted",
       [](Plugin& p, const Event& e) { p.OnWorkspaceDeleted(e, e.workspace()); }},
      {"on_user_config_in_workspace_created",
       [](Plugin& p, const Event& e) { p.OnUserConfigInWorkspaceCreated(e, e.member()); }},
      {"on_user_config_in_workspace_modified",
       [](Plugin& p, const Event& e) { p.OnUserConfigInWorkspaceModified(e, e.member()); }},
      {"on_user_config_in_workspace_deleted",
       [](Plugin& p, const Event& e) { p.OnUserConfigInWorkspaceDeleted(e, e.member()); }},
      {"on_content_created", [](Plugin& p, const Event& e) { p.OnContentCreated(e, e.content()); }},
      {"on_content_modified",
       [](Plugin& p, const Event& e) { p.OnContentModified(e, e.content()); }},
      {"on_content_deleted", [](Plugin& p, const Event& e) { p.OnContentDeleted(e, e.content()); }},
      {"on_content_revision_created",
       [](Plugin& p, const Event& e) { p.OnContentRevisionCreated(e, e.content()); }},
  };
  auto it = kCallers->find(hook);
  return it == kCallers->end() ? nullptr : it->second;
}

// The message of the exception being handled; call from a catch block only.
std::string CurrentExceptionMessage() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

PluginRegistry::PluginRegistry(std::string plugin_name) { context_.name_ = std::move(plugin_name); }

void PluginRegistry::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void PluginRegistry::AddPlugin(std::unique_ptr<Plugin> plugin,
                               const std::vector<std::string_view>& hooks) {
  if (plugin == nullptr) {
    Fail(absl::InvalidArgumentError("Register() was given a null plugin"));
    return;
  }
  Plugin* raw = plugin.get();
  plugins_.push_back(std::move(plugin));
  for (std::string_view hook : hooks) {
    HookCaller caller = TypedHookCaller(hook);
    handlers_[std::string(hook)].push_back(
        [raw, caller](const Event& event) { caller(*raw, event); });
  }
}

void PluginRegistry::Subscribe(std::string_view hook, EventHandler handler) {
  if (!v1::IsKnownHook(AsAbsl(hook))) {
    Fail(
        absl::InvalidArgumentError(absl::StrCat("Subscribe(): unknown hook '", AsAbsl(hook), "'")));
    return;
  }
  if (!handler) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat("Subscribe(\"", AsAbsl(hook), "\"): empty handler")));
    return;
  }
  handlers_[std::string(hook)].push_back(std::move(handler));
}

void PluginRegistry::AddRoute(std::string_view method, std::string_view path, RouteHandler handler,
                              const RouteOptions& options) {
  AddAnyRoute("AddRoute", method, path, std::move(handler), nullptr, options);
}

void PluginRegistry::AddStreamingRoute(std::string_view method, std::string_view path,
                                       StreamingRouteHandler handler, const RouteOptions& options) {
  AddAnyRoute("AddStreamingRoute", method, path, nullptr, std::move(handler), options);
}

void PluginRegistry::AddAnyRoute(std::string_view function, std::string_view method,
                                 std::string_view path, RouteHandler handler,
                                 StreamingRouteHandler streaming_handler,
                                 const RouteOptions& options) {
  const std::string where =
      absl::StrCat(AsAbsl(function), "(\"", AsAbsl(method), "\", \"", AsAbsl(path), "\"): ");
  if (!v1::IsRouteMethod(AsAbsl(method))) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat(where, "method must be one of ", absl::StrJoin(v1::kRouteMethods, ", "))));
    return;
  }
  absl::StatusOr<v1::RoutePattern> pattern = v1::RoutePattern::Parse(AsAbsl(path));
  if (!pattern.ok()) {
    Fail(absl::InvalidArgumentError(absl::StrCat(where, pattern.status().message())));
    return;
  }
  // The broker refuses the whole registration for a route outside the
  // plugin's prefix; refusing it here names the AddRoute call at fault.
  const std::string prefix = v1::PluginRoutePrefix(context_.name());
  if (!pattern->IsUnder(prefix)) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat(where, "route path '", AsAbsl(path), "': must be under ", prefix)));
    return;
  }
  if (!handler && !streaming_handler) {
    Fail(absl::InvalidArgumentError(absl::StrCat(where, "empty handler")));
    return;
  }
  if (options.timeout < std::chrono::milliseconds(0) || options.timeout > std::chrono::hours(1)) {
    Fail(absl::InvalidArgumentError(absl::StrCat(where, "timeout must be between 0 and one hour")));
    return;
  }
  for (const Route& route : routes_) {
    if (route.method == method && route.pattern.shape() == pattern->shape()) {
      Fail(absl::InvalidArgumentError(
          absl::StrCat(where, "duplicates route ", route.method, " ", route.pattern.pattern())));
      return;
    }
  }
  routes_.push_back(Route{std::string(method), *std::move(pattern), std::move(handler),
                          std::move(streaming_handler), options});
}

std::vector<std::string> PluginRegistry::Hooks() const {
  std::vector<std::string> hooks;
  for (const auto& [hook, handlers] : handlers_) {
    if (!handlers.empty()) hooks.push_back(hook);
  }
  return hooks;  // std::map: already sorted and unique.
}

std::vector<v1::Route> PluginRegistry::Routes() const {
  std::vector<v1::Route> routes;
  for (const Route& route : routes_) {
    v1::Route& wire = routes.emplace_back();
    wire.set_method(route.method);
    wire.set_path(route.pattern.pattern());
    wire.set_public_(route.options.public_route);
    wire.set_timeout_ms(static_cast<uint32_t>(route.options.timeout.count()));
  }
  return routes;
}

void PluginRegistry::SetRegistration(std::map<std::string, std::string> settings,
                                     std::string broker_version) {
  context_.settings_ = std::move(settings);
  context_.broker_version_ = std::move(broker_version);
}

absl::Status PluginRegistry::DispatchEvent(const Event& event, const LogSink& log) const {
  auto it = handlers_.find(event.hook());
  if (it == handlers_.end()) return absl::OkStatus();
  absl::Status first_failure;
  for (const EventHandler& handler : it->second) {
    try {
      handler(event);
    } catch (...) {
      std::string line = absl::StrCat("hook ", event.hook(), " threw on event ", event.event_id(),
                                      ": ", CurrentExceptionMessage());
      log(line);
      if (first_failure.ok()) first_failure = absl::InternalError(line);
    }
  }
  return first_failure;
}

PluginRegistry::RouteMatch PluginRegistry::MatchRoute(HttpRequestHead& head) const {
  if (!head.route.empty()) {
    for (const Route& route : routes_) {
      if (route.method == head.method && route.pattern.pattern() == head.route) {
        return RouteMatch{.route = &route};
      }
    }
  }
  // Not routed by the broker (the harness), or routed to a pattern this
  // process does not know: match the path as the broker would, except that
  // head.path is already percent-decoded, so its params are taken as is.
  const Route* found = nullptr;
  bool other_method = false;
  std::map<std::string, std::string> params;
  for (const Route& route : routes_) {
    std::optional<std::map<std::string, std::string>> match = route.pattern.MatchDecoded(head.path);
    if (!match) continue;
    if (route.method != head.method) {
      other_method = true;
      continue;
    }
    if (found == nullptr || route.pattern.Specificity() > found->pattern.Specificity()) {
      found = &route;
      params = *std::move(match);
    }
  }
  if (found == nullptr) {
    return RouteMatch{
        .no_route = other_method
                        ? HttpResponse::Message(405, absl::StrCat("method ", head.method,
                                                                  " not allowed on ", head.path))
                        : HttpResponse::Message(404, absl::StrCat("no route for ", head.path))};
  }
  head.route = found->pattern.pattern();
  head.path_params = std::move(params);
  return RouteMatch{.route = found};
}

HttpResponse PluginRegistry::CallBuffered(const Route& route, const HttpRequest& request,
                                          const LogSink& log) const {
  HttpResponse response;
  try {
    response = route.handler(request);
  } catch (...) {
    std::string message = CurrentExceptionMessage();
    log(absl::StrCat("route ", route.method, " ", route.pattern.pattern(), " threw: ", message));
    return HttpResponse::Message(500, message);
  }
  // What the broker relays (a 1xx is not a final response).
  if (response.status < 200 || response.status > 599) {
    std::string message =
        absl::StrCat("route handler returned the invalid HTTP status ", response.status);
    log(absl::StrCat("route ", route.method, " ", route.pattern.pattern(), ": ", message));
    return HttpResponse::Message(500, message);
  }
  return response;
}

namespace {

// Writes a whole response through `stream`; the stream's error, if any.
absl::Status Respond(HttpStream& stream, HttpResponse response) {
  if (absl::Status status = stream.WriteHead(response.status, std::move(response.headers));
      !status.ok()) {
    return status;
  }
  return stream.Write(response.body);
}

}  // namespace

absl::Status PluginRegistry::CallStreaming(const Route& route, const HttpRequestHead& head,
                                           HttpTransport& transport, const LogSink& log) const {
  const std::string where = absl::StrCat("route ", route.method, " ", route.pattern.pattern());
  HttpStream stream(transport);
  try {
    route.streaming_handler(head, stream);
  } catch (...) {
    std::string message = CurrentExceptionMessage();
    if (stream.head_written()) {
      std::string line = absl::StrCat(where, " threw after the response head: ", message);
      log(line);
      return absl::InternalError(line);
    }
    log(absl::StrCat(where, " threw: ", message));
    if (!stream.status().ok()) return stream.status();
    return Respond(stream, HttpResponse::Message(500, message));
  }
  // A handler that returned because the call broke: nothing to add.
  if (!stream.status().ok()) return stream.status();
  if (!stream.head_written()) {
    constexpr char kMessage[] = "the streaming route handler returned without a response head";
    log(absl::StrCat(where, ": ", kMessage));
    return Respond(stream, HttpResponse::Message(500, kMessage));
  }
  return absl::OkStatus();
}

absl::Status PluginRegistry::ServeHttp(HttpRequestHead head, HttpTransport& transport,
                                       const LogSink& log) const {
  RouteMatch match = MatchRoute(head);
  if (match.route != nullptr && match.route->streaming()) {
    return CallStreaming(*match.route, head, transport, log);
  }
  HttpStream stream(transport);
  if (match.route == nullptr) return Respond(stream, std::move(match.no_route));
  std::string body;
  while (true) {
    absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
    if (!chunk.ok()) return chunk.status();
    if (!chunk->has_value()) break;
    body.append(**chunk);
  }
  return Respond(
      stream, CallBuffered(*match.route, RequestWithBody(std::move(head), std::move(body)), log));
}

}  // namespace tracim::plugin::internal
