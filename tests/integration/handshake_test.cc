// The registration handshake and the stop sequence, end to end: the real
// broker binary, real plugin processes (the fault-injection test plugin,
// hello_world as a C++ library plugin, a Python plugin), real Unix sockets.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr milliseconds kTimeout(15000);

// Stops the broker with SIGTERM and checks the clean exit and that none of
// `pids` survived.
void StopCleanly(BrokerFixture& broker, const std::vector<pid_t>& pids) {
  broker.Signal(SIGTERM);
  auto code = broker.WaitExit(kTimeout);
  ASSERT_TRUE(code.has_value()) << broker.Output();
  EXPECT_EQ(*code, 0) << broker.Output();
  for (pid_t pid : pids) EXPECT_FALSE(ProcessAlive(pid)) << "pid " << pid << " survived";
}

TEST(Handshake, HelloWorldPluginSaysHelloOnPluginsLoaded) {
  BrokerFixture broker;
  broker.CopyPlugin(ExamplePluginsDir() / "tracim_backend_hello_world");
  broker.Start();
  ASSERT_TRUE(broker.WaitForLine("Hello World !", kTimeout)) << broker.Output();
  auto status = broker.PluginStatus("hello_world");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state(), "ready");
  EXPECT_EQ(status->version(), "1.0.0");
  EXPECT_THAT(status->hooks(), ::testing::Contains("on_plugins_loaded"));
  EXPECT_THAT(status->hooks(), ::testing::Contains("on_user_created"));
  ASSERT_EQ(status->routes_size(), 1);
  EXPECT_EQ(status->routes(0).method(), "GET");
  EXPECT_EQ(status->routes(0).path(), "/plugins/hello_world/user");
  // The plugin's output is tagged with its name and pid.
  EXPECT_TRUE(broker.WaitForLine(
      "[hello_world pid=" + std::to_string(status->pid()) + "] Hello World !", kTimeout));
  EXPECT_EQ(broker.CountLines("Hello World !"), 1);
  StopCleanly(broker, {status->pid()});
  EXPECT_THAT(broker.Output(), HasSubstr("plugin 'hello_world' stopped"));
}

