#include "broker/http/http_router.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tracim::broker {
namespace {

absl::Status CheckRoute(absl::string_view route) {
  if (!absl::StartsWith(route, "/")) {
    return absl::InvalidArgumentError(absl::StrCat("route '", route, "' must start with '/'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status HttpRouter::AddExact(std::string path, HttpHandler handler) {
  if (absl::Status s = CheckRoute(path); !s.ok()) return s;
  if (exact_.count(path) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("route '", path, "' is already bound"));
  }
  exact_.emplace(std::move(path), std::move(handler));
  return absl::OkStatus();
}

absl::Status HttpRouter::AddPrefix(std::string prefix, HttpHandler handler) {
  if (absl::Status s = CheckRoute(prefix); !s.ok()) return s;
  for (const auto& [p, h] : prefixes_) {
    if (p == prefix) {
      return absl::AlreadyExistsError(absl::StrCat("route prefix '", prefix, "' is already bound"));
    }
  }
  prefixes_.emplace_back(std::move(prefix), std::move(handler));
  std::stable_sort(prefixes_.begin(), prefixes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  return absl::OkStatus();
}

const HttpHandler* HttpRouter::Find(absl::string_view path) const {
  if (auto it = exact_.find(path); it != exact_.end()) return &it->second;
  for (const auto& [prefix, handler] : prefixes_) {
    if (absl::StartsWith(path, prefix)) return &handler;
  }
  return nullptr;
}

}  // namespace tracim::broker
