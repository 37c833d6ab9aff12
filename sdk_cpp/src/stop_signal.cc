#include "sdk_cpp/src/stop_signal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tracim::plugin::internal {
namespace {

// The pipe's write end for the signal handler; -1 when no instance lives.
std::atomic<int> g_signal_fd{-1};

// Byte written for a Request (signals write their number).
constexpr unsigned char kRequestByte = 0;

void OnSignal(int signo) {
  const int saved_errno = errno;
  const int fd = g_signal_fd.load();
  if (fd >= 0) {
    const unsigned char byte = static_cast<unsigned char>(signo);
    // Non-blocking: a full pipe already holds a wake-up.
    [[maybe_unused]] ssize_t n = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<StopSignal>> StopSignal::Create() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return Errno("pipe2");
  // The read end blocks: Wait() sleeps in read().
  if (fcntl(fds[0], F_SETFL, 0) != 0) {
    absl::Status status = Errno("fcntl");
    close(fds[0]);
    close(fds[1]);
    return status;
  }
  int expected = -1;
  if (!g_signal_fd.compare_exchange_strong(expected, fds[1])) {
    close(fds[0]);
    close(fds[1]);
    return absl::FailedPreconditionError("a StopSignal already exists in this process");
  }
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &action, nullptr) != 0 || sigaction(SIGINT, &action, nullptr) != 0) {
    absl::Status status = Errno("sigaction");
    g_signal_fd.store(-1);
    close(fds[0]);
    close(fds[1]);
    return status;
  }
  return std::unique_ptr<StopSignal>(new StopSignal(fds[0], fds[1]));
}

StopSignal::~StopSignal() {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  g_signal_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
}

void StopSignal::Request(std::string reason, std::chrono::milliseconds grace) {
  {
    absl::MutexLock lock(&mu_);
    if (requested_) return;
    requested_ = true;
    request_ = Stop{std::move(reason), grace};
  }
  [[maybe_unused]] ssize_t n = write(write_fd_, &kRequestByte, 1);
}

StopSignal::Stop StopSignal::Wait() {
  unsigned char byte = kRequestByte;
  while (true) {
    ssize_t n = read(read_fd_, &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    // The pipe cannot close while we own both ends; treat anything else as
    // a request to stop rather than spin.
    return Stop{"stop pipe failed", kSignalGrace};
  }
  if (byte != kRequestByte) {
    return Stop{byte == SIGINT ? "SIGINT" : "SIGTERM", kSignalGrace};
  }
  absl::MutexLock lock(&mu_);
  return request_;
}

}  // namespace tracim::plugin::internal
