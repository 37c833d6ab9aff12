// Finds which of a plugin's registered routes serves a request: method and
// path pattern, the most specific pattern winning ("/x/items/new" over
// "/x/items/{id}"), or why none does (404, or 405 with the methods that the
// path does accept). Pure function: thread-safe.
#ifndef TRACIM_BROKER_PROXY_ROUTE_LOOKUP_H_
#define TRACIM_BROKER_PROXY_ROUTE_LOOKUP_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "broker/handshake/registration_validator.h"

namespace tracim::broker {

struct RouteLookup {
  enum class Outcome {
    kMatched,
    // Some pattern matches the path, none with this method.
    kMethodNotAllowed,
    // No pattern matches the path.
    kNotFound,
  };
  Outcome outcome = Outcome::kNotFound;
  // kMatched: the route (points into the vector searched) and its
  // parameters, percent-decoded.
  const RegisteredRoute* route = nullptr;
  std::map<std::string, std::string> params;
  // kMethodNotAllowed: the methods the path accepts, in the order of
  // plugin::v1::kRouteMethods, no duplicates.
  std::vector<std::string> allowed;
};

// `raw_path` is the request path as sent (percent-encoded, no query).
// Methods compare case-sensitively, as HTTP says ("get" is not "GET").
RouteLookup LookupRoute(const std::vector<RegisteredRoute>& routes, absl::string_view method,
                        absl::string_view raw_path);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROXY_ROUTE_LOOKUP_H_
