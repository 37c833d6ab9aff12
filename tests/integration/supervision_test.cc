// Supervision with real plugin processes: restarts after every kind of
// failure (with backoff and a crash-loop limit), hang detection by health
// checks and acknowledgement timeouts, redelivery to the next launch,
// operator actions, and the broker's resources back at their baseline.
#include <dirent.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

namespace v1 = tracim::plugin::v1;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr milliseconds kTimeout(15000);
constexpr char kToken[] = "test-backend-token-0123456789";

v1::Event UserCreated(const std::string& public_name) {
  v1::Event e;
  e.set_hook("on_user_created");
  e.mutable_user()->set_public_name(public_name);
  return e;
}

int CountOpenFds(pid_t pid) {
  int n = 0;
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// Polls the broker's open descriptors until there are at most `baseline`
// or `timeout` passes; the last count. Descriptors of a dead launch close
// asynchronously (gRPC releases a broken connection's socket on its own
// threads), and the baseline itself may include a transient one: a leak
// is a count that stays above it.
int WaitForFdsAtMost(pid_t pid, int baseline, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int n = CountOpenFds(pid);
  while (n > baseline && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
    n = CountOpenFds(pid);
  }
  return n;
}

// Live (non-zombie) and zombie children of `pid`.
struct Children {
  std::vector<pid_t> live;
  int zombies = 0;
};

Children ChildrenOf(pid_t pid) {
  Children c;
  DIR* dir = opendir("/proc");
  while (dirent* e = readdir(dir)) {
    const pid_t candidate = std::atoi(e->d_name);
    if (candidate <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid != pid) continue;
    if (state == 'Z') {
      c.zombies++;
    } else {
      c.live.push_back(candidate);
    }
  }
  closedir(dir);
  return c;
}

class Supervision : public ::testing::Test {
 protected:
  void SetUp() override { broker_.AddConfig(std::string("broker.backend_token = ") + kToken); }

  // Starts the broker and waits for every named plugin to be ready.
  void StartAndWait(const std::vector<std::string>& ready) {
    broker_.Start();
    for (const auto& name : ready) {
      ASSERT_TRUE(broker_.WaitForState(name, "ready", kTimeout)) << broker_.Output();
    }
  }

  // Waits until the plugin's status satisfies `done` (polling the Admin
  // service between log lines, up to the deadline).
  std::optional<v1::PluginStatus> WaitForStatus(
      const std::string& name, const std::function<bool(const v1::PluginStatus&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = broker_.WaitForState(name, "ready", milliseconds(200));
      if (!s) s = broker_.PluginStatus(name);
      if (s && done(*s)) return s;
    }
    return std::nullopt;
  }

  // Waits for `name` to be ready in a launch other than `old_pid`'s.
  std::optional<v1::PluginStatus> WaitForNewLaunch(const std::string& name, int old_pid) {
    return WaitForStatus(name, [old_pid](const v1::PluginStatus& s) {
      return s.state() == "ready" && s.pid() != old_pid;
    });
  }

  // The other plugin still gets its events and kept its process.
  void ExpectUndisturbed(const std::string& name, int pid) {
    std::vector<uint64_t> ids;
    ASSERT_TRUE(broker_.Publish({UserCreated("probe")}, kToken, &ids).ok());
    EXPECT_TRUE(broker_.WaitForLine(
        "test_plugin " + name + " got on_user_created " + std::to_string(ids[0]), kTimeout))
        << broker_.Output();
    auto s = broker_.PluginStatus(name);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->state(), "ready");
    EXPECT_EQ(s->pid(), pid);
    EXPECT_EQ(s->restarts(), 0u);
  }

  BrokerFixture broker_;
};

