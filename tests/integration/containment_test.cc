// Containment end to end: the real broker binary, the real runner and the
// fault-injection test plugin. Whatever a plugin starts — in its process
// group or not, in its session or not — never outlives the plugin or the
// broker (even a SIGKILLed broker), and a plugin ended by one of its limits
// says so in its exit reason, while an ordinary crash does not.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kTimeout(15000);
// An AddressSanitizer build of the test plugin reserves terabytes of shadow
// address space: it cannot even start under RLIMIT_AS (make asan builds
// everything with it, the test binary included).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedPlugins = true;
#else
constexpr bool kSanitizedPlugins = false;
#endif
constexpr const char* kNoAddressLimitUnderAsan =
    "the AddressSanitizer build of the test plugin cannot run under RLIMIT_AS";

// One launch: these tests are about how a launch ends, not about restarts.
constexpr const char* kOneLaunch = R"("restart": {"max_failures": 0})";

// What the fork-grandchildren test plugin printed: its own pid and those of
// its three descendants (in its group, in a group of their own, in a
// session of their own).
struct Tree {
  pid_t plugin = 0;
  std::vector<pid_t> descendants;
};

std::optional<Tree> ReadTree(BrokerFixture& broker, const std::string& name) {
  const std::string marker = "test_plugin " + name + " pid ";
  if (!broker.WaitForLine(marker, kTimeout)) return std::nullopt;
  std::string output = broker.Output();
  std::istringstream line(output.substr(output.find(marker) + marker.size()));
  Tree tree;
  std::string word;
  line >> tree.plugin >> word;  // "descendants:"
  for (pid_t pid; tree.descendants.size() < 3 && line >> pid;) tree.descendants.push_back(pid);
  if (tree.plugin <= 0 || tree.descendants.size() != 3) return std::nullopt;
  return tree;
}

// Every pid gone by `deadline` (one deadline for all); those that survived are SIGKILLed so that a
// failure leaves nothing behind.
void ExpectAllGoneBy(const std::vector<pid_t>& pids, Clock::time_point deadline) {
  for (pid_t pid : pids) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (WaitProcessGone(pid, std::max(left, milliseconds(0)))) continue;
    ADD_FAILURE() << "pid " << pid << " survived";
    kill(pid, SIGKILL);
  }
}

std::vector<pid_t> Everything(pid_t runner, const Tree& tree) {
  std::vector<pid_t> pids = {runner, tree.plugin};
  pids.insert(pids.end(), tree.descendants.begin(), tree.descendants.end());
  return pids;
}

