#include "sdk_cpp/src/handshake_env.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace tracim::plugin::internal {
namespace {

// A complete, valid launch environment; tests remove or change one entry.
std::map<std::string, std::string> ValidEnv() {
  return {
      {"TRACIM_PLUGIN_NAME", "hello_world"},
      {"TRACIM_PLUGIN_SECRET", std::string(64, 'a')},
      {"TRACIM_PLUGIN_SOCKET", "/run/tracim/hello_world.sock"},
      {"TRACIM_BROKER_SOCKET", "/run/tracim/broker.sock"},
      {"TRACIM_PLUGIN_PROTOCOL_VERSIONS", "1"},
      {"TRACIM_PLUGIN_LAUNCH", "3"},
  };
}

EnvLookup LookupIn(const std::map<std::string, std::string>& env) {
  return [env](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

TEST(SdkReadHandshakeEnv, ReadsEveryVariable) {
  absl::StatusOr<HandshakeEnv> env = ReadHandshakeEnv(LookupIn(ValidEnv()));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->plugin_name, "hello_world");
  EXPECT_EQ(env->secret, std::string(64, 'a'));
  EXPECT_EQ(env->plugin_socket, "/run/tracim/hello_world.sock");
  EXPECT_EQ(env->broker_socket, "/run/tracim/broker.sock");
  EXPECT_EQ(env->protocol_versions, "1");
  EXPECT_EQ(env->launch, "3");
}

TEST(SdkReadHandshakeEnv, IsNotFoundWhenThePluginSocketIsUnsetOrEmpty) {
  auto env = ValidEnv();
  env.erase("TRACIM_PLUGIN_SOCKET");
  EXPECT_EQ(ReadHandshakeEnv(LookupIn(env)).status(),
            absl::NotFoundError("TRACIM_PLUGIN_SOCKET is not set"));
  env["TRACIM_PLUGIN_SOCKET"] = "";
  EXPECT_EQ(ReadHandshakeEnv(LookupIn(env)).status().code(), absl::StatusCode::kNotFound);
}

TEST(SdkReadHandshakeEnv, NamesAMissingVariable) {
  for (const char* name : {"TRACIM_PLUGIN_NAME", "TRACIM_PLUGIN_SECRET", "TRACIM_BROKER_SOCKET",
                           "TRACIM_PLUGIN_PROTOCOL_VERSIONS"}) {
    auto env = ValidEnv();
    env.erase(name);
    EXPECT_EQ(ReadHandshakeEnv(LookupIn(env)).status(),
              absl::InvalidArgumentError(std::string(name) + " is not set (the broker sets it)"));
  }
}

TEST(SdkReadHandshakeEnv, RefusesRelativeOrTooLongSocketPaths) {
  auto env = ValidEnv();
  env["TRACIM_PLUGIN_SOCKET"] = "relative.sock";
  EXPECT_EQ(ReadHandshakeEnv(LookupIn(env)).status(),
            absl::InvalidArgumentError(
                "TRACIM_PLUGIN_SOCKET must be an absolute path shorter than 108 bytes"));
  env = ValidEnv();
  env["TRACIM_BROKER_SOCKET"] = "/" + std::string(107, 'x');
  EXPECT_EQ(ReadHandshakeEnv(LookupIn(env)).status(),
            absl::InvalidArgumentError(
                "TRACIM_BROKER_SOCKET must be an absolute path shorter than 108 bytes"));
}

TEST(SdkChooseProtocolVersion, PicksOneWhenTheBrokerListsIt) {
  EXPECT_EQ(ChooseProtocolVersion("1").value(), 1u);
  EXPECT_EQ(ChooseProtocolVersion("1,2").value(), 1u);
  EXPECT_EQ(ChooseProtocolVersion(" 2 , 1 ").value(), 1u);
}

TEST(SdkChooseProtocolVersion, FailsWhenTheBrokerDoesNotSpeakOne) {
  EXPECT_EQ(
      ChooseProtocolVersion("2,3").status(),
      absl::FailedPreconditionError("broker speaks protocol versions 2,3, this SDK speaks 1"));
  EXPECT_EQ(ChooseProtocolVersion("one").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ChooseProtocolVersion("11").status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tracim::plugin::internal