TEST_F(Supervision, AKilledPluginIsRestartedAtOnceAndTheOthersKeepServing) {
  broker_.AddTestPlugin("crashy", "normal");
  broker_.AddTestPlugin("other", "normal");
  StartAndWait({"crashy", "other"});
  const int other_pid = broker_.PluginStatus("other")->pid();
  const int old_pid = broker_.PluginStatus("crashy")->pid();
  // Baseline once everything is up (after on_plugins_loaded went out).
  ASSERT_TRUE(broker_.WaitForLine("test_plugin crashy got on_plugins_loaded", kTimeout));
  const int fds = CountOpenFds(broker_.pid());
  const size_t children = ChildrenOf(broker_.pid()).live.size();

  ASSERT_EQ(kill(old_pid, SIGKILL), 0);
  auto s = WaitForNewLaunch("crashy", old_pid);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->restarts(), 1u);
  EXPECT_EQ(s->last_exit_reason(), "exited unexpectedly: killed by signal 9 (SIGKILL)");
  EXPECT_TRUE(broker_.WaitForLine("plugin 'crashy': restarting in 0 ms", kTimeout));
  EXPECT_TRUE(WaitProcessGone(old_pid, kTimeout));
  // The new launch gets its own on_plugins_loaded.
  EXPECT_TRUE(
      broker_.WaitForLine("test_plugin crashy starting in mode normal (launch 2)", kTimeout));
  ExpectUndisturbed("other", other_pid);

  // Back to the baseline: same number of children, none a zombie, and no
  // descriptor leaked by the dead launch.
  Children after = ChildrenOf(broker_.pid());
  EXPECT_EQ(after.live.size(), children);
  EXPECT_EQ(after.zombies, 0);
  EXPECT_LE(WaitForFdsAtMost(broker_.pid(), fds, kTimeout), fds);
}

struct FaultCase {
  std::string mode;
  std::string reason;  // expected last_exit_reason (prefix)
};

void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.mode; }

class ReadyFault : public Supervision, public ::testing::WithParamInterface<FaultCase> {};

// The fault hits the first launch only: the plugin comes back by itself.
TEST_P(ReadyFault, IsReportedAndThePluginComesBack) {
  const FaultCase& c = GetParam();
  broker_.AddTestPlugin("faulty", c.mode, R"("env": {"TEST_FAULTY_LAUNCHES": "1"})");
  broker_.AddTestPlugin("other", "normal");
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForLine("test_plugin faulty fault: ", kTimeout)) << broker_.Output();
  ASSERT_TRUE(
      broker_.WaitForLine("test_plugin faulty starting in mode normal (launch 2)", kTimeout))
      << broker_.Output();
  auto s = WaitForStatus("faulty", [](const v1::PluginStatus& s) {
    return s.state() == "ready" && s.restarts() == 1u;
  });
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_THAT(s->last_exit_reason(), StartsWith(c.reason)) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForLine("plugin 'faulty' failed: " + c.reason, kTimeout));
  EXPECT_EQ(broker_.CountLines("plugin 'faulty' failed: "), 1) << broker_.Output();
  auto other = broker_.WaitForState("other", "ready", kTimeout);
  ASSERT_TRUE(other.has_value());
  ExpectUndisturbed("other", other->pid());
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ReadyFault,
    ::testing::Values(
        FaultCase{"exit0-when-loaded", "exited unexpectedly: exit code 0"},
        FaultCase{"exit1-when-loaded", "exited unexpectedly: exit code 1"},
        FaultCase{"segfault-when-loaded", "exited unexpectedly: killed by signal 11 (SIGSEGV)"},
        FaultCase{"abort-when-loaded", "exited unexpectedly: killed by signal 6 (SIGABRT)"},
        FaultCase{"close-socket-when-loaded", "event stream ended: "}),
    [](const ::testing::TestParamInfo<FaultCase>& info) {
      std::string name = info.param.mode;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST_F(Supervision, ACrashLoopGivesUpAfterMaxFailuresAndEnableBringsItBack) {
  broker_.AddConfig(
      "broker.restart_max_failures = 2\n"
      "broker.restart_backoff_initial_ms = 50");
  // Launches 1-3 crash; 4 (after the operator's enable) works.
  broker_.AddTestPlugin("loop", "exit1-when-loaded", R"("env": {"TEST_FAULTY_LAUNCHES": "3"})");
  broker_.AddTestPlugin("other", "normal");
  broker_.Start();
  auto s = broker_.WaitForState("loop", "failed", kTimeout);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->last_exit_reason(), "exited unexpectedly: exit code 1");
  EXPECT_EQ(s->restarts(), 2u);
  EXPECT_EQ(s->pid(), 0);
  EXPECT_TRUE(broker_.WaitForLine(
      "plugin 'loop' failed 3 times within 5m: giving up until an operator enables it", kTimeout));
  EXPECT_EQ(broker_.CountLines("plugin 'loop' failed: "), 3);
  // Left stopped: no fourth launch.
  EXPECT_EQ(broker_.CountLines("test_plugin loop starting"), 3);
  auto other = broker_.WaitForState("other", "ready", kTimeout);
  ASSERT_TRUE(other.has_value());
  ExpectUndisturbed("other", other->pid());

  v1::PluginStatus acted;
  ASSERT_TRUE(broker_.Act("enable", "loop", &acted).ok());
  EXPECT_THAT(acted.state(), ::testing::AnyOf("starting", "registering"));
  s = broker_.WaitForState("loop", "ready", kTimeout);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_TRUE(broker_.WaitForLine("plugin 'loop': enabled by an operator", kTimeout));
  EXPECT_TRUE(broker_.WaitForLine("test_plugin loop starting in mode normal (launch 4)", kTimeout));
}

