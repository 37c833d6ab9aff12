// HTTP as a plugin's route handlers see it: a fully buffered request and a
// response built in memory (the SDK streams both over gRPC in 64 KiB chunks).
// Plain values: thread-compatible (one thread at a time per object).
//
//   plugin_manager.AddRoute(
//       "GET", "/plugins/hello_world/items/{id}",
//       [](const HttpRequest& request) {
//         if (!request.user) return HttpResponse::Message(401, "authentication required");
//         return HttpResponse::Json(200, "{\"id\": \"" + request.path_params.at("id") + "\"}");
//       });
#ifndef TRACIM_PLUGIN_HTTP_H_
#define TRACIM_PLUGIN_HTTP_H_

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracim/plugin/entities.h"

namespace tracim::plugin {

// Header fields in the order received, names with their case preserved.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Members have default initializers so that designated initializers
// ({.method = "GET", .path = "/plugins/x/y"}) compile cleanly under -Wextra.
struct HttpRequest {
  // Upper case: "GET", "POST", ...
  std::string method{};
  // Percent-decoded, without the query: "/plugins/hello_world/items/42".
  std::string path{};
  // Raw query string without "?", may be empty.
  std::string query{};
  // The pattern that matched, as registered: "/plugins/hello_world/items/{id}".
  std::string route{};
  // Values of the pattern's {param} segments, percent-decoded: {"id": "42"}.
  std::map<std::string, std::string> path_params{};
  // The broker removed the caller's credentials (Authorization, Cookie,
  // Tracim-Api-Key, Tracim-Api-Login) before the plugin sees them.
  HttpHeaders headers{};
  // The whole request body.
  std::string body{};
  // The authenticated caller; unset for an anonymous call to a public route.
  std::optional<User> user{};
  // X-Request-Id of the request (for logs and HostApi.GetCurrentUser).
  std::string request_id{};
  // The client's address, "127.0.0.1:51234".
  std::string remote_addr{};

  // The first header named `name` (compared case-insensitively).
  std::optional<std::string> Header(std::string_view name) const;
  // The first query parameter named `name`, percent-decoded ("+" is a space).
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct HttpResponse {
  // 100–599.
  int status = 200;
  HttpHeaders headers{};
  std::string body{};

  // Replaces every header named `name` (case-insensitively) by one value.
  void SetHeader(std::string name, std::string value);

  // `json_text` as the body with Content-Type: application/json.
  static HttpResponse Json(int status, std::string json_text);
  // `text` as the body with Content-Type: text/plain; charset=utf-8.
  static HttpResponse Text(int status, std::string text);
  // {"message": <message>} with Content-Type: application/json: the error
  // body tracim and the broker use.
  static HttpResponse Message(int status, std::string_view message);
};

// A route handler. Runs on one of the SDK's HTTP worker threads, possibly
// concurrently with other requests and with event handlers. An exception
// escaping it becomes a 500 {"message": ...} response.
using RouteHandler = std::function<HttpResponse(const HttpRequest& request)>;

struct RouteOptions {
  // Serve anonymous callers too (request.user is then unset); otherwise the
  // broker answers 401 itself unless the caller authenticated.
  bool public_route = false;
  // Deadline of the whole exchange, enforced by the broker (504); zero takes
  // the broker's default.
  std::chrono::milliseconds timeout{0};
};

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_HTTP_H_
