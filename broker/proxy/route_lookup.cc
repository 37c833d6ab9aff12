#include "broker/proxy/route_lookup.h"

#include <algorithm>
#include <optional>
#include <set>

#include "tracim/plugin/v1/route_pattern.h"

namespace tracim::broker {

RouteLookup LookupRoute(const std::vector<RegisteredRoute>& routes, absl::string_view method,
                        absl::string_view raw_path) {
  RouteLookup result;
  std::set<absl::string_view> path_methods;
  for (const RegisteredRoute& route : routes) {
    std::optional<std::map<std::string, std::string>> params = route.pattern.Match(raw_path);
    if (!params.has_value()) continue;
    path_methods.insert(route.method);
    if (route.method != method) continue;
    if (result.route == nullptr ||
        route.pattern.Specificity() > result.route->pattern.Specificity()) {
      result.route = &route;
      result.params = *std::move(params);
    }
  }
  if (result.route != nullptr) {
    result.outcome = RouteLookup::Outcome::kMatched;
    return result;
  }
  if (path_methods.empty()) {
    result.outcome = RouteLookup::Outcome::kNotFound;
    return result;
  }
  result.outcome = RouteLookup::Outcome::kMethodNotAllowed;
  for (const char* m : plugin::v1::kRouteMethods) {
    if (path_methods.count(m) > 0) result.allowed.emplace_back(m);
  }
  return result;
}

}  // namespace tracim::broker