// Restart delays: at once, then initial_backoff doubling, each within the
// ±20 % jitter.
TEST_F(Supervision, RestartDelaysGrowExponentiallyWithJitter) {
  broker_.AddConfig(
      "broker.restart_max_failures = 3\n"
      "broker.restart_backoff_initial_ms = 200");
  broker_.AddTestPlugin("loop", "exit-before-register");
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForState("loop", "failed", kTimeout)) << broker_.Output();
  std::vector<int> delays;
  std::regex re("plugin 'loop': restarting in ([0-9]+) ms");
  std::string out = broker_.Output();
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) {
    delays.push_back(std::stoi((*it)[1]));
  }
  ASSERT_EQ(delays.size(), 3u) << out;
  EXPECT_EQ(delays[0], 0);
  EXPECT_GE(delays[1], 160);
  EXPECT_LE(delays[1], 240);
  EXPECT_GE(delays[2], 320);
  EXPECT_LE(delays[2], 480);
}

TEST_F(Supervision, AHungHealthCheckKillsThePluginAndItComesBack) {
  broker_.AddConfig(
      "broker.health_interval_ms = 100\n"
      "broker.health_timeout_ms = 100\n"
      "broker.health_failures = 3");
  broker_.AddTestPlugin("hung", "hang-health", R"("env": {"TEST_FAULTY_LAUNCHES": "1"})");
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForLine(
      "plugin 'hung' failed: health check failed 3 times in a row (DEADLINE_EXCEEDED: ", kTimeout))
      << broker_.Output();
  EXPECT_TRUE(broker_.WaitForLine("plugin 'hung': health check failed (1 of 3)", kTimeout));
  EXPECT_TRUE(broker_.WaitForLine("test_plugin hung starting in mode normal (launch 2)", kTimeout));
  auto s = WaitForNewLaunch("hung", 0);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_THAT(s->last_exit_reason(),
              StartsWith("health check failed 3 times in a row (DEADLINE_EXCEEDED: "));
}

