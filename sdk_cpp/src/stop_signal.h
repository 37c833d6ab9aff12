// StopSignal: what ends a plugin's serving loop — SIGTERM, SIGINT or the
// Shutdown RPC — funnelled through a self-pipe so the main thread blocks in
// read() (no polling) and the signal handler stays async-signal-safe.
//
// Thread-safety: one instance per process (it owns the SIGTERM/SIGINT
// handlers). Request may be called from any thread, Wait from one.
#ifndef TRACIM_SDK_CPP_SRC_STOP_SIGNAL_H_
#define TRACIM_SDK_CPP_SRC_STOP_SIGNAL_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tracim::plugin::internal {

class StopSignal {
 public:
  struct Stop {
    // "SIGTERM", "SIGINT", or the Shutdown RPC's reason.
    std::string reason;
    // How long the plugin has to stop.
    std::chrono::milliseconds grace;
  };

  // Grace period assumed after SIGTERM or SIGINT.
  static constexpr std::chrono::milliseconds kSignalGrace{2000};

  // Creates the pipe and installs the handlers. INTERNAL on a failing
  // system call; FAILED_PRECONDITION if another instance is alive.
  static absl::StatusOr<std::unique_ptr<StopSignal>> Create();
  // Restores the default SIGTERM / SIGINT dispositions.
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Asks Wait() to return. The first request wins. Non-blocking: safe from a
  // gRPC reaction.
  void Request(std::string reason, std::chrono::milliseconds grace);

  // Blocks until a signal or a Request arrives.
  Stop Wait();

 private:
  StopSignal(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  const int read_fd_;
  const int write_fd_;
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  Stop request_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_STOP_SIGNAL_H_
