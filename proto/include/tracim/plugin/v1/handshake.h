// Names shared by the broker and every plugin SDK for the registration
// handshake (docs/protocol.md). Constants only: safe from any thread.
#ifndef TRACIM_PLUGIN_V1_HANDSHAKE_H_
#define TRACIM_PLUGIN_V1_HANDSHAKE_H_

#include <cstdint>

namespace tracim::plugin::v1 {

// Environment handed to every plugin launch.
// The plugin's name (folder name without "tracim_backend_").
inline constexpr char kEnvPluginName[] = "TRACIM_PLUGIN_NAME";
// Per-launch secret: 64 lower-case hex digits. Sent back in every call.
inline constexpr char kEnvPluginSecret[] = "TRACIM_PLUGIN_SECRET";
// Absolute path of the Unix socket the plugin must serve on.
inline constexpr char kEnvPluginSocket[] = "TRACIM_PLUGIN_SOCKET";
// Absolute path of the broker's control socket (Registrar, HostApi, ...).
inline constexpr char kEnvBrokerSocket[] = "TRACIM_BROKER_SOCKET";
// Protocol versions the broker speaks, comma-separated, e.g. "1".
inline constexpr char kEnvProtocolVersions[] = "TRACIM_PLUGIN_PROTOCOL_VERSIONS";
// Launch number of this plugin (1 for the first start), for logs.
inline constexpr char kEnvPluginLaunch[] = "TRACIM_PLUGIN_LAUNCH";

// gRPC metadata key carrying the secret, on calls in both directions.
inline constexpr char kSecretMetadataKey[] = "tracim-plugin-secret";

// The service name plugins report SERVING for in grpc.health.v1.
inline constexpr char kPluginServiceName[] = "tracim.plugin.v1.Plugin";

// The protocol version described by proto/tracim/plugin/v1.
inline constexpr uint32_t kProtocolVersion = 1;

}  // namespace tracim::plugin::v1

#endif  // TRACIM_PLUGIN_V1_HANDSHAKE_H_
