#include "plugin_runner/limit_classifier.h"

#include <signal.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace tracim::runner {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// "VmSize:\t  239604 kB" → 239604 * 1024.
std::optional<uint64_t> KilobytesField(absl::string_view line, absl::string_view name) {
  if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, ":")) return std::nullopt;
  line = absl::StripAsciiWhitespace(line);
  if (!absl::ConsumeSuffix(&line, "kB")) return std::nullopt;
  uint64_t kb = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) return std::nullopt;
  return kb * 1024;
}

}  // namespace

std::optional<MemorySample> ParseProcStatus(absl::string_view text) {
  std::optional<uint64_t> size, hwm;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!size) size = KilobytesField(line, "VmSize");
    if (!hwm) hwm = KilobytesField(line, "VmHWM");
  }
  if (!size || !hwm) return std::nullopt;
  return MemorySample{*size, *hwm};
}

uint64_t MemoryLimitSlack(uint64_t memory_bytes) {
  return std::min(memory_bytes, std::max(memory_bytes / 16, 16 * kMiB));
}

bool NearMemoryLimit(const MemorySample& sample, uint64_t memory_bytes) {
  const uint64_t zone = MemoryLimitSlack(memory_bytes) * 4;
  return sample.vm_size_bytes >= (memory_bytes > zone ? memory_bytes - zone : 0);
}

LimitHit ClassifyEnd(const PluginEnd& end, const LimitSettings& limits,
                     const std::optional<MemorySample>& last_sample) {
  if (!end.exited && end.signal == SIGXCPU) return LimitHit::kCpu;
  const bool abnormal = end.exited ? end.code != 0 : !end.signal_sent_by_runner;
  if (!abnormal) return LimitHit::kNone;
  if (limits.cpu_seconds && end.cpu_millis / 1000 >= *limits.cpu_seconds) return LimitHit::kCpu;
  if (limits.memory_bytes) {
    uint64_t estimate = end.max_rss_bytes;
    if (last_sample) {
      uint64_t growth = end.max_rss_bytes > last_sample->vm_hwm_bytes
                            ? end.max_rss_bytes - last_sample->vm_hwm_bytes
                            : 0;
      estimate = std::max(estimate, last_sample->vm_size_bytes + growth);
    }
    const uint64_t limit = *limits.memory_bytes;
    if (estimate >= limit - MemoryLimitSlack(limit)) return LimitHit::kMemory;
  }
  return LimitHit::kNone;
}

}  // namespace tracim::runner
