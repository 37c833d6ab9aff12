#include "broker/admin/plugins_api.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/asio/post.hpp"
#include "boost/json/serialize.hpp"
#include "broker/backend/api_error.h"
#include "broker/backend/authenticator.h"

namespace tracim::broker {

namespace json = boost::json;
namespace v1 = tracim::plugin::v1;

namespace {

constexpr absl::string_view kRoot = "/api/plugins";

HttpResponse JsonResponse(int status, const json::value& body) {
  return HttpResponse{status, {{"Content-Type", "application/json"}}, json::serialize(body)};
}

HttpResponse MethodNotAllowed(absl::string_view allow, absl::string_view method,
                              absl::string_view path) {
  HttpResponse r = JsonErrorResponse(405, "method_not_allowed",
                                     absl::StrCat("method ", method, " not allowed on ", path));
  r.headers.Add("Allow", std::string(allow));
  return r;
}

}  // namespace

json::value PluginStatusJson(const v1::PluginStatus& s) {
  json::array hooks;
  for (const auto& h : s.hooks()) hooks.emplace_back(h);
  json::array routes;
  for (const auto& r : s.routes()) {
    routes.push_back(json::object{{"method", r.method()},
                                  {"path", r.path()},
                                  {"public", r.public_()},
                                  {"timeout_ms", r.timeout_ms()}});
  }
  return json::object{
      {"name", s.name()},
      {"version", s.version()},
      {"state", s.state()},
      {"pid", s.pid()},
      {"uptime_ms", s.uptime_ms()},
      {"restarts", s.restarts()},
      {"last_exit_reason", s.last_exit_reason()},
      {"hooks", std::move(hooks)},
      {"routes", std::move(routes)},
      {"events_queued", s.events_queued()},
      {"events_acknowledged", s.events_acknowledged()},
      {"events_dropped", s.events_dropped()},
      {"events_timed_out", s.events_timed_out()},
      {"requests_in_flight", s.requests_in_flight()},
      {"output_lines_dropped", s.output_lines_dropped()},
  };
}

PluginsApi::PluginsApi(Store& store, PluginHost& host, boost::asio::any_io_executor executor)
    : store_(store), host_(host), blocking_executor_(std::move(executor)) {}

absl::Status PluginsApi::Register(HttpRouter& router) {
  auto handler = [this](HttpRequest request, HttpResponder respond) {
    Handle(std::move(request), std::move(respond));
  };
  if (absl::Status s = router.AddExact(std::string(kRoot), HttpHandler::Simple(handler)); !s.ok()) {
    return s;
  }
  return router.AddPrefix(absl::StrCat(kRoot, "/"), HttpHandler::Simple(handler));
}

void PluginsApi::Handle(HttpRequest request, HttpResponder respond) {
  // Authentication hashes passwords: off the io thread.
  boost::asio::post(blocking_executor_,
                    [this, request = std::move(request), respond = std::move(respond)]() mutable {
                      absl::StatusOr<User> user = AuthenticateRequest(store_, request.head.headers);
                      if (!user.ok()) {
                        respond(ErrorResponse(user.status()));
                        return;
                      }
                      if (user->profile != Profile::kAdministrators) {
                        respond(ErrorResponse(absl::PermissionDeniedError(
                            "only administrators may see or act on plugins")));
                        return;
                      }
                      Authorized(request, std::move(respond));
                    });
}

void PluginsApi::Authorized(const HttpRequest& request, HttpResponder respond) {
  const std::string& path = request.head.path;
  const std::string& method = request.head.method;
  if (path == kRoot || path == absl::StrCat(kRoot, "/")) {
    if (method != "GET") {
      respond(MethodNotAllowed("GET", method, path));
      return;
    }
    json::array all;
    for (const auto& p : host_.plugins()) all.push_back(PluginStatusJson(p->Status()));
    respond(JsonResponse(200, all));
    return;
  }
  // /api/plugins/{name}[/{action}]: plugin names are [a-z0-9_]+, so no
  // percent-decoding is needed to compare them.
  std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(path).substr(kRoot.size() + 1), '/');
  const std::string& name = parts[0];
  PluginSupervisor* plugin = host_.Find(name);
  if (plugin == nullptr || parts.size() > 2) {
    respond(ErrorResponse(absl::NotFoundError(plugin == nullptr
                                                  ? absl::StrCat("no plugin named '", name, "'")
                                                  : absl::StrCat("no such path: ", path))));
    return;
  }
  if (parts.size() == 1) {
    if (method != "GET") {
      respond(MethodNotAllowed("GET", method, path));
      return;
    }
    respond(JsonResponse(200, PluginStatusJson(plugin->Status())));
    return;
  }
  PluginSupervisor::Action action;
  if (parts[1] == "restart") {
    action = PluginSupervisor::Action::kRestart;
  } else if (parts[1] == "enable") {
    action = PluginSupervisor::Action::kEnable;
  } else if (parts[1] == "disable") {
    action = PluginSupervisor::Action::kDisable;
  } else {
    respond(ErrorResponse(absl::NotFoundError(
        absl::StrCat("unknown action '", parts[1], "' (expected restart, enable or disable)"))));
    return;
  }
  if (method != "POST") {
    respond(MethodNotAllowed("POST", method, path));
    return;
  }
  plugin->Act(action, [respond = std::move(respond)](v1::PluginStatus status) {
    respond(JsonResponse(200, PluginStatusJson(status)));
  });
}

}  // namespace tracim::broker
