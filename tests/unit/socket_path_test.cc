// Plugin socket paths must fit in sockaddr_un (107 bytes and a NUL):
// go-plugin users hit that limit with deep temp folders (terraform#22198).
#include <string>

#include "broker/supervisor/plugin_host.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

TEST(SocketPathFor, NamesTheSocketAfterThePluginWhenItFits) {
  auto path = PluginHost::SocketPathFor("/run/tracim", "hello_world", 3);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->string(), "/run/tracim/plugin-hello_world.sock");
}

TEST(SocketPathFor, FallsBackToAShortNameForALongPluginName) {
  std::string dir = "/" + std::string(80, 'd');
  auto path = PluginHost::SocketPathFor(dir, std::string(40, 'n'), 7);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->string(), dir + "/p7.sock");
  EXPECT_LE(path->string().size(), 107u);
}

TEST(SocketPathFor, KeepsAPathOfExactly107Bytes) {
  // "/" + dir + "/plugin-x.sock" = 107 bytes.
  std::string dir = "/" + std::string(107 - 1 - std::string("/plugin-x.sock").size(), 'd');
  auto path = PluginHost::SocketPathFor(dir, "x", 0);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(path->string().size(), 107u);
  EXPECT_EQ(path->filename(), "plugin-x.sock");
}

TEST(SocketPathFor, RefusesARuntimeDirTooLongForAnySocket) {
  std::string dir = "/" + std::string(100, 'd');
  auto path = PluginHost::SocketPathFor(dir, "hello_world", 12);
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(path.status().message(),
            "broker.runtime_dir: '" + dir +
                "' is too long for Unix socket paths (110 bytes with a socket name, the limit is "
                "107)");
}

}  // namespace
}  // namespace tracim::broker