// An event handler that never returns: the acknowledgement timeout kills the
// plugin, and the event goes to the next launch, flagged as redelivered.
TEST_F(Supervision, AHungEventHandlerKillsThePluginAndTheEventIsRedelivered) {
  broker_.AddConfig("broker.event_ack_timeout_ms = 300");
  broker_.AddTestPlugin("hung", "hang-event", R"("env": {"TEST_FAULTY_LAUNCHES": "1"})");
  broker_.AddTestPlugin("other", "normal");
  StartAndWait({"hung", "other"});
  const int other_pid = broker_.PluginStatus("other")->pid();
  std::vector<uint64_t> ids;
  ASSERT_TRUE(broker_.Publish({UserCreated("Ann")}, kToken, &ids).ok());
  const std::string id = std::to_string(ids[0]);
  ASSERT_TRUE(broker_.WaitForLine("test_plugin hung hangs in on_user_created", kTimeout));
  ASSERT_TRUE(broker_.WaitForLine(
      "plugin 'hung' failed: event " + id + " not acknowledged within 300 ms", kTimeout))
      << broker_.Output();
  ASSERT_TRUE(
      broker_.WaitForLine("test_plugin hung got on_user_created " + id + " redelivered", kTimeout))
      << broker_.Output();
  auto s = broker_.WaitForState("hung", "ready", kTimeout);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->events_timed_out(), 1u);
  EXPECT_EQ(s->restarts(), 1u);
  ExpectUndisturbed("other", other_pid);
}

// Issue 3: events sent and not acknowledged when a plugin is killed
// mid-stream are redelivered, in order, to its next launch.
TEST_F(Supervision, UnacknowledgedEventsAreRedeliveredInOrderAfterAKill) {
  broker_.AddTestPlugin("sink", "no-ack", R"("env": {"TEST_FAULTY_LAUNCHES": "1"})");
  StartAndWait({"sink"});
  std::vector<uint64_t> ids;
  ASSERT_TRUE(
      broker_.Publish({UserCreated("a"), UserCreated("b"), UserCreated("c")}, kToken, &ids).ok());
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_TRUE(broker_.WaitForLine("test_plugin sink got on_user_created " + std::to_string(ids[2]),
                                  kTimeout));
  const int pid = broker_.PluginStatus("sink")->pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  for (uint64_t id : ids) {
    ASSERT_TRUE(broker_.WaitForLine(
        "test_plugin sink got on_user_created " + std::to_string(id) + " redelivered", kTimeout))
        << broker_.Output();
  }
  // In publication order, each once, and on_plugins_loaded of the dead
  // launch is not redelivered (the new launch gets its own).
  std::string out = broker_.Output();
  size_t at = 0;
  for (uint64_t id : ids) {
    size_t next = out.find("got on_user_created " + std::to_string(id) + " redelivered", at);
    ASSERT_NE(next, std::string::npos) << out;
    at = next;
  }
  EXPECT_EQ(broker_.CountLines(" redelivered"), 3) << out;
  // Launch 2 acknowledges the three and its own on_plugins_loaded: nothing
  // is left queued.
  auto s = WaitForStatus("sink", [pid](const v1::PluginStatus& s) {
    return s.pid() != pid && s.events_acknowledged() == 4u;
  });
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->events_queued(), 0u);
}

TEST_F(Supervision, OperatorsCanDisableEnableAndRestartAPlugin) {
  broker_.AddTestPlugin("p", "normal");
  StartAndWait({"p"});
  const int pid1 = broker_.PluginStatus("p")->pid();

  v1::PluginStatus acted;
  ASSERT_TRUE(broker_.Act("disable", "p", &acted).ok());
  auto s = broker_.WaitForState("p", "disabled", kTimeout);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->pid(), 0);
  EXPECT_TRUE(WaitProcessGone(pid1, kTimeout));
  EXPECT_TRUE(
      broker_.WaitForLine("test_plugin p shutdown requested: disabled by an operator", kTimeout));

  ASSERT_TRUE(broker_.Act("enable", "p").ok());
  s = broker_.WaitForState("p", "ready", kTimeout);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  const int pid2 = s->pid();
  EXPECT_NE(pid2, pid1);

  ASSERT_TRUE(broker_.Act("restart", "p").ok());
  s = WaitForNewLaunch("p", pid2);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->restarts(), 1u);
  EXPECT_TRUE(broker_.WaitForLine(
      "test_plugin p shutdown requested: restart requested by an operator", kTimeout));
  EXPECT_TRUE(WaitProcessGone(pid2, kTimeout));

  grpc::Status unknown = broker_.Act("restart", "nope");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(unknown.error_message(), "no plugin named 'nope'");
}

