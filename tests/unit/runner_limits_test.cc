// The runner's limit verdicts (limit_classifier.h) and the report line that
// carries them to the broker (runner_protocol.h): which ends are a CPU or a
// memory limit's, and that an ordinary crash never is.
#include <signal.h>

#include <optional>

#include "gtest/gtest.h"
#include "plugin_runner/limit_classifier.h"
#include "plugin_runner/runner_protocol.h"

namespace tracim::runner {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

PluginEnd Killed(int signal) {
  PluginEnd end;
  end.exited = false;
  end.signal = signal;
  return end;
}

PluginEnd ExitedWith(int code) {
  PluginEnd end;
  end.code = code;
  return end;
}

LimitSettings Memory(uint64_t bytes) { return {bytes, std::nullopt}; }
LimitSettings Cpu(uint64_t seconds) { return {std::nullopt, seconds}; }

// --- /proc/<pid>/status -----------------------------------------------------

TEST(ParseProcStatus, ReadsVmSizeAndVmHwmInBytes) {
  std::optional<MemorySample> s = ParseProcStatus(
      "Name:\ttest_plugin\nVmPeak:\t  255564 kB\nVmSize:\t  239604 kB\nVmLck:\t       0 kB\n"
      "VmHWM:\t   17104 kB\nVmRSS:\t   17000 kB\nThreads:\t11\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->vm_size_bytes, 239604u * 1024);
  EXPECT_EQ(s->vm_hwm_bytes, 17104u * 1024);
}

TEST(ParseProcStatus, HasNothingForAProcessWithoutMemory) {
  // A zombie's status has no Vm lines.
  EXPECT_FALSE(ParseProcStatus("Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n").has_value());
  EXPECT_FALSE(ParseProcStatus("").has_value());
  EXPECT_FALSE(ParseProcStatus("VmSize:\t  12 kB\n").has_value());
  EXPECT_FALSE(ParseProcStatus("VmSize:\t  x kB\nVmHWM:\t 1 kB\n").has_value());
}

// --- CPU --------------------------------------------------------------------

TEST(ClassifyEnd, SigxcpuIsTheCpuLimit) {
  EXPECT_EQ(ClassifyEnd(Killed(SIGXCPU), Cpu(1), std::nullopt), LimitHit::kCpu);
  // Even with no limit in the manifest: an inherited RLIMIT_CPU is one too.
  EXPECT_EQ(ClassifyEnd(Killed(SIGXCPU), {}, std::nullopt), LimitHit::kCpu);
}

TEST(ClassifyEnd, SigkillAfterTheCpuAllowanceIsTheCpuLimit) {
  // A plugin that ignores SIGXCPU gets SIGKILL at the hard limit.
  PluginEnd end = Killed(SIGKILL);
  end.cpu_millis = 2010;
  EXPECT_EQ(ClassifyEnd(end, Cpu(1), std::nullopt), LimitHit::kCpu);
  // The same end requested by the broker is not.
  end.signal_sent_by_runner = true;
  EXPECT_EQ(ClassifyEnd(end, Cpu(1), std::nullopt), LimitHit::kNone);
}

TEST(ClassifyEnd, ErrorExitAfterTheCpuAllowanceIsTheCpuLimit) {
  PluginEnd end = ExitedWith(1);
  end.cpu_millis = 1000;
  EXPECT_EQ(ClassifyEnd(end, Cpu(1), std::nullopt), LimitHit::kCpu);
  end.cpu_millis = 999;
  EXPECT_EQ(ClassifyEnd(end, Cpu(1), std::nullopt), LimitHit::kNone);
}

TEST(ClassifyEnd, CleanExitIsNeverALimit) {
  PluginEnd end = ExitedWith(0);
  end.cpu_millis = 5000;
  end.max_rss_bytes = 256 * kMiB;
  LimitSettings both{256 * kMiB, 1};
  EXPECT_EQ(ClassifyEnd(end, both, MemorySample{256 * kMiB, 256 * kMiB}), LimitHit::kNone);
}

// --- Memory -----------------------------------------------------------------

TEST(ClassifyEnd, AbortAfterAnAllocationSpreeIsTheMemoryLimit) {
  // Sampled at 100 MiB of address space, 60 MiB resident; the spree then
  // touched 150 MiB more before an allocation failed.
  PluginEnd end = Killed(SIGABRT);
  end.max_rss_bytes = 210 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), MemorySample{100 * kMiB, 60 * kMiB}),
            LimitHit::kMemory);
}

TEST(ClassifyEnd, ErrorExitOfALeakAtItsLimitIsTheMemoryLimit) {
  // Python's MemoryError: exit code 1, address space at the limit when last
  // sampled, nothing new touched since.
  PluginEnd end = ExitedWith(1);
  end.max_rss_bytes = 120 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), MemorySample{250 * kMiB, 120 * kMiB}),
            LimitHit::kMemory);
}

