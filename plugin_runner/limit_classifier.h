// Decides, when a plugin has ended, whether one of its manifest's limits
// ended it, from what its parent (the runner) can know: how it ended, its
// resource usage from wait4, and the last sample of its memory taken while it
// ran. Pure functions: thread-safe.
//
// CPU (RLIMIT_CPU) is certain: the kernel sends SIGXCPU at the soft limit and
// SIGKILL one CPU second later. Memory (RLIMIT_AS) is an inference: an
// allocation that would cross the limit just fails, and the program then
// aborts, segfaults or exits with an error, like any crash. The runner calls
// that a memory-limit end when the plugin ended abnormally with its address
// space (estimated at its end) within MemoryLimitSlack() of the limit:
//
//   estimate = max(max_rss,
//                  last_sample.vm_size + max(0, max_rss - last_sample.vm_hwm))
//
// i.e. the address space last seen, plus the resident memory it gained after
// that sample (new pages it touched are new address space, as in an
// allocation spree). max_rss (ru_maxrss) is exact at the end; the sample is at
// most one sampling period old. Both are lower bounds of the real peak except
// when the growth touched memory already reserved, so an ordinary crash of a
// plugin far below its limit is never called a memory-limit end.
#ifndef TRACIM_PLUGIN_RUNNER_LIMIT_CLASSIFIER_H_
#define TRACIM_PLUGIN_RUNNER_LIMIT_CLASSIFIER_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "plugin_runner/runner_protocol.h"

namespace tracim::runner {

// From /proc/<pid>/status.
struct MemorySample {
  uint64_t vm_size_bytes = 0;  // VmSize: address space now (what RLIMIT_AS bounds)
  uint64_t vm_hwm_bytes = 0;   // VmHWM: peak resident memory so far
};

// Parses the text of /proc/<pid>/status; nullopt if VmSize or VmHWM is
// missing (a process whose memory is already gone has neither).
std::optional<MemorySample> ParseProcStatus(absl::string_view text);

// How the plugin process ended.
struct PluginEnd {
  bool exited = true;  // true: exit(code); false: killed by `signal`
  int code = 0;
  int signal = 0;
  // The signal was sent by the runner: forwarded from the broker (SIGTERM…)
  // or the SIGKILL of a kill-tree request. Such an end is never a limit's.
  bool signal_sent_by_runner = false;
  uint64_t max_rss_bytes = 0;  // ru_maxrss
  uint64_t cpu_millis = 0;     // ru_utime + ru_stime
};

struct LimitSettings {
  std::optional<uint64_t> memory_bytes;  // RLIMIT_AS
  std::optional<uint64_t> cpu_seconds;   // RLIMIT_CPU soft limit
};

// How close to memory_bytes the address space must have come:
// memory_bytes / 16, at least 16 MiB (and at most memory_bytes). It must
// exceed the allocation that failed; larger single allocations that fail far
// below the limit are reported as the plain crash they cause.
uint64_t MemoryLimitSlack(uint64_t memory_bytes);

// Whether the address space is close enough to memory_bytes (within four
// slacks) for the runner to sample it more often: the last sample before a
// plugin's end must not miss address space reserved just before it.
bool NearMemoryLimit(const MemorySample& sample, uint64_t memory_bytes);

// The verdict:
// - kCpu: killed by SIGXCPU; or any other abnormal end (non-zero exit code,
//   or a signal the runner did not send) after using cpu_seconds of CPU.
// - kMemory: an abnormal end with the estimate above within the slack of
//   memory_bytes (checked after CPU).
// - kNone otherwise, and always for exit code 0.
LimitHit ClassifyEnd(const PluginEnd& end, const LimitSettings& limits,
                     const std::optional<MemorySample>& last_sample);

}  // namespace tracim::runner

#endif  // TRACIM_PLUGIN_RUNNER_LIMIT_CLASSIFIER_H_
