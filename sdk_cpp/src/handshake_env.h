// The environment the broker hands a plugin launch (protocol v1, names in
// proto/include/tracim/plugin/v1/handshake.h), read and checked before the
// plugin serves. Pure functions: safe from any thread.
#ifndef TRACIM_SDK_CPP_SRC_HANDSHAKE_ENV_H_
#define TRACIM_SDK_CPP_SRC_HANDSHAKE_ENV_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace tracim::plugin::internal {

// The one line printed by a plugin started by hand (exit code 2).
inline constexpr char kStartedByHandMessage[] =
    "this is a tracim plugin: it is started by tracim-plugin-broker, not by hand "
    "(TRACIM_PLUGIN_SOCKET is not set); see docs/writing-plugins.md";

struct HandshakeEnv {
  std::string plugin_name;
  std::string secret;
  // Absolute paths.
  std::string plugin_socket;
  std::string broker_socket;
  // As given, e.g. "1" or "1,2".
  std::string protocol_versions;
  // For logs; may be empty.
  std::string launch;
};

// Looks up one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// The process environment.
std::optional<std::string> ProcessEnv(const char* name);

// Reads the handshake variables. NOT_FOUND when TRACIM_PLUGIN_SOCKET is unset
// or empty (the plugin was started by hand); INVALID_ARGUMENT naming the
// first other variable that is missing or malformed, e.g.
//   "TRACIM_PLUGIN_SECRET is not set (the broker sets it)"
//   "TRACIM_PLUGIN_SOCKET must be an absolute path shorter than 108 bytes"
absl::StatusOr<HandshakeEnv> ReadHandshakeEnv(const EnvLookup& lookup);

// The protocol version this SDK speaks (1) if `broker_versions` lists it;
// otherwise FAILED_PRECONDITION
//   "broker speaks protocol versions <broker_versions>, this SDK speaks 1".
absl::StatusOr<uint32_t> ChooseProtocolVersion(std::string_view broker_versions);

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_HANDSHAKE_ENV_H_