TEST(ClassifyEnd, PeakResidentMemoryAloneCanShowTheLimit) {
  // No sample (the plugin died within milliseconds).
  PluginEnd end = Killed(SIGSEGV);
  end.max_rss_bytes = 250 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), std::nullopt), LimitHit::kMemory);
}

TEST(ClassifyEnd, OrdinaryCrashOfASmallPluginIsNoLimit) {
  PluginEnd end = Killed(SIGSEGV);
  end.max_rss_bytes = 12 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), MemorySample{40 * kMiB, 12 * kMiB}),
            LimitHit::kNone);
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), std::nullopt), LimitHit::kNone);
  EXPECT_EQ(ClassifyEnd(ExitedWith(3), Memory(256 * kMiB), MemorySample{40 * kMiB, 12 * kMiB}),
            LimitHit::kNone);
}

TEST(ClassifyEnd, AnOldResidentPeakDoesNotCountAsGrowth) {
  // Once 200 MiB resident, freed since; crashes at 60 MiB of address space.
  PluginEnd end = Killed(SIGSEGV);
  end.max_rss_bytes = 200 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(1024 * kMiB), MemorySample{60 * kMiB, 200 * kMiB}),
            LimitHit::kNone);
}

TEST(ClassifyEnd, SignalsSentByTheRunnerAreNeverTheMemoryLimit) {
  PluginEnd end = Killed(SIGTERM);
  end.signal_sent_by_runner = true;
  end.max_rss_bytes = 250 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(256 * kMiB), MemorySample{255 * kMiB, 250 * kMiB}),
            LimitHit::kNone);
}

TEST(ClassifyEnd, TheAddressSpaceMustComeWithinTheSlack) {
  const uint64_t limit = 256 * kMiB;
  ASSERT_EQ(MemoryLimitSlack(limit), 16 * kMiB);
  PluginEnd end = Killed(SIGABRT);
  end.max_rss_bytes = 10 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, Memory(limit), MemorySample{limit - 16 * kMiB, 10 * kMiB}),
            LimitHit::kMemory);
  EXPECT_EQ(ClassifyEnd(end, Memory(limit), MemorySample{limit - 16 * kMiB - 1, 10 * kMiB}),
            LimitHit::kNone);
}

TEST(MemoryLimitSlack, IsASixteenthAtLeast16MiBAtMostTheLimit) {
  EXPECT_EQ(MemoryLimitSlack(1024 * kMiB), 64 * kMiB);
  EXPECT_EQ(MemoryLimitSlack(64 * kMiB), 16 * kMiB);
  EXPECT_EQ(MemoryLimitSlack(4 * kMiB), 4 * kMiB);
}

TEST(NearMemoryLimit, IsWithinFourSlacksOfTheLimit) {
  const uint64_t limit = 1024 * kMiB;  // slack 64 MiB: near from 768 MiB
  EXPECT_TRUE(NearMemoryLimit(MemorySample{768 * kMiB, 0}, limit));
  EXPECT_TRUE(NearMemoryLimit(MemorySample{1024 * kMiB, 0}, limit));
  EXPECT_FALSE(NearMemoryLimit(MemorySample{768 * kMiB - 1, 0}, limit));
  // A limit smaller than four slacks is always near.
  EXPECT_TRUE(NearMemoryLimit(MemorySample{0, 0}, 32 * kMiB));
}

TEST(ClassifyEnd, CpuComesBeforeMemory) {
  PluginEnd end = Killed(SIGXCPU);
  end.max_rss_bytes = 256 * kMiB;
  EXPECT_EQ(ClassifyEnd(end, {256 * kMiB, 1}, std::nullopt), LimitHit::kCpu);
}

// --- Report line ------------------------------------------------------------

TEST(RunnerReport, RoundTripsEachVerdict) {
  for (LimitHit hit : {LimitHit::kNone, LimitHit::kCpu, LimitHit::kMemory}) {
    EXPECT_EQ(ParseReport(FormatReport(hit)), hit);
  }
  EXPECT_EQ(FormatReport(LimitHit::kCpu), "limit=cpu\n");
  EXPECT_EQ(FormatReport(LimitHit::kMemory), "limit=memory\n");
  EXPECT_EQ(FormatReport(LimitHit::kNone), "");
}

TEST(RunnerReport, AnythingElseIsNoVerdict) {
  for (const char* text :
       {"limit=memory", "limit=cpu\nlimit=cpu\n", "limit=disk\n", "garbage", "limit=memor"}) {
    EXPECT_EQ(ParseReport(text), LimitHit::kNone) << text;
  }
}

TEST(KillTreeSignal, IsARealTimeSignal) {
  EXPECT_GE(KillTreeSignal(), SIGRTMIN);
  EXPECT_LE(KillTreeSignal(), SIGRTMAX);
}

}  // namespace
}  // namespace tracim::runner
