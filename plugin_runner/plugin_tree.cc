#include "plugin_runner/plugin_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "plugin_runner/runner_protocol.h"

namespace tracim::runner {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

// Memory samples: soon after the start (an allocation spree can end a plugin
// within a few tens of milliseconds), then at a steady pace.
constexpr milliseconds kFirstSamples[] = {milliseconds(5), milliseconds(10), milliseconds(20),
                                          milliseconds(40), milliseconds(80)};
constexpr milliseconds kSamplePeriod(100);
// Near the limit (NearMemoryLimit), where an end may come any moment.
constexpr milliseconds kNearLimitSamplePeriod(20);

// While killing the tree: how long to wait for a SIGCHLD before listing the
// children again (an orphan handed to the runner sends none to wake it).
constexpr milliseconds kKillRescan(10);

// Whole small /proc file from an open descriptor, read again from the start
// (procfs regenerates it).
std::string ReadFromStart(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  off_t offset = 0;
  while ((n = ::pread(fd, buf, sizeof(buf), offset)) > 0) {
    text.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

// Whole small /proc file, or empty.
std::string ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text = ReadFromStart(fd);
  ::close(fd);
  return text;
}

timespec ToTimespec(std::chrono::nanoseconds d) {
  if (d.count() < 0) d = std::chrono::nanoseconds(0);
  timespec t;
  t.tv_sec = static_cast<time_t>(d.count() / 1000000000);
  t.tv_nsec = static_cast<long>(d.count() % 1000000000);
  return t;
}

uint64_t Millis(const timeval& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1000 + static_cast<uint64_t>(t.tv_usec) / 1000;
}

}  // namespace

std::vector<pid_t> ListChildren() {
  std::vector<pid_t> children;
  const pid_t self = ::getpid();
  // The runner has a single thread: its children are its main thread's.
  std::string path = "/proc/self/task/" + std::to_string(self) + "/children";
  if (::access(path.c_str(), R_OK) == 0) {
    for (absl::string_view word :
         absl::StrSplit(ReadSmallFile(path), ' ', absl::SkipWhitespace())) {
      pid_t pid;
      if (absl::SimpleAtoi(word, &pid)) children.push_back(pid);
    }
    return children;
  }
  // Without CONFIG_PROC_CHILDREN: every /proc/<pid>/stat, "pid (comm) S ppid".
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    std::string stat = ReadSmallFile(std::string("/proc/") + entry->d_name + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipWhitespace());
    pid_t ppid;
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) && ppid == self) {
      children.push_back(pid);
    }
  }
  ::closedir(proc);
  return children;
}

sigset_t PluginTree::WaitedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, KillTreeSignal());
  sigaddset(&set, SIGPIPE);
  for (int s : kForwarded) sigaddset(&set, s);
  return set;
}

PluginTree::PluginTree(pid_t plugin, LimitSettings limits)
    : plugin_(plugin), limits_(limits), next_sample_(Clock::now() + kFirstSamples[0]) {}

PluginTree::~PluginTree() {
  if (status_fd_ >= 0) ::close(status_fd_);
}

std::optional<std::chrono::nanoseconds> PluginTree::UntilNextSample() const {
  if (!limits_.memory_bytes) return std::nullopt;
  return next_sample_ - Clock::now();
}

void PluginTree::Watch() {
  sigset_t waited = WaitedSignals();
  sigdelset(&waited, SIGPIPE);
  while (!plugin_reaped_) {
    std::optional<std::chrono::nanoseconds> wait = UntilNextSample();
    timespec timeout;
    if (wait) timeout = ToTimespec(*wait);
    siginfo_t info;
    int signal = ::sigtimedwait(&waited, &info, wait ? &timeout : nullptr);
    if (signal < 0) {
      if (errno == EAGAIN) Sample();
      continue;
    }
    if (signal == SIGCHLD) {
      ReapExited();
    } else if (signal == KillTreeSignal()) {
      kill_requested_ = true;
      return;
    } else {
      Forward(signal);
    }
  }
}

void PluginTree::Forward(int signal) {
  // The plugin is not reaped yet: its pid, and so its group id, cannot have
  // been reused.
  ::kill(-plugin_, signal);
  if (::getpgid(plugin_) != plugin_) ::kill(plugin_, signal);
  forwarded_.insert(signal);
}

void PluginTree::Sample() {
  // Opened once: sampling is frequent near the limit.
  if (status_fd_ < 0) {
    status_fd_ =
        ::open(("/proc/" + std::to_string(plugin_) + "/status").c_str(), O_RDONLY | O_CLOEXEC);
  }
  std::optional<MemorySample> sample =
      status_fd_ < 0 ? std::nullopt : ParseProcStatus(ReadFromStart(status_fd_));
  // Nothing once the plugin's memory is gone: keep the last real sample.
  if (sample) last_sample_ = sample;
  ++samples_taken_;
  milliseconds period = kSamplePeriod;
  if (samples_taken_ < static_cast<int>(std::size(kFirstSamples))) {
    period = kFirstSamples[samples_taken_] - kFirstSamples[samples_taken_ - 1];
  }
  if (last_sample_ && NearMemoryLimit(*last_sample_, *limits_.memory_bytes)) {
    period = std::min(period, kNearLimitSamplePeriod);
  }
  next_sample_ = Clock::now() + period;
}

bool PluginTree::ReapExited() {
  for (;;) {
    siginfo_t info{};
    // Look first, reap after: the plugin's group must be killed while the
    // plugin is still a zombie holding its id.
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno != ECHILD;
    if (info.si_pid == 0) return true;  // children left, none exited
    const pid_t pid = info.si_pid;
    if (pid != plugin_) {
      ::waitpid(pid, nullptr, 0);
      continue;
    }
    ::kill(-plugin_, SIGKILL);
    int status = 0;
    rusage usage{};
    ::wait4(plugin_, &status, 0, &usage);
    plugin_reaped_ = true;
    end_.exited = WIFEXITED(status);
    end_.code = end_.exited ? WEXITSTATUS(status) : 0;
    end_.signal = end_.exited ? 0 : WTERMSIG(status);
    end_.signal_sent_by_runner = !end_.exited && ((kill_requested_ && end_.signal == SIGKILL) ||
                                                  forwarded_.count(end_.signal) > 0);
    end_.max_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // kB on Linux
    end_.cpu_millis = Millis(usage.ru_utime) + Millis(usage.ru_stime);
  }
}

void PluginTree::KillAll() {
  if (!plugin_reaped_) {
    ::kill(-plugin_, SIGKILL);
    ::kill(plugin_, SIGKILL);  // in case it left its group
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (;;) {
    // Children not reaped yet: their pids cannot be reused.
    for (pid_t child : ListChildren()) ::kill(child, SIGKILL);
    if (!ReapExited()) return;
    // The grandchildren of a child that just died are the runner's children
    // now: list again when something exits, or shortly anyway.
    timespec rescan = ToTimespec(kKillRescan);
    ::sigtimedwait(&chld, nullptr, &rescan);
  }
}

}  // namespace tracim::runner
