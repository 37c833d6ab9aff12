#include "broker/process/exit_status.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace tracim::broker {

std::string ExitStatus::Describe() const {
  const char* abbrev = exited ? nullptr : sigabbrev_np(signal);
  if (limit == Limit::kNone) {
    if (exited) return absl::StrCat("exit code ", code);
    return abbrev != nullptr ? absl::StrCat("killed by signal ", signal, " (SIG", abbrev, ")")
                             : absl::StrCat("killed by signal ", signal);
  }
  std::string how = exited              ? absl::StrCat("exit code ", code)
                    : abbrev != nullptr ? absl::StrCat("SIG", abbrev)
                                        : absl::StrCat("signal ", signal);
  return absl::StrCat("killed: ", limit == Limit::kCpu ? "CPU" : "memory", " limit (", how, ")");
}

}  // namespace tracim::broker
