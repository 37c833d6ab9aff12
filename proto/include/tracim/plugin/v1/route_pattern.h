// A plugin route under protocol v1: the HTTP methods a route may use and its
// path pattern ("/plugins/<name>/items/{id}"), parsed once at registration and
// matched against request paths. One implementation shared by the broker and
// the C++ SDK, so both apply the same rules with the same messages.
// Immutable after Parse: safe to share between threads.
#ifndef TRACIM_PLUGIN_V1_ROUTE_PATTERN_H_
#define TRACIM_PLUGIN_V1_ROUTE_PATTERN_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracim::plugin::v1 {

// The methods a route may use, upper case, in the order error messages list
// them.
inline constexpr const char* kRouteMethods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                                "PATCH", "DELETE", "OPTIONS"};

// Whether `method` is one of kRouteMethods (case-sensitive: "get" is not).
bool IsRouteMethod(absl::string_view method);

// "/plugins/<plugin_name>/": the prefix every route of that plugin must lie
// under (see RoutePattern::IsUnder).
std::string PluginRoutePrefix(absl::string_view plugin_name);

class RoutePattern {
 public:
  // Parses an absolute pattern. Rules: starts with "/", no empty segment
  // (a trailing "/" is one), no "." or ".." segment, no "?" or "#", a segment
  // is either literal ([A-Za-z0-9-._~!$&'()*+,;=:@%] characters) or exactly
  // "{name}" with name [A-Za-z_][A-Za-z0-9_]*, names unique. The first
  // problem from the left is reported as
  // INVALID_ARGUMENT "route path '<p>': <what is wrong>".
  static absl::StatusOr<RoutePattern> Parse(absl::string_view pattern);

  // The pattern as registered.
  const std::string& pattern() const { return pattern_; }
  // The pattern with every parameter renamed to "{}": two routes with the
  // same method and shape are duplicates.
  const std::string& shape() const { return shape_; }
  // Whether the pattern lies under `prefix` ("/plugins/hello_world/"): its
  // leading literal segments are exactly the prefix's, plus at least one more.
  bool IsUnder(absl::string_view prefix) const;

  // How specific the pattern is, for choosing between several matches: one
  // entry per segment, true for a literal. Greater (lexicographically) wins,
  // so "/x/items/new" beats "/x/items/{id}".
  const std::vector<bool>& Specificity() const { return literal_; }

  // Matches a request path as sent on the wire (split from the query, not
  // decoded; the broker's case). On a match returns the parameters,
  // percent-decoded; a malformed escape in a parameter matches nothing.
  // Literal segments compare undecoded.
  std::optional<std::map<std::string, std::string>> Match(absl::string_view raw_path) const;

  // Matches a path that is already percent-decoded (HttpRequest::path as a
  // plugin receives it): parameters are returned as they are, since decoding
  // again would decode twice.
  std::optional<std::map<std::string, std::string>> MatchDecoded(
      absl::string_view decoded_path) const;

 private:
  std::optional<std::map<std::string, std::string>> MatchSegments(absl::string_view path,
                                                                  bool decode_params) const;

  std::string pattern_;
  std::string shape_;
  // Per segment: the literal text, or the parameter name.
  std::vector<std::string> segments_;
  // Per segment: true for a literal, false for a parameter.
  std::vector<bool> literal_;
};

}  // namespace tracim::plugin::v1

#endif  // TRACIM_PLUGIN_V1_ROUTE_PATTERN_H_
