#include "broker/process/posix_process_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "broker/process/line_splitter.h"
#include "plugin_runner/runner_protocol.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tracim::broker {
namespace {

namespace asio = boost::asio;

// How long to wait, after the child was reaped, for its output pipes to
// reach end of file before on_exit is reported anyway (a process that left
// the group could keep a pipe open forever).
constexpr auto kDrainAfterExit = std::chrono::milliseconds(500);

// After asking a runner to kill the plugin's tree: how long before the
// runner's own group gets SIGKILL (the runner normally exits within
// milliseconds; this only guards against a runner that cannot).
constexpr auto kKillTreeFallback = std::chrono::seconds(2);

// A runner's report is one short line; anything longer is not one.
constexpr size_t kMaxReportBytes = 256;

// Debian 12's <sys/pidfd.h> lacks C linkage in C++; the raw syscall is
// equivalent.
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

absl::Status ErrnoStatus(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

// Everything about one child that outlives the ChildProcess handle: the
// pending asynchronous operations hold it through shared_ptr.
class ChildState : public std::enable_shared_from_this<ChildState> {
 public:
  // All handlers run on `ex`, a strand: callbacks never run concurrently.
  // `report_fd` is the read end of a runner's report pipe, or -1 for a
  // plain program.
  ChildState(const asio::any_io_executor& ex, pid_t pid, int pidfd, int out_fd, int err_fd,
             int report_fd, size_t max_line_bytes, ChildCallbacks callbacks)
      : pid_(pid),
        is_runner_(report_fd >= 0),
        executor_(ex),
        pidfd_(ex, pidfd),
        out_(ex, out_fd),
        err_(ex, err_fd),
        report_(ex),
        drain_timer_(ex),
        kill_timer_(ex),
        callbacks_(std::move(callbacks)),
        out_lines_(max_line_bytes, [this](absl::string_view l) { Line(OutputStream::kStdout, l); }),
        err_lines_(max_line_bytes,
                   [this](absl::string_view l) { Line(OutputStream::kStderr, l); }) {
    if (is_runner_) {
      report_.assign(report_fd);
      open_pipes_++;
    }
  }

  void Start() {
    ReadMore(out_, out_buf_, out_lines_);
    ReadMore(err_, err_buf_, err_lines_);
    if (is_runner_) ReadReport();
    pidfd_.async_wait(
        asio::posix::stream_descriptor::wait_read,
        [self = shared_from_this()](const boost::system::error_code&) { self->Reap(); });
  }

  pid_t pid() const { return pid_; }

  void SignalGroup(int signal) {
    std::lock_guard<std::mutex> lock(mu_);
    // Until the leader is reaped, its pid (and so the group id) cannot be
    // reused: signalling the group is safe.
    if (reaped_) return;
    if (is_runner_ && signal == SIGKILL) {
      // A SIGKILLed runner could not kill what left the plugin's group.
      ::kill(pid_, runner::KillTreeSignal());
      asio::post(executor_, [self = shared_from_this()] { self->ArmKillFallback(); });
      return;
    }
    ::kill(-pid_, signal);
  }

 private:
  void Line(OutputStream stream, absl::string_view line) {
    if (callbacks_.on_line) callbacks_.on_line(stream, line);
  }

  void ReadMore(asio::posix::stream_descriptor& pipe, std::array<char, 4096>& buf,
                LineSplitter& lines) {
    pipe.async_read_some(asio::buffer(buf), [self = shared_from_this(), &pipe, &buf, &lines](
                                                const boost::system::error_code& ec, size_t n) {
      if (n > 0) lines.Feed(absl::string_view(buf.data(), n));
      if (ec) {
        lines.Finish();
        boost::system::error_code ignored;
        pipe.close(ignored);
        self->open_pipes_--;
        self->MaybeReportExit();
        return;
      }
      self->ReadMore(pipe, buf, lines);
    });
  }

  void ReadReport() {
    report_.async_read_some(
        asio::buffer(report_buf_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          // Past the maximum it is no report: keep one byte too many, which
          // ParseReport refuses, and drop the rest.
          size_t room = kMaxReportBytes + 1 - self->report_text_.size();
          self->report_text_.append(self->report_buf_.data(), std::min(n, room));
          if (ec) {
            boost::system::error_code ignored;
            self->report_.close(ignored);
            self->open_pipes_--;
            self->MaybeReportExit();
            return;
          }
          self->ReadReport();
        });
  }

  // On the strand, after a kill-tree request.
  void ArmKillFallback() {
    if (exited_ || kill_fallback_armed_) return;
    kill_fallback_armed_ = true;
    kill_timer_.expires_after(kKillTreeFallback);
    kill_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: reaped
      std::lock_guard<std::mutex> lock(self->mu_);
      if (!self->reaped_) ::kill(-self->pid_, SIGKILL);
    });
  }