TEST(Containment, ASigkilledBrokerTakesThePluginAndAllItsDescendantsWithinOneSecond) {
  BrokerFixture broker;
  broker.AddTestPlugin("tree", "fork-grandchildren");
  broker.Start();
  auto status = broker.WaitForState("tree", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  std::optional<Tree> tree = ReadTree(broker, "tree");
  ASSERT_TRUE(tree.has_value()) << broker.Output();
  // The broker's pid for the plugin is the runner's, the plugin's parent.
  EXPECT_NE(status->pid(), tree->plugin);
  for (pid_t pid : Everything(status->pid(), *tree)) ASSERT_TRUE(ProcessAlive(pid)) << pid;

  broker.Signal(SIGKILL);
  const auto deadline = Clock::now() + milliseconds(1000);
  ASSERT_TRUE(broker.WaitExit(kTimeout).has_value());
  ExpectAllGoneBy(Everything(status->pid(), *tree), deadline);
}

TEST(Containment, AStoppedPluginLeavesNoDescendants) {
  BrokerFixture broker;
  broker.AddTestPlugin("tree", "fork-grandchildren");
  broker.Start();
  auto status = broker.WaitForState("tree", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  std::optional<Tree> tree = ReadTree(broker, "tree");
  ASSERT_TRUE(tree.has_value()) << broker.Output();

  broker.Signal(SIGTERM);
  auto code = broker.WaitExit(kTimeout);
  ASSERT_TRUE(code.has_value()) << broker.Output();
  EXPECT_EQ(*code, 0) << broker.Output();
  // The plugin obeyed Shutdown; its descendants ignored SIGTERM and left its
  // group. The runner exits only once they are all reaped, and the broker
  // only once the runner is: nothing to wait for.
  EXPECT_THAT(broker.Output(), HasSubstr("plugin 'tree' stopped (pid " +
                                         std::to_string(status->pid()) + ", exit code 0)"));
  for (pid_t pid : Everything(status->pid(), *tree)) {
    EXPECT_FALSE(ProcessAlive(pid)) << "pid " << pid << " survived";
  }
  ExpectAllGoneBy(Everything(status->pid(), *tree), Clock::now());
}

TEST(Containment, APluginThatDiesLeavesNoDescendants) {
  BrokerFixture broker;
  broker.AddTestPlugin("tree", "fork-grandchildren", kOneLaunch);
  broker.Start();
  auto status = broker.WaitForState("tree", "ready", kTimeout);
  ASSERT_TRUE(status.has_value()) << broker.Output();
  std::optional<Tree> tree = ReadTree(broker, "tree");
  ASSERT_TRUE(tree.has_value()) << broker.Output();

  ASSERT_EQ(kill(tree->plugin, SIGSEGV), 0);
  auto failed = broker.WaitForState("tree", "failed", kTimeout);
  ASSERT_TRUE(failed.has_value()) << broker.Output();
  // Reported through the runner exactly as the plugin died.
  EXPECT_THAT(failed->last_exit_reason(), EndsWith(": killed by signal 11 (SIGSEGV)"));
  ExpectAllGoneBy(Everything(status->pid(), *tree), Clock::now() + milliseconds(1000));
}

// How a launch ends → the end of the plugin's last_exit_reason
// (ExitStatus::Describe() through the runner).
struct EndCase {
  std::string mode;
  std::string extra;   // manifest fields
  std::string reason;  // expected end of last_exit_reason
};

void PrintTo(const EndCase& c, std::ostream* os) { *os << c.mode; }

class PluginEnd : public ::testing::TestWithParam<EndCase> {};

TEST_P(PluginEnd, IsReportedWithItsExactReason) {
  const EndCase& c = GetParam();
  if (kSanitizedPlugins && c.extra.find("memory_bytes") != std::string::npos) {
    GTEST_SKIP() << kNoAddressLimitUnderAsan;
  }
  BrokerFixture broker;
  broker.AddTestPlugin("p", c.mode, (c.extra.empty() ? "" : c.extra + ", ") + kOneLaunch);
  broker.Start();
  auto failed = broker.WaitForState("p", "failed", kTimeout);
  ASSERT_TRUE(failed.has_value()) << broker.Output();
  EXPECT_THAT(failed->last_exit_reason(), EndsWith(": " + c.reason)) << broker.Output();
  if (c.reason.find("limit") == std::string::npos) {
    EXPECT_THAT(failed->last_exit_reason(), Not(HasSubstr("limit")));
  }
}

constexpr const char* k256MiB = R"("limits": {"memory_bytes": 268435456})";

INSTANTIATE_TEST_SUITE_P(
    Modes, PluginEnd,
    ::testing::Values(EndCase{"exit-before-register", "", "exit code 3"},
                      EndCase{"abort-before-register", "", "killed by signal 6 (SIGABRT)"},
                      // A small plugin's crash, with a memory limit: no limit in the reason.
                      EndCase{"segfault-before-register", k256MiB, "killed by signal 11 (SIGSEGV)"},
                      EndCase{"burn-cpu", R"("limits": {"cpu_seconds": 1})",
                              "killed: CPU limit (SIGXCPU)"},
                      EndCase{"alloc-until-limit", k256MiB, "killed: memory limit (SIGABRT)"},
                      // The same with gRPC's threads and their reserved address space.
                      EndCase{"alloc-after-register", R"("limits": {"memory_bytes": 1073741824})",
                              "killed: memory limit (SIGABRT)"}),
    [](const ::testing::TestParamInfo<EndCase>& info) {
      std::string name = info.param.mode;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

}  // namespace
}  // namespace tracim::testing
