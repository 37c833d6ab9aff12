// HTTP as a plugin's route handlers see it, in two flavours:
// - buffered (PluginManager::AddRoute): a handler gets the whole request in
//   an HttpRequest and returns an HttpResponse built in memory; the SDK
//   streams both over gRPC in 64 KiB chunks.
// - streaming (PluginManager::AddStreamingRoute): a handler gets the
//   request's HttpRequestHead and an HttpStream to read the body and write
//   the response chunk by chunk, with flow control, so that a 1 GiB upload
//   or download never sits in memory.
// Thread-safety: HttpRequest, HttpRequestHead and HttpResponse are plain
// values (thread-compatible); an HttpStream is used by one thread at a time.
//
//   plugin_manager.AddRoute(
//       "GET", "/plugins/hello_world/items/{id}",
//       [](const HttpRequest& request) {
//         if (!request.user) return HttpResponse::Message(401, "authentication required");
//         return HttpResponse::Json(200, "{\"id\": \"" + request.path_params.at("id") + "\"}");
//       });
//
//   plugin_manager.AddStreamingRoute(
//       "POST", "/plugins/hello_world/echo",
//       [](const HttpRequestHead& request, HttpStream& stream) {
//         if (!stream.WriteHead(200, {{"Content-Type", "application/octet-stream"}}).ok()) return;
//         while (true) {
//           absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
//           if (!chunk.ok()) return;   // the client went away: nothing more to do
//           if (!*chunk) return;       // end of the body: returning ends the response
//           if (!stream.Write(**chunk).ok()) return;
//         }
//       });
#ifndef TRACIM_PLUGIN_HTTP_H_
#define TRACIM_PLUGIN_HTTP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tracim/plugin/entities.h"

namespace tracim::plugin {

namespace internal {
class HttpTransport;
class PluginRegistry;
}  // namespace internal

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
  // 200–599 (what the broker relays; another gives a 500).
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

// Everything of a request but its body, which a streaming handler reads
// through HttpStream::Read. The fields of HttpRequest but body, in the same
// order, plus content_length.
struct HttpRequestHead {
  std::string method{};
  std::string path{};
  std::string query{};
  std::string route{};
  std::map<std::string, std::string> path_params{};
  HttpHeaders headers{};
  std::optional<User> user{};
  std::string request_id{};
  std::string remote_addr{};
  // The body's declared Content-Length; unset when the client declared none
  // (chunked upload, or no body).
  std::optional<uint64_t> content_length{};

  std::optional<std::string> Header(std::string_view name) const;
  std::optional<std::string> QueryParam(std::string_view name) const;
};

// One request to a streaming route, as its handler drives it: read the
// request body chunk by chunk, write the response head, then the response
// body chunk by chunk; returning from the handler ends the response.
//
// Every call blocks the handler's thread: Read until the next chunk arrives,
// WriteHead and Write until gRPC took the part. One chunk is in flight each
// way, so a slow client slows the handler down instead of filling memory.
//
// Errors are sticky: once the client went away or the broker cancelled the
// call (the route's deadline passed), every call returns the same CANCELLED
// status, and the handler should simply return. Misuse is refused without
// sending anything: FAILED_PRECONDITION for a second head or a body chunk
// before the head, INVALID_ARGUMENT for a status outside 200-599.
//
// The object lives for the handler's call only; do not keep it. Not
// thread-safe: one call at a time (normally from the handler's thread).
class HttpStream {
 public:
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;

  // The next chunk of the request body (never empty), or std::nullopt once
  // the whole body was read (at once for a request without body; again on
  // every later call). CANCELLED when the call broke, including a body that
  // ended before its declared Content-Length. A client that goes away during
  // a chunked upload (no Content-Length) can look like the end of the body:
  // the next Write then fails; check completeness in the payload if it
  // matters. Reading the whole body is optional: the rest is dropped.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Read();

  // Sends the response status (200-599) and headers. Once per request,
  // before any Write; may come before, between or after Reads.
  [[nodiscard]] absl::Status WriteHead(int status, HttpHeaders headers = {});

  // Sends `chunk` as the next piece of the response body (in 64 KiB messages
  // when larger, each one awaited). An empty chunk sends nothing.
  [[nodiscard]] absl::Status Write(std::string_view chunk);

  // Whether WriteHead succeeded: after that, an exception can only cut the
  // response short.
  bool head_written() const { return head_written_; }

 private:
  friend class internal::PluginRegistry;

  // Used by the SDK only: `transport` moves the parts and outlives this.
  explicit HttpStream(internal::HttpTransport& transport) : transport_(transport) {}

  // OK, or the first error a call returned (CANCELLED): the stream is broken.
  const absl::Status& status() const { return broken_; }
  absl::Status Broke(absl::Status status);

  internal::HttpTransport& transport_;
  absl::Status broken_;
  bool head_written_ = false;
  bool body_ended_ = false;
};

// A streaming route handler. Runs on a thread of its own for the duration
// of the request (see docs/writing-plugins.md: "HTTP routes"), possibly
// concurrently with other requests and with event handlers. Returning ends
// the response (a handler that returns without a head gets a 500). An
// exception escaping it becomes a 500 {"message": ...} before the head;
// after the head it cuts the response short (the client sees a broken
// connection, never a truncated body passed off as complete).
using StreamingRouteHandler =
    std::function<void(const HttpRequestHead& request, HttpStream& stream)>;

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