TEST(Handshake, SharedLibraryPluginIsLoadedByTheRunner) {
  BrokerFixture broker;
  broker.AddPlugin("hello_world", "{\"library\": \"" + HelloWorldLibrary().string() +
                                      "\", \"version\": \"1.0.0\"}");
  broker.Start();
  auto status = broker.WaitForState("hello_world", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  EXPECT_TRUE(broker.WaitForLine(
      "[hello_world pid=" + std::to_string(status->pid()) + "] Hello World !", kTimeout))
      << broker.Output();
  StopCleanly(broker, {status->pid()});
}

TEST(Handshake, PythonPluginCompletesTheHandshake) {
  BrokerFixture broker;
  broker.CopyPlugin(TestPluginsDir() / "tracim_backend_py_hello");
  broker.AddConfig("plugin.py_hello.greeting = bonjour");
  broker.Start();
  auto status = broker.WaitForState("py_hello", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  EXPECT_THAT(status->routes(0).path(), "/plugins/py_hello/ping");
  EXPECT_TRUE(broker.WaitForLine("py_hello: Hello World !", kTimeout)) << broker.Output();
  EXPECT_TRUE(broker.WaitForLine("settings: greeting", kTimeout)) << broker.Output();
  StopCleanly(broker, {status->pid()});
}

TEST(Handshake, PluginGetsSettingsReducedEnvironmentAndItsFolderAsCwd) {
  BrokerFixture broker;
  broker.AddTestPlugin("alpha", "normal", "\"env\": {\"FROM_MANIFEST\": \"1\"}");
  broker.AddConfig("plugin.alpha.greeting = hello\nplugin.alpha.colour = %(here)s/blue");
  broker.Start({{"BROKER_ONLY_SECRET", "s3cret"}, {"TRACIM_PLUGIN__ALPHA__COLOUR", "red"}});
  auto status = broker.WaitForState("alpha", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  ASSERT_TRUE(broker.WaitForLine("test_plugin alpha registered", kTimeout));
  EXPECT_TRUE(broker.WaitForLine(
      "test_plugin alpha registered: protocol 1, settings: colour=red,greeting=hello,", kTimeout))
      << broker.Output();
  std::string output = broker.Output();
  EXPECT_THAT(output, HasSubstr("FROM_MANIFEST,"));
  EXPECT_THAT(output, HasSubstr("TRACIM_PLUGIN_SECRET,"));
  EXPECT_THAT(output, HasSubstr("PYTHONUNBUFFERED,"));
  EXPECT_THAT(output, Not(HasSubstr("BROKER_ONLY_SECRET")));
  EXPECT_THAT(output, HasSubstr("test_plugin alpha cwd: " +
                                (broker.plugin_folder() / "tracim_backend_alpha").string()));
  StopCleanly(broker, {status->pid()});
}

// One faulty plugin beside a healthy one: the faulty one ends in `failed`
// with the exact reason, one log line names it, its process is gone, and the
// healthy one is ready and gets on_plugins_loaded naming both.
struct FailureCase {
  std::string mode;
  std::string extra;   // manifest fields
  std::string reason;  // expected last_exit_reason (prefix)
};

void PrintTo(const FailureCase& c, std::ostream* os) { *os << c.mode; }

class HandshakeFailure : public ::testing::TestWithParam<FailureCase> {};

TEST_P(HandshakeFailure, IsReportedAndDoesNotDisturbOtherPlugins) {
  const FailureCase& c = GetParam();
  BrokerFixture broker;
  // One launch, no restart: each case is about one handshake (restarts are
  // covered by supervision_test.cc).
  const std::string no_restart = R"("restart": {"max_failures": 0})";
  broker.AddTestPlugin("bad", c.mode, c.extra.empty() ? no_restart : c.extra + ", " + no_restart);
  broker.AddTestPlugin("good", "normal");
  broker.Start();
  auto bad = broker.WaitForState("bad", "failed", kTimeout);
  ASSERT_TRUE(bad.has_value()) << broker.Output();
  EXPECT_THAT(bad->last_exit_reason(), StartsWith(c.reason)) << broker.Output();
  // The failed launch is stopped (or already exited).
  if (bad->pid() != 0) {
    EXPECT_TRUE(WaitProcessGone(bad->pid(), kTimeout));
  }
  EXPECT_TRUE(broker.WaitForLine("plugin 'bad' failed: " + c.reason, kTimeout));
  EXPECT_EQ(broker.CountLines("plugin 'bad' failed: "), 1) << broker.Output();

  auto good = broker.WaitForState("good", "ready", kTimeout);
  ASSERT_TRUE(good.has_value()) << broker.Output();
  EXPECT_TRUE(broker.WaitForLine("test_plugin good got on_plugins_loaded", kTimeout));
  EXPECT_TRUE(broker.WaitForLine("ready=good, failed=bad,", kTimeout)) << broker.Output();
  StopCleanly(broker, {good->pid()});
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HandshakeFailure,
    ::testing::Values(
        FailureCase{"exit-before-register", "", "exited before registering: exit code 3"},
        FailureCase{"never-register", "\"start_timeout_ms\": 500",
                    "did not register within the start timeout (500 ms)"},
        FailureCase{"bad-secret", "",
                    "exited before registering: exit code 1; Register was refused: wrong secret"},
        FailureCase{"no-secret", "",
                    "exited before registering: exit code 1; Register was refused: missing "
                    "tracim-plugin-secret metadata"},
        FailureCase{"bad-version", "",
                    "registration refused: unsupported protocol version 99 (the broker speaks 1)"},
        FailureCase{"unknown-hook", "", "registration refused: unknown hook 'on_user_create'"},
        FailureCase{"route-outside", "",
                    "registration refused: route 'GET /plugins/other/x' is outside /plugins/bad/"},
        FailureCase{"route-duplicate", "",
                    "registration refused: duplicate route 'GET /plugins/bad/items/{b}' (same as "
                    "'GET /plugins/bad/items/{a}')"},
        FailureCase{"unreachable", "\"start_timeout_ms\": 1000",
                    "plugin socket never reachable: "}),
    [](const ::testing::TestParamInfo<FailureCase>& info) {
      std::string name = info.param.mode;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(Handshake, BrokenManifestsAreReportedAndSkipped) {
  BrokerFixture broker;
  broker.AddPlugin("missing_command", R"({"command": ["./nope"], "version": "1"})");
  auto folder = broker.AddPlugin("not_executable", R"({"command": ["./run.sh"], "version": "1"})");
  WriteFile(folder / "run.sh", "#!/bin/sh\n", 0644);
  broker.AddPlugin("bad_json", R"({"command": ["x"], )");
  broker.AddTestPlugin("good", "normal");
  std::filesystem::create_directories(broker.plugin_folder() / "not_a_plugin");
  broker.Start();
  auto good = broker.WaitForState("good", "ready", kTimeout);
  ASSERT_TRUE(good.has_value()) << broker.Output();
  std::string output = broker.Output();
  const std::string base = broker.plugin_folder().string() + "/tracim_backend_";
  EXPECT_THAT(output, HasSubstr("plugin 'missing_command' skipped: " + base +
                                "missing_command/plugin.json: command './nope' not found in the "
                                "plugin folder"));
  EXPECT_THAT(output,
              HasSubstr("plugin 'not_executable' skipped: " + base +
                        "not_executable/plugin.json: command './run.sh' is not executable"));
  EXPECT_THAT(output, HasSubstr("plugin 'bad_json' skipped: " + base +
                                "bad_json/plugin.json: invalid JSON at line 1"));
  EXPECT_EQ(broker.ListPlugins().size(), 1u);
  EXPECT_TRUE(broker.WaitForLine("test_plugin good got on_plugins_loaded", kTimeout));
  StopCleanly(broker, {good->pid()});
}

TEST(Stop, EscalatesToSigkillForAPluginIgnoringShutdownAndKillsItsChildren) {
  BrokerFixture broker;
  broker.AddTestPlugin("stubborn", "fork-child", "\"shutdown_grace_ms\": 200");
  broker.Start();
  auto status = broker.WaitForState("stubborn", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  ASSERT_TRUE(broker.WaitForLine("test_plugin stubborn child pid ", kTimeout));
  std::string output = broker.Output();
  size_t at = output.find("child pid ") + 10;
  pid_t child = std::stoi(output.substr(at));
  ASSERT_TRUE(ProcessAlive(child));

  StopCleanly(broker, {status->pid(), child});
  output = broker.Output();
  EXPECT_THAT(output, HasSubstr("test_plugin stubborn shutdown requested: broker stopping "
                                "(grace 200 ms), ignored"));
  EXPECT_THAT(output, HasSubstr("still running: sending SIGTERM to its process group"));
  EXPECT_THAT(output, HasSubstr("still running: sending SIGKILL to its process group"));
  EXPECT_THAT(output, HasSubstr("plugin 'stubborn' stopped (pid " + std::to_string(status->pid()) +
                                ", killed by signal 9 (SIGKILL))"));
}

// Starts one test plugin in `mode`, stops the broker, and expects the
// plugin to have taken the Shutdown request and exited 0 without a signal.
void ExpectExitOnShutdownWithoutSignals(const std::string& name, const std::string& mode) {
  BrokerFixture broker;
  broker.AddTestPlugin(name, mode);
  broker.Start();
  auto status = broker.WaitForState(name, "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  StopCleanly(broker, {status->pid()});
  std::string output = broker.Output();
  EXPECT_THAT(output, HasSubstr("test_plugin " + name + " shutdown requested: broker stopping"));
  EXPECT_THAT(output, HasSubstr("plugin '" + name + "' stopped (pid " +
                                std::to_string(status->pid()) + ", exit code 0)"));
  EXPECT_THAT(output, Not(HasSubstr("sending SIGTERM")));
}

TEST(Stop, CooperativePluginExitsOnShutdownWithoutSignals) {
  ExpectExitOnShutdownWithoutSignals("polite", "normal");
}

TEST(Stop, APluginThatAnswersShutdownCancelledKeepsItsGraceAndExitsWithoutSignals) {
  // Plugins that shut their gRPC server down hard once asked to stop may
  // fail the Shutdown call itself before its answer leaves: they took it and
  // exit within the short wait the broker gives a failed call, so no SIGTERM.
  ExpectExitOnShutdownWithoutSignals("abrupt", "cancel-shutdown");
}

TEST(Stop, SigintStopsLikeSigterm) {
  BrokerFixture broker;
  broker.AddTestPlugin("a", "normal");
  broker.Start();
  auto status = broker.WaitForState("a", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  broker.Signal(SIGINT);
  auto code = broker.WaitExit(kTimeout);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_FALSE(ProcessAlive(status->pid()));
  EXPECT_THAT(broker.Output(), HasSubstr("received SIGINT: stopping every plugin"));
}

TEST(Stop, PluginsDieWhenTheBrokerIsKilled) {
  BrokerFixture broker;
  broker.AddTestPlugin("orphan", "ignore-shutdown");
  broker.Start();
  auto status = broker.WaitForState("orphan", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  broker.Signal(SIGKILL);
  ASSERT_TRUE(broker.WaitExit(kTimeout).has_value());
  // PR_SET_PDEATHSIG(SIGKILL), set by the runner before exec.
  EXPECT_TRUE(WaitProcessGone(status->pid(), milliseconds(1000)));
}

TEST(Startup, InvalidConfigValueIsAClearErrorNamingTheKey) {
  BrokerFixture broker;
  broker.Start({{"TRACIM_BROKER__LISTEN", "localhost:80a80"}});
  auto code = broker.WaitExit(kTimeout);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(broker.Output(),
              HasSubstr("tracim-plugin-broker: broker.listen (from TRACIM_BROKER__LISTEN): "
                        "invalid port '80a80'"));
}

TEST(Startup, MissingPluginFolderIsAClearError) {
  BrokerFixture broker;
  broker.Start({{"TRACIM_PLUGIN__FOLDER_PATH", "/nonexistent/plugins"}});
  auto code = broker.WaitExit(kTimeout);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(
      broker.Output(),
      HasSubstr("plugin folder '/nonexistent/plugins' (plugin.folder_path) does not exist"));
}

}  // namespace
}  // namespace tracim::testing
