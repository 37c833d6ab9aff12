// Checks a plugin's Register request against what the broker launched and
// accepts: name, protocol version, hooks (tracim's catalogue), routes (under
// /plugins/<name>/, well-formed, no duplicates). Pure: thread-safe.
#ifndef TRACIM_BROKER_HANDSHAKE_REGISTRATION_VALIDATOR_H_
#define TRACIM_BROKER_HANDSHAKE_REGISTRATION_VALIDATOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "tracim/plugin/v1/broker.pb.h"
#include "tracim/plugin/v1/route_pattern.h"

namespace tracim::broker {

// Protocol versions this broker speaks, highest last.
inline constexpr uint32_t kSupportedProtocolVersions[] = {1};

struct RegisteredRoute {
  std::string method;
  plugin::v1::RoutePattern pattern;
  bool public_route = false;
  // Zero: the broker's default.
  absl::Duration timeout = absl::ZeroDuration();
};

// A validated registration.
struct Registration {
  std::string name;
  std::string version;
  std::string description;
  uint32_t protocol_version = 0;
  // Deduplicated, in the order the plugin sent them.
  std::vector<std::string> hooks;
  std::vector<RegisteredRoute> routes;
};

// FAILED_PRECONDITION "unsupported protocol version 7 (the broker speaks 1)".
absl::StatusOr<uint32_t> NegotiateProtocolVersion(uint32_t requested,
                                                  absl::Span<const uint32_t> supported);

// Validates `request` for the plugin launched as `expected_name`. Errors, in
// the order checked (the first problem found is reported):
//   FAILED_PRECONDITION  name mismatch; unsupported protocol version
//   INVALID_ARGUMENT     unknown hook; bad method; malformed route path;
//                        route outside /plugins/<name>/; duplicate route;
//                        timeout over one hour
absl::StatusOr<Registration> ValidateRegistration(
    const tracim::plugin::v1::RegisterRequest& request, const std::string& expected_name,
    absl::Span<const uint32_t> supported = kSupportedProtocolVersions);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HANDSHAKE_REGISTRATION_VALIDATOR_H_
