// ProcessLauncher on Linux: posix_spawn (vfork-based, safe in a
// multi-threaded process) into a new process group, a pidfd to watch and
// reap the child without any risk of PID reuse, and pipes for stdout/stderr
// read with Asio. A runner (LaunchSpec::is_runner) also gets a report pipe on
// fd 3 (`--report-fd 3` inserted after argv[0]), and SignalGroup(SIGKILL)
// reaches it as a kill-tree request (plugin_runner/runner_protocol.h).
//
// Threading: Launch() must be called from a thread that lives as long as the
// children (PR_SET_PDEATHSIG, set by the runner, fires when the *thread* that
// spawned the child exits); the broker calls it from its main io thread.
// Each child's callbacks run on a strand of the io_context given to the
// constructor: never concurrently with each other.
#ifndef TRACIM_BROKER_PROCESS_POSIX_PROCESS_LAUNCHER_H_
#define TRACIM_BROKER_PROCESS_POSIX_PROCESS_LAUNCHER_H_

#include <cstddef>

#include "boost/asio/io_context.hpp"
#include "broker/process/process_launcher.h"

namespace tracim::broker {

class PosixProcessLauncher : public ProcessLauncher {
 public:
  // Output lines longer than this are cut and marked.
  static constexpr size_t kDefaultMaxLineBytes = 16 * 1024;

  explicit PosixProcessLauncher(boost::asio::io_context& io,
                                size_t max_line_bytes = kDefaultMaxLineBytes);

  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(const LaunchSpec& spec,
                                                       ChildCallbacks callbacks) override;

 private:
  boost::asio::io_context& io_;
  size_t max_line_bytes_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROCESS_POSIX_PROCESS_LAUNCHER_H_