TEST_F(Supervision, ASlowStartIsRetried) {
  broker_.AddTestPlugin("slow", "slow-start",
                        R"("start_timeout_ms": 300, )"
                        R"("env": {"TEST_FAULTY_LAUNCHES": "1", "TEST_START_DELAY_MS": "5000"})");
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForLine(
      "plugin 'slow' failed: did not register within the start timeout (300 ms)", kTimeout))
      << broker_.Output();
  auto s = WaitForNewLaunch("slow", 0);
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  EXPECT_EQ(s->restarts(), 1u);
}

TEST_F(Supervision, TheBrokerStopsPromptlyWhileAPluginWaitsToRestart) {
  broker_.AddConfig("broker.restart_backoff_initial_ms = 60000");
  broker_.AddTestPlugin("loop", "exit1-when-loaded");
  broker_.Start();
  // The second failure waits ~60 s before the third launch.
  ASSERT_TRUE(broker_.WaitForLine("plugin 'loop': restarting in 0 ms", kTimeout));
  ASSERT_TRUE(broker_.WaitForState("loop", "backoff", kTimeout)) << broker_.Output();
  // The second restart is the long one.
  ASSERT_TRUE(broker_.WaitForLine("test_plugin loop starting in mode exit1-when-loaded (launch 2)",
                                  kTimeout));
  ASSERT_TRUE(WaitForStatus("loop", [](const v1::PluginStatus& s) {
    return s.state() == "backoff" && s.restarts() == 1u;
  })) << broker_.Output();
  broker_.Signal(SIGTERM);
  EXPECT_EQ(broker_.WaitExit(milliseconds(5000)), 0) << broker_.Output();
  auto loop = broker_.Output();
  EXPECT_EQ(broker_.CountLines("test_plugin loop starting"), 2) << loop;
}

// A plugin writing lines without pause: the broker logs a bounded number,
// summarises the rest, counts them, and keeps serving the other plugin.
TEST_F(Supervision, AFloodingPluginIsRateLimitedAndDoesNotDisturbTheOthers) {
  broker_.AddConfig("broker.plugin_log_rate = 100\nbroker.plugin_log_burst = 100");
  broker_.AddTestPlugin("flood", "flood-when-loaded");
  broker_.AddTestPlugin("other", "normal");
  StartAndWait({"flood", "other"});
  const int other_pid = broker_.PluginStatus("other")->pid();
  ASSERT_TRUE(broker_.WaitForLine("plugin 'flood': dropped ", kTimeout)) << broker_.Output();
  ExpectUndisturbed("other", other_pid);
  auto s = WaitForStatus(
      "flood", [](const v1::PluginStatus& s) { return s.output_lines_dropped() > 1000u; });
  ASSERT_TRUE(s.has_value()) << broker_.Output();
  // Disabling it ends the flood; the lines that reached the log stay few.
  ASSERT_TRUE(broker_.Act("disable", "flood").ok());
  ASSERT_TRUE(broker_.WaitForState("flood", "disabled", kTimeout)) << broker_.Output();
  const int logged = broker_.CountLines("test_plugin flood flood line ");
  EXPECT_GT(logged, 0);
  EXPECT_LT(logged, 2000) << "the rate limit let too much through";
}

}  // namespace
}  // namespace tracim::testing
