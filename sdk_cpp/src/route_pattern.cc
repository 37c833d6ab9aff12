#include "sdk_cpp/src/route_pattern.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sdk_cpp/src/string_view_compat.h"

namespace tracim::plugin::internal {
namespace {

// Characters of a literal segment (RFC 3986 pchar; '%' for escapes).
constexpr char kLiteralPunctuation[] = "-._~!$&'()*+,;=:@%";
constexpr char kLiteralCharacters[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@%";

bool IsIdentifier(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

std::vector<absl::string_view> Segments(absl::string_view path) {
  // Skip the leading '/'.
  std::vector<absl::string_view> pieces = absl::StrSplit(path.substr(1), '/');
  return pieces;
}

}  // namespace

absl::StatusOr<RoutePattern> RoutePattern::Parse(std::string_view std_path,
                                                 std::string_view plugin_name) {
  const absl::string_view path = AsAbsl(std_path);
  const std::string prefix = absl::StrCat("/plugins/", AsAbsl(plugin_name), "/");
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("route path '", path, "' ", why));
  };
  if (!absl::StartsWith(path, prefix) || path.size() == prefix.size()) {
    return invalid(absl::StrCat("must be under ", prefix));
  }
  RoutePattern pattern;
  pattern.text_ = std::string(path);
  std::set<absl::string_view> params;
  for (absl::string_view segment : Segments(path)) {
    if (segment.empty()) return invalid("has an empty segment");
    const bool opens = absl::StrContains(segment, '{');
    const bool closes = absl::StrContains(segment, '}');
    if (opens || closes) {
      absl::string_view name = segment.substr(1, segment.size() - 2);
      if (segment.front() != '{' || segment.back() != '}' || segment.size() < 2 ||
          !IsIdentifier(name)) {
        return invalid(absl::StrCat("has a malformed parameter segment '", segment,
                                    "' (expected {name}, name a C identifier)"));
      }
      if (!params.insert(name).second) {
        return invalid(absl::StrCat("repeats the parameter '", name, "'"));
      }
      pattern.segments_.emplace_back(name);
      pattern.literal_.push_back(false);
    } else {
      if (segment == "." || segment == "..") return invalid("has a '.' or '..' segment");
      if (segment.find_first_not_of(kLiteralCharacters) != absl::string_view::npos) {
        return invalid(absl::StrCat("has a segment with a character outside [A-Za-z0-9",
                                    kLiteralPunctuation, "]: '", segment, "'"));
      }
      pattern.segments_.emplace_back(segment);
      pattern.literal_.push_back(true);
    }
  }
  return pattern;
}

std::string RoutePattern::Shape() const {
  std::string shape;
  for (size_t i = 0; i < segments_.size(); ++i) {
    absl::StrAppend(&shape, "/", literal_[i] ? segments_[i] : "{}");
  }
  return shape;
}

std::optional<std::map<std::string, std::string>> RoutePattern::Match(
    std::string_view std_path) const {
  const absl::string_view path = AsAbsl(std_path);
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::vector<absl::string_view> pieces = Segments(path);
  if (pieces.size() != segments_.size()) return std::nullopt;
  std::map<std::string, std::string> params;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (literal_[i]) {
      if (pieces[i] != segments_[i]) return std::nullopt;
    } else {
      if (pieces[i].empty()) return std::nullopt;
      params.emplace(segments_[i], pieces[i]);
    }
  }
  return params;
}

bool IsRouteMethod(std::string_view method) {
  for (std::string_view known : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
    if (method == known) return true;
  }
  return false;
}

}  // namespace tracim::plugin::internal
