// ExitStatus::Describe(): the exact texts operators read in the log and in
// a plugin's last_exit_reason, with and without a limit found by the runner.
#include "broker/process/exit_status.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

ExitStatus WithLimit(ExitStatus s, ExitStatus::Limit limit) {
  s.limit = limit;
  return s;
}

TEST(ExitStatus, DescribesExitCodesAndSignals) {
  EXPECT_EQ(ExitStatus::Exited(0).Describe(), "exit code 0");
  EXPECT_EQ(ExitStatus::Exited(3).Describe(), "exit code 3");
  EXPECT_EQ(ExitStatus::Signaled(SIGSEGV).Describe(), "killed by signal 11 (SIGSEGV)");
  EXPECT_EQ(ExitStatus::Signaled(SIGABRT).Describe(), "killed by signal 6 (SIGABRT)");
  EXPECT_EQ(ExitStatus::Signaled(SIGKILL).Describe(), "killed by signal 9 (SIGKILL)");
}

TEST(ExitStatus, FactoriesSetNoLimit) {
  EXPECT_EQ(ExitStatus::Exited(1).limit, ExitStatus::Limit::kNone);
  EXPECT_EQ(ExitStatus::Signaled(SIGSEGV).limit, ExitStatus::Limit::kNone);
  EXPECT_FALSE(ExitStatus::Signaled(SIGSEGV).exited);
  EXPECT_EQ(ExitStatus::Signaled(SIGSEGV).signal, SIGSEGV);
}

TEST(ExitStatus, DescribesTheCpuLimit) {
  EXPECT_EQ(WithLimit(ExitStatus::Signaled(SIGXCPU), ExitStatus::Limit::kCpu).Describe(),
            "killed: CPU limit (SIGXCPU)");
  EXPECT_EQ(WithLimit(ExitStatus::Signaled(SIGKILL), ExitStatus::Limit::kCpu).Describe(),
            "killed: CPU limit (SIGKILL)");
}

TEST(ExitStatus, DescribesTheMemoryLimitWithHowThePluginEnded) {
  EXPECT_EQ(WithLimit(ExitStatus::Signaled(SIGABRT), ExitStatus::Limit::kMemory).Describe(),
            "killed: memory limit (SIGABRT)");
  EXPECT_EQ(WithLimit(ExitStatus::Signaled(SIGSEGV), ExitStatus::Limit::kMemory).Describe(),
            "killed: memory limit (SIGSEGV)");
  EXPECT_EQ(WithLimit(ExitStatus::Exited(1), ExitStatus::Limit::kMemory).Describe(),
            "killed: memory limit (exit code 1)");
}

TEST(ExitStatus, NamesAnUnnamedSignalByNumber) {
  EXPECT_EQ(ExitStatus::Signaled(SIGRTMIN + 5).Describe(),
            "killed by signal " + std::to_string(SIGRTMIN + 5));
  EXPECT_EQ(WithLimit(ExitStatus::Signaled(SIGRTMIN + 5), ExitStatus::Limit::kMemory).Describe(),
            "killed: memory limit (signal " + std::to_string(SIGRTMIN + 5) + ")");
}

}  // namespace
}  // namespace tracim::broker
