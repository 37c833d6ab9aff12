// What tracim-plugin-runner and the broker's process launcher agree on beyond
// the command line (runner_options.h): the signal that asks the runner to kill
// the plugin's whole process tree, and the one-line report through which the
// runner says that a limit of the manifest ended the plugin.
// Constants and pure functions: thread-safe.
//
// The runner is the parent of the plugin and the subreaper of everything the
// plugin starts; docs/protocol.md ("Processes and sockets") has the picture.
#ifndef TRACIM_PLUGIN_RUNNER_RUNNER_PROTOCOL_H_
#define TRACIM_PLUGIN_RUNNER_RUNNER_PROTOCOL_H_

#include <signal.h>

#include <string>

#include "absl/strings/string_view.h"

namespace tracim::runner {

// The launcher hands the runner the write end of its report pipe as this fd
// and says so with `--report-fd 3`. The runner keeps it close-on-exec, so the
// read end sees end of file exactly when the runner has exited.
inline constexpr int kReportFd = 3;

// Asks the runner to SIGKILL the plugin and every process it started,
// including those that left the plugin's process group or session, then to
// exit as the plugin did. The broker sends it where it would have sent
// SIGKILL (a SIGKILLed runner could not clean up), and it is the runner's
// parent-death signal, so a SIGKILLed broker takes the whole tree with it.
// A real-time signal (SIGRTMIN + 1): no plugin or operator sends it by
// accident, and the classic signals stay free for forwarding.
inline int KillTreeSignal() { return SIGRTMIN + 1; }

// Why the plugin ended, when the runner can tell that one of the manifest's
// limits did it.
enum class LimitHit { kNone, kCpu, kMemory };

// The report line for `hit`: "limit=cpu\n", "limit=memory\n"; empty for
// kNone (the runner then writes nothing).
std::string FormatReport(LimitHit hit);

// Reads what the runner wrote on its report pipe. Anything but exactly one
// of the lines above (nothing, garbage, a cut line) is kNone: a report can
// add a reason, never invent one.
LimitHit ParseReport(absl::string_view report);

}  // namespace tracim::runner

#endif  // TRACIM_PLUGIN_RUNNER_RUNNER_PROTOCOL_H_
