// Process plumbing shared by the raw-gRPC test plugins (test_plugin,
// route_plugin): the environment the runner sets, and one process-wide stop
// request, raised by the Shutdown RPC or by SIGTERM/SIGINT and awaited by
// main before it shuts its server down.
#ifndef TRACIM_TESTS_PLUGINS_COMMON_PLUGIN_PROCESS_H_
#define TRACIM_TESTS_PLUGINS_COMMON_PLUGIN_PROCESS_H_

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace tracim::testing {

// The variable's value, or "" when unset.
inline std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

class StopRequest {
 public:
  static StopRequest& Get() {
    static StopRequest* const instance = new StopRequest();  // never destroyed
    return *instance;
  }

  void Raise() {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = true;
    cv_.notify_all();
  }

  // Blocks until Raise was called (at once if it was already).
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return requested_; });
  }

 private:
  StopRequest() = default;

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
};

inline void RequestStop() { StopRequest::Get().Raise(); }
inline void WaitForStop() { StopRequest::Get().Wait(); }

// SIGTERM and SIGINT raise the stop request: they are blocked in this
// thread (and so in the threads it starts later, gRPC's included) and
// waited for by a thread of their own, so that no handler runs inside
// gRPC. `on_signal` (optional) runs on that thread first. Call early in
// main, before any other thread starts.
inline void StopOnSignals(std::function<void(int)> on_signal = nullptr) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, on_signal = std::move(on_signal)] {
    int sig = 0;
    sigwait(&set, &sig);
    if (on_signal) on_signal(sig);
    RequestStop();
  }).detach();
}

}  // namespace tracim::testing

#endif  // TRACIM_TESTS_PLUGINS_COMMON_PLUGIN_PROCESS_H_
