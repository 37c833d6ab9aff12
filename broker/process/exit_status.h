// How a child process ended, and its one-line description for operators.
// Value type: thread-compatible.
#ifndef TRACIM_BROKER_PROCESS_EXIT_STATUS_H_
#define TRACIM_BROKER_PROCESS_EXIT_STATUS_H_

#include <string>

namespace tracim::broker {

struct ExitStatus {
  // A limit of the plugin's manifest that ended it, as tracim-plugin-runner
  // found it (plugin_runner/limit_classifier.h).
  enum class Limit { kNone, kCpu, kMemory };

  // True: exited with `code`; false: killed by `signal`.
  bool exited = true;
  int code = 0;
  int signal = 0;
  // Set together with exited/code/signal, which stay those of the plugin.
  Limit limit = Limit::kNone;

  static ExitStatus Exited(int code) {
    ExitStatus s;
    s.code = code;
    return s;
  }
  static ExitStatus Signaled(int signal) {
    ExitStatus s;
    s.exited = false;
    s.signal = signal;
    return s;
  }

  // Without a limit: "exit code 3", "killed by signal 11 (SIGSEGV)".
  // With one: "killed: CPU limit (SIGXCPU)", "killed: memory limit (SIGABRT)",
  // "killed: memory limit (exit code 1)" — the parenthesis says how the
  // plugin ended ("signal 40" for a signal without a name).
  std::string Describe() const;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROCESS_EXIT_STATUS_H_
