#include "tracim/plugin/v1/route_pattern.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tracim::plugin::v1 {
namespace {

bool IsPathChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("-._~!$&'()*+,;=:@%").find(c) != absl::string_view::npos;
}

bool IsParamName(absl::string_view name) {
  if (name.empty()) return false;
  if (!(absl::ascii_isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes; nullopt on a malformed escape.
std::optional<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

bool IsRouteMethod(absl::string_view method) {
  for (absl::string_view known : kRouteMethods) {
    if (method == known) return true;
  }
  return false;
}

std::string PluginRoutePrefix(absl::string_view plugin_name) {
  return absl::StrCat("/plugins/", plugin_name, "/");
}

absl::StatusOr<RoutePattern> RoutePattern::Parse(absl::string_view pattern) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("route path '", pattern, "': ", what));
  };
  if (pattern.empty() || pattern[0] != '/') return error("must start with '/'");
  RoutePattern p;
  p.pattern_ = std::string(pattern);
  std::set<std::string> names;
  for (absl::string_view seg : absl::StrSplit(pattern.substr(1), '/')) {
    if (seg.empty()) return error("empty path segment");
    if (seg == "." || seg == "..") return error("'.' and '..' segments are not allowed");
    if (seg.front() == '{' || seg.back() == '}') {
      if (seg.size() < 2 || seg.front() != '{' || seg.back() != '}') {
        return error(absl::StrCat("malformed parameter '", seg, "'"));
      }
      absl::string_view name = seg.substr(1, seg.size() - 2);
      if (!IsParamName(name)) {
        return error(absl::StrCat("invalid parameter name '", name, "'"));
      }
      if (!names.insert(std::string(name)).second) {
        return error(absl::StrCat("parameter '", name, "' appears twice"));
      }
      p.segments_.emplace_back(name);
      p.literal_.push_back(false);
      absl::StrAppend(&p.shape_, "/{}");
      continue;
    }
    for (char c : seg) {
      if (!IsPathChar(c)) return error(absl::StrCat("invalid character '", std::string(1, c), "'"));
    }
    p.segments_.emplace_back(seg);
    p.literal_.push_back(true);
    absl::StrAppend(&p.shape_, "/", seg);
  }
  return p;
}

bool RoutePattern::IsUnder(absl::string_view prefix) const {
  std::vector<absl::string_view> want = absl::StrSplit(prefix, '/', absl::SkipEmpty());
  if (segments_.size() <= want.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!literal_[i] || segments_[i] != want[i]) return false;
  }
  return true;
}

std::optional<std::map<std::string, std::string>> RoutePattern::Match(
    absl::string_view raw_path) const {
  return MatchSegments(raw_path, /*decode_params=*/true);
}

std::optional<std::map<std::string, std::string>> RoutePattern::MatchDecoded(
    absl::string_view decoded_path) const {
  return MatchSegments(decoded_path, /*decode_params=*/false);
}

std::optional<std::map<std::string, std::string>> RoutePattern::MatchSegments(
    absl::string_view path, bool decode_params) const {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(path.substr(1), '/');
  if (parts.size() != segments_.size()) return std::nullopt;
  std::map<std::string, std::string> params;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (literal_[i]) {
      if (parts[i] != segments_[i]) return std::nullopt;
      continue;
    }
    if (parts[i].empty()) return std::nullopt;
    if (!decode_params) {
      params[segments_[i]] = std::string(parts[i]);
      continue;
    }
    std::optional<std::string> decoded = PercentDecode(parts[i]);
    if (!decoded) return std::nullopt;
    params[segments_[i]] = *std::move(decoded);
  }
  return params;
}

}  // namespace tracim::plugin::v1
