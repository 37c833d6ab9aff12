#include "sdk_cpp/src/handshake_env.h"

#include <sys/un.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin::internal {
namespace {

namespace hs = ::tracim::plugin::v1;

absl::Status Missing(const char* name) {
  return absl::InvalidArgumentError(absl::StrCat(name, " is not set (the broker sets it)"));
}

// A path a Unix socket can bind: absolute and within sockaddr_un.sun_path.
bool IsSocketPath(std::string_view path) {
  return !path.empty() && path.front() == '/' && path.size() < sizeof(sockaddr_un{}.sun_path);
}

}  // namespace

std::optional<std::string> ProcessEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::StatusOr<HandshakeEnv> ReadHandshakeEnv(const EnvLookup& lookup) {
  auto get = [&](const char* name) { return lookup(name).value_or(""); };
  HandshakeEnv env;
  env.plugin_socket = get(hs::kEnvPluginSocket);
  if (env.plugin_socket.empty()) {
    return absl::NotFoundError(absl::StrCat(hs::kEnvPluginSocket, " is not set"));
  }
  if (!IsSocketPath(env.plugin_socket)) {
    return absl::InvalidArgumentError(absl::StrCat(hs::kEnvPluginSocket,
                                                   " must be an absolute path shorter than ",
                                                   sizeof(sockaddr_un{}.sun_path), " bytes"));
  }
  env.plugin_name = get(hs::kEnvPluginName);
  if (env.plugin_name.empty()) return Missing(hs::kEnvPluginName);
  env.secret = get(hs::kEnvPluginSecret);
  if (env.secret.empty()) return Missing(hs::kEnvPluginSecret);
  env.broker_socket = get(hs::kEnvBrokerSocket);
  if (env.broker_socket.empty()) return Missing(hs::kEnvBrokerSocket);
  if (!IsSocketPath(env.broker_socket)) {
    return absl::InvalidArgumentError(absl::StrCat(hs::kEnvBrokerSocket,
                                                   " must be an absolute path shorter than ",
                                                   sizeof(sockaddr_un{}.sun_path), " bytes"));
  }
  env.protocol_versions = get(hs::kEnvProtocolVersions);
  if (env.protocol_versions.empty()) return Missing(hs::kEnvProtocolVersions);
  env.launch = get(hs::kEnvPluginLaunch);
  return env;
}

absl::StatusOr<uint32_t> ChooseProtocolVersion(std::string_view broker_versions) {
  for (absl::string_view item : absl::StrSplit(AsAbsl(broker_versions), ',')) {
    uint32_t version = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(item), &version) &&
        version == hs::kProtocolVersion) {
      return version;
    }
  }
  return absl::FailedPreconditionError(absl::StrCat("broker speaks protocol versions ",
                                                    AsAbsl(broker_versions), ", this SDK speaks ",
                                                    hs::kProtocolVersion));
}

}  // namespace tracim::plugin::internal
