#include "broker/handshake/registration_validator.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "broker/common/status_macros.h"
#include "tracim/plugin/v1/hook_catalogue.h"
#include "tracim/plugin/v1/route_pattern.h"

namespace tracim::broker {
namespace {

using ::tracim::plugin::v1::IsKnownHook;
using ::tracim::plugin::v1::IsRouteMethod;
using ::tracim::plugin::v1::kRouteMethods;
using ::tracim::plugin::v1::PluginRoutePrefix;
using ::tracim::plugin::v1::RoutePattern;

constexpr uint32_t kMaxRouteTimeoutMs = 3'600'000;

}  // namespace

absl::StatusOr<uint32_t> NegotiateProtocolVersion(uint32_t requested,
                                                  absl::Span<const uint32_t> supported) {
  for (uint32_t v : supported) {
    if (v == requested) return v;
  }
  std::string speaks = absl::StrJoin(supported, ", ");
  if (requested == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol_version is not set (the broker speaks ", speaks, ")"));
  }
  return absl::FailedPreconditionError(absl::StrCat("unsupported protocol version ", requested,
                                                    " (the broker speaks ", speaks, ")"));
}

absl::StatusOr<Registration> ValidateRegistration(
    const tracim::plugin::v1::RegisterRequest& request, const std::string& expected_name,
    absl::Span<const uint32_t> supported) {
  if (request.name() != expected_name) {
    return absl::FailedPreconditionError(absl::StrCat("plugin name '", request.name(),
                                                      "' does not match the launched plugin '",
                                                      expected_name, "'"));
  }
  Registration r;
  r.name = request.name();
  r.version = request.version();
  r.description = request.description();
  ASSIGN_OR_RETURN(r.protocol_version,
                   NegotiateProtocolVersion(request.protocol_version(), supported));

  std::set<std::string> seen_hooks;
  for (const std::string& hook : request.hooks()) {
    if (!IsKnownHook(hook)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown hook '", hook, "'"));
    }
    if (seen_hooks.insert(hook).second) r.hooks.push_back(hook);
  }

  const std::string prefix = PluginRoutePrefix(expected_name);
  std::map<std::string, std::string> shapes;  // "GET /plugins/x/{}" → route as sent
  for (const auto& route : request.routes()) {
    std::string label = absl::StrCat(route.method(), " ", route.path());
    if (!IsRouteMethod(route.method())) {
      return absl::InvalidArgumentError(absl::StrCat("route '", label, "': unsupported method '",
                                                     route.method(), "' (expected one of ",
                                                     absl::StrJoin(kRouteMethods, ", "), ")"));
    }
    ASSIGN_OR_RETURN(RoutePattern pattern, RoutePattern::Parse(route.path()));
    if (!pattern.IsUnder(prefix)) {
      return absl::InvalidArgumentError(absl::StrCat("route '", label, "' is outside ", prefix));
    }
    auto [it, inserted] = shapes.emplace(absl::StrCat(route.method(), " ", pattern.shape()), label);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate route '", label, "' (same as '", it->second, "')"));
    }
    if (route.timeout_ms() > kMaxRouteTimeoutMs) {
      return absl::InvalidArgumentError(absl::StrCat("route '", label, "': timeout_ms ",
                                                     route.timeout_ms(), " is over one hour"));
    }
    r.routes.push_back({route.method(), std::move(pattern), route.public_(),
                        absl::Milliseconds(route.timeout_ms())});
  }
  return r;
}

}  // namespace tracim::broker
