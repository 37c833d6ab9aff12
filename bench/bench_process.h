// Helpers shared by the benchmarks that run processes: spawning and
// stopping them, their CPU time and context switches, medians. Header-only; each benchmark is one
// translation unit.
#ifndef TRACIM_BENCH_BENCH_PROCESS_H_
#define TRACIM_BENCH_BENCH_PROCESS_H_

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace tracim::bench {

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---------------------------------------------------------------------------
// Processes.

inline pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   int out_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  }
  std::vector<std::string> env_strings(env);
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args(argv);
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argvp[0], &actions, nullptr, argvp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Runs `argv` to its end with its stdout and stderr captured: what it
// wrote, and whether it exited with status 0.
struct Captured {
  std::string out;
  bool ok = false;
};
inline Captured RunCaptured(const std::vector<std::string>& argv) {
  Captured result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return result;
  const pid_t child = Spawn(argv, {}, pipe_fds[1]);
  close(pipe_fds[1]);
  char buffer[256];
  ssize_t n = 0;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    result.out.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  if (child > 0) waitpid(child, &status, 0);
  result.ok = child > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return result;
}

inline void Stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

// CPU time (user + system) of `pid`, in seconds; with `descendants`, that of
// its children, their children... added (the broker's runner and plugin).
inline double CpuSeconds(pid_t pid, bool descendants) {
  double total = 0;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren != std::string::npos) {
    std::vector<std::string> fields;
    std::string field;
    for (char c : text.substr(paren + 2)) {
      if (c == ' ') {
        fields.push_back(field);
        field.clear();
      } else {
        field += c;
      }
    }
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
    if (fields.size() > 12) {
      total += static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12])) /
               static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  if (descendants) {
    std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                           "/children");
    pid_t child;
    while (children >> child) total += CpuSeconds(child, true);
  }
  return total;
}

// Context switches (voluntary and not) of every thread of `pid` so far.
inline double ContextSwitches(pid_t pid) {
  double total = 0;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(task_dir, ec)) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::stod(line.substr(line.find(':') + 1));
      }
    }
  }
  return total;
}

}  // namespace tracim::bench

#endif  // TRACIM_BENCH_BENCH_PROCESS_H_
