#include "broker/process/exit_status.h"

#include <string.h>

#include "absl/strings/str_cat.h"

namespace tracim::broker {

std::string ExitStatus::Describe() const {
  if (exited) return absl::StrCat("exit code ", code);
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? absl::StrCat("killed by signal ", signal, " (SIG", abbrev, ")")
                           : absl::StrCat("killed by signal ", signal);
}

}  // namespace tracim::broker
