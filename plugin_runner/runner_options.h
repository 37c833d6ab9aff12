// Command line of tracim-plugin-runner, the process the broker spawns for
// each plugin launch, and the exit codes through which it reports its own
// failures to the broker. Pure parsing: thread-safe.
//
//   tracim-plugin-runner --parent-pid 4242 --dir /plugins/tracim_backend_x
//       [--rlimit-as BYTES] [--rlimit-cpu SECONDS] [--rlimit-nofile N]
//       [--rlimit-nproc N] [--user NAME] [--group NAME] [--report-fd 3]
//       (--library /plugins/tracim_backend_x/libx.so | -- /abs/command args...)
#ifndef TRACIM_PLUGIN_RUNNER_RUNNER_OPTIONS_H_
#define TRACIM_PLUGIN_RUNNER_RUNNER_OPTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tracim::runner {

// Exit codes of the runner itself (the plugin's own codes pass through).
// 126/127 follow the shell's convention for exec failures.
inline constexpr int kExitSetupFailed = 125;    // bad options, limits, user, chdir
inline constexpr int kExitNotExecutable = 126;  // exec: permission denied / bad format
inline constexpr int kExitNotFound = 127;       // exec: no such file
inline constexpr int kExitParentGone = 124;     // the broker died during the spawn
inline constexpr int kExitLibraryFailed = 123;  // dlopen / dlsym failed

struct RunnerOptions {
  pid_t parent_pid = 0;
  std::string dir;
  std::optional<uint64_t> rlimit_as;
  std::optional<uint64_t> rlimit_cpu;
  std::optional<uint64_t> rlimit_nofile;
  std::optional<uint64_t> rlimit_nproc;
  std::optional<std::string> user;
  std::optional<std::string> group;
  // Write end of the report pipe (runner_protocol.h). The process launcher
  // adds `--report-fd 3` to the argv it is given; the supervisor leaves it.
  std::optional<int> report_fd;
  // Exactly one of library / command.
  std::string library;
  std::vector<std::string> command;
};

// Parses argv (argv[0] excluded). INVALID_ARGUMENT naming the option.
absl::StatusOr<RunnerOptions> ParseRunnerOptions(const std::vector<std::string>& args);

// The reverse, for the broker: the argv after the runner's path.
std::vector<std::string> FormatRunnerOptions(const RunnerOptions& options);

}  // namespace tracim::runner

#endif  // TRACIM_PLUGIN_RUNNER_RUNNER_OPTIONS_H_
