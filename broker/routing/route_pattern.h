// A plugin route's path pattern ("/plugins/x/items/{id}"): parsed once at
// registration, matched against request paths by the HTTP proxy.
// Immutable after Parse: thread-safe.
#ifndef TRACIM_BROKER_ROUTING_ROUTE_PATTERN_H_
#define TRACIM_BROKER_ROUTING_ROUTE_PATTERN_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracim::broker {

class RoutePattern {
 public:
  // Parses an absolute pattern. Rules: starts with "/", no empty segment
  // (except one trailing "/" is not allowed either), no "." or ".." segment,
  // no "?" or "#", a segment is either literal ([A-Za-z0-9-._~!$&'()*+,;=:@%]
  // characters) or exactly "{name}" with name [A-Za-z_][A-Za-z0-9_]*, names
  // unique. INVALID_ARGUMENT "route path '<p>': <what is wrong>".
  static absl::StatusOr<RoutePattern> Parse(absl::string_view pattern);

  const std::string& pattern() const { return pattern_; }
  // The pattern with every parameter renamed to "{}": two routes with the
  // same method and shape are duplicates.
  const std::string& shape() const { return shape_; }
  // Whether the pattern lies under `prefix` ("/plugins/hello_world/"): its
  // leading literal segments are exactly the prefix's, plus at least one more.
  bool IsUnder(absl::string_view prefix) const;

  // Matches a request path (already split from the query, not decoded). On
  // a match returns the parameters, percent-decoded.
  std::optional<std::map<std::string, std::string>> Match(absl::string_view path) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  std::string pattern_;
  std::string shape_;
  std::vector<Segment> segments_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_ROUTING_ROUTE_PATTERN_H_
