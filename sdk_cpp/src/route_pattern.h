// A plugin route's path pattern ("/plugins/<name>/items/{id}"): validation
// against protocol v1's rules and matching of request paths. Immutable once
// parsed: safe to share between threads.
#ifndef TRACIM_SDK_CPP_SRC_ROUTE_PATTERN_H_
#define TRACIM_SDK_CPP_SRC_ROUTE_PATTERN_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace tracim::plugin::internal {

class RoutePattern {
 public:
  // Parses `path` for plugin `plugin_name`. INVALID_ARGUMENT, with a message
  // naming the problem, unless `path` is "/plugins/<plugin_name>/" followed
  // by one or more non-empty segments, each either literal (RFC 3986 pchar
  // characters, not "." or "..") or a "{param}" with a C identifier, params
  // unique. The broker applies the same rules.
  static absl::StatusOr<RoutePattern> Parse(std::string_view path, std::string_view plugin_name);

  // The pattern as registered.
  const std::string& text() const { return text_; }

  // The pattern with every param renamed "{}": two routes with the same
  // method and shape are duplicates.
  std::string Shape() const;

  // When `path` matches, the values of the params; nullopt otherwise.
  std::optional<std::map<std::string, std::string>> Match(std::string_view path) const;

  // How specific the pattern is, for choosing between several matches: one
  // entry per segment, true for a literal. Greater (lexicographically) wins,
  // so "/x/items/new" beats "/x/items/{id}".
  const std::vector<bool>& Specificity() const { return literal_; }

 private:
  std::string text_;
  // Segment text; for a param, its name.
  std::vector<std::string> segments_;
  std::vector<bool> literal_;
};

// Whether `method` is one protocol v1 routes accept ("GET", "POST", "PUT",
// "PATCH", "DELETE", "HEAD", "OPTIONS"; upper case).
bool IsRouteMethod(std::string_view method);

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_ROUTE_PATTERN_H_
