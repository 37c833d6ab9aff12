#include "plugin_runner/runner_protocol.h"

namespace tracim::runner {
namespace {

constexpr absl::string_view kCpuLine = "limit=cpu\n";
constexpr absl::string_view kMemoryLine = "limit=memory\n";

}  // namespace

std::string FormatReport(LimitHit hit) {
  switch (hit) {
    case LimitHit::kCpu:
      return std::string(kCpuLine);
    case LimitHit::kMemory:
      return std::string(kMemoryLine);
    case LimitHit::kNone:
      break;
  }
  return "";
}

LimitHit ParseReport(absl::string_view report) {
  if (report == kCpuLine) return LimitHit::kCpu;
  if (report == kMemoryLine) return LimitHit::kMemory;
  return LimitHit::kNone;
}

}  // namespace tracim::runner
