// How a child process ended, and its one-line description for operators.
// Value type: thread-compatible.
#ifndef TRACIM_BROKER_PROCESS_EXIT_STATUS_H_
#define TRACIM_BROKER_PROCESS_EXIT_STATUS_H_

#include <string>

namespace tracim::broker {

struct ExitStatus {
  // True: exited with `code`; false: killed by `signal`.
  bool exited = true;
  int code = 0;
  int signal = 0;

  static ExitStatus Exited(int code) { return {true, code, 0}; }
  static ExitStatus Signaled(int signal) { return {false, 0, signal}; }

  // "exit code 3", "killed by signal 11 (SIGSEGV)".
  std::string Describe() const;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROCESS_EXIT_STATUS_H_
