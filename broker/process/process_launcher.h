// The line between plugin lifecycle logic and the operating system: starts a
// child process in its own process group and reports its output lines and
// its exit. The supervisor only talks to these interfaces; tests can use a
// fake. Implementations document their own threading.
#ifndef TRACIM_BROKER_PROCESS_PROCESS_LAUNCHER_H_
#define TRACIM_BROKER_PROCESS_PROCESS_LAUNCHER_H_

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/process/exit_status.h"

namespace tracim::broker {

struct LaunchSpec {
  // Absolute path of the program.
  std::string executable;
  // Full argv, argv[0] included.
  std::vector<std::string> argv;
  // Complete environment ("NAME=value"); nothing else is inherited.
  std::vector<std::string> env;
  // Working directory of the child; empty keeps the parent's.
  std::filesystem::path cwd;
  // The program is tracim-plugin-runner (the only program the broker starts
  // with this interface): it keeps the plugin's whole process tree, so
  // SignalGroup(SIGKILL) asks it to kill that tree instead of killing it,
  // and it can say that a limit ended the plugin (ExitStatus::limit). See
  // plugin_runner/runner_protocol.h. False: a plain program.
  bool is_runner = true;
};

enum class OutputStream { kStdout, kStderr };

// Callbacks of one child. They run on the launcher's executor, never
// concurrently with each other; they must not block.
struct ChildCallbacks {
  // One complete line of output (long lines already cut and marked).
  std::function<void(OutputStream, absl::string_view line)> on_line;
  // Called once, after the child was reaped and its process group sent
  // SIGKILL (so the plugin's own children die with it). A runner has killed
  // and reaped every process the plugin started before it exits.
  std::function<void(ExitStatus)> on_exit;
};

// A running child: the leader of its own process group. Destroying the
// handle does not stop the child (the on_exit callback still comes); call
// SignalGroup first.
class ChildProcess {
 public:
  virtual ~ChildProcess() = default;
  // The child's pid: for a runner, the runner's (the plugin is its only
  // direct child).
  virtual int pid() const = 0;
  // Sends `signal` to the whole process group, as long as the leader has not
  // been reaped (after that the group id could belong to someone else, and
  // the call does nothing). Safe against PID reuse.
  // A runner is alone in its group and forwards SIGHUP, SIGINT, SIGQUIT,
  // SIGTERM, SIGUSR1 and SIGUSR2 to the plugin's own group; SIGKILL becomes a
  // request to kill the plugin's whole tree (runner::KillTreeSignal()),
  // followed by a SIGKILL of the runner's group if the runner is still there
  // two seconds later. The runner then dies of the plugin's SIGKILL.
  virtual void SignalGroup(int signal) = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts the child. Errors: INVALID_ARGUMENT for a bad spec, INTERNAL (with
  // the errno text) when the OS refuses.
  virtual absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(const LaunchSpec& spec,
                                                               ChildCallbacks callbacks) = 0;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROCESS_PROCESS_LAUNCHER_H_
