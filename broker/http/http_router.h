// HttpRouter: picks the handler for a request path, by exact path or by
// longest matching prefix ("/api/", "/plugins/", exact "/healthz").
// Filled before HttpServer::Start, then read-only: const methods are safe
// from any thread; Add* are not thread-safe.
#ifndef TRACIM_BROKER_HTTP_HTTP_ROUTER_H_
#define TRACIM_BROKER_HTTP_HTTP_ROUTER_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "broker/http/http_handler.h"

namespace tracim::broker {

class HttpRouter {
 public:
  // `path` matches only itself ("/healthz" does not match "/healthz/x").
  // kInvalidArgument unless it starts with '/'; kAlreadyExists if bound.
  absl::Status AddExact(std::string path, HttpHandler handler);
  // `prefix` matches every path starting with it ("/api/" matches "/api/x",
  // not "/api"). Same errors as AddExact.
  absl::Status AddPrefix(std::string prefix, HttpHandler handler);

  // Exact match first, then the longest prefix; nullptr if none (404).
  // `path` is the raw (encoded) path of the request.
  const HttpHandler* Find(absl::string_view path) const;

 private:
  std::map<std::string, HttpHandler, std::less<>> exact_;
  // Sorted longest first.
  std::vector<std::pair<std::string, HttpHandler>> prefixes_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_ROUTER_H_