  void Reap() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The leader is a zombie now: its group id is still reserved, so this
      // reaches exactly the plugin's remaining processes.
      ::kill(-pid_, SIGKILL);
      siginfo_t info{};
      int rc;
      do {
        rc = ::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.native_handle(), &info, WEXITED);
      } while (rc < 0 && errno == EINTR);
      reaped_ = true;
      if (rc < 0) {
        status_ = ExitStatus::Exited(-1);
      } else if (info.si_code == CLD_EXITED) {
        status_ = ExitStatus::Exited(info.si_status);
      } else if (is_runner_ && info.si_status == runner::KillTreeSignal()) {
        // Asked to kill before it could take the request: what was asked.
        status_ = ExitStatus::Signaled(SIGKILL);
      } else {
        status_ = ExitStatus::Signaled(info.si_status);
      }
    }
    boost::system::error_code ignored;
    pidfd_.close(ignored);
    kill_timer_.cancel();
    exited_ = true;
    drain_timer_.expires_after(kDrainAfterExit);
    drain_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: the pipes were drained
      boost::system::error_code ignored;
      self->out_.close(ignored);  // completes the reads with an error
      self->err_.close(ignored);
      self->report_.close(ignored);
    });
    MaybeReportExit();
  }

  void MaybeReportExit() {
    if (!exited_ || open_pipes_ > 0 || reported_) return;
    reported_ = true;
    drain_timer_.cancel();
    switch (runner::ParseReport(report_text_)) {
      case runner::LimitHit::kCpu:
        status_.limit = ExitStatus::Limit::kCpu;
        break;
      case runner::LimitHit::kMemory:
        status_.limit = ExitStatus::Limit::kMemory;
        break;
      case runner::LimitHit::kNone:
        break;
    }
    if (callbacks_.on_exit) callbacks_.on_exit(status_);
  }

  const pid_t pid_;
  const bool is_runner_;
  const asio::any_io_executor executor_;  // the strand
  asio::posix::stream_descriptor pidfd_;
  asio::posix::stream_descriptor out_;
  asio::posix::stream_descriptor err_;
  // A runner's report pipe (closed for a plain program).
  asio::posix::stream_descriptor report_;
  asio::steady_timer drain_timer_;
  asio::steady_timer kill_timer_;
  ChildCallbacks callbacks_;
  std::array<char, 4096> out_buf_{};
  std::array<char, 4096> err_buf_{};
  std::array<char, kMaxReportBytes> report_buf_{};
  std::string report_text_;
  LineSplitter out_lines_;
  LineSplitter err_lines_;
  // Guards reaped_ against SignalGroup from another thread.
  std::mutex mu_;
  bool reaped_ = false;
  // Below: io thread only.
  ExitStatus status_;
  int open_pipes_ = 2;
  bool exited_ = false;
  bool reported_ = false;
  bool kill_fallback_armed_ = false;
};

class PosixChildProcess : public ChildProcess {
 public:
  explicit PosixChildProcess(std::shared_ptr<ChildState> state) : state_(std::move(state)) {}
  int pid() const override { return state_->pid(); }
  void SignalGroup(int signal) override { state_->SignalGroup(signal); }

 private:
  std::shared_ptr<ChildState> state_;
};

// Closes the fds it holds unless released.
struct FdPair {
  int fds[2] = {-1, -1};
  ~FdPair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

}  // namespace

PosixProcessLauncher::PosixProcessLauncher(asio::io_context& io, size_t max_line_bytes)
    : io_(io), max_line_bytes_(max_line_bytes) {}

absl::StatusOr<std::unique_ptr<ChildProcess>> PosixProcessLauncher::Launch(
    const LaunchSpec& spec, ChildCallbacks callbacks) {
  if (spec.executable.empty() || spec.argv.empty()) {
    return absl::InvalidArgumentError("launch spec needs an executable and argv[0]");
  }
  FdPair out, err, report;
  if (::pipe2(out.fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  if (::pipe2(err.fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  if (spec.is_runner && ::pipe2(report.fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fds[1], STDERR_FILENO);
  // Last: the pipes above may have been on fd 3.
  if (spec.is_runner) posix_spawn_file_actions_adddup2(&actions, report.fds[1], runner::kReportFd);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group from the first instruction, so that the whole group
  // can be signalled even before the runner has exec'd the plugin.
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> args = spec.argv;
  if (spec.is_runner) {
    const std::string fd = std::to_string(runner::kReportFd);
    args.insert(args.begin() + 1, {"--report-fd", fd});
  }
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, spec.executable.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return ErrnoStatus(absl::StrCat("cannot start '", spec.executable, "'"), rc);
  }
  // We have not reaped the child, so its pid cannot have been reused yet.
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    int e = errno;
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return ErrnoStatus("pidfd_open", e);
  }
  for (FdPair* p : {&out, &err, &report}) {
    if (p->fds[1] >= 0) ::close(p->fds[1]);
    p->fds[1] = -1;
  }
  auto state =
      std::make_shared<ChildState>(asio::make_strand(io_), pid, pidfd, out.fds[0], err.fds[0],
                                   report.fds[0], max_line_bytes_, std::move(callbacks));
  out.fds[0] = err.fds[0] = report.fds[0] = -1;  // owned by the stream descriptors now
  state->Start();
  return std::make_unique<PosixChildProcess>(std::move(state));
}

}  // namespace tracim::broker
