// Test doubles for the broker side of protocol v1: a Registrar served on a
// Unix socket, a plugin child process with its output captured line by line,
// and a per-test temp dir. Thread-safety: each class is safe to use from the
// test thread while gRPC or reader threads feed it.
#ifndef TRACIM_SDK_CPP_TESTS_FAKE_BROKER_H_
#define TRACIM_SDK_CPP_TESTS_FAKE_BROKER_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"

namespace tracim::plugin::testing {

// A fresh directory under /tmp (short: socket paths must fit 108 bytes),
// removed with its content at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Registrar.Register recording each request and the secret metadata.
class FakeRegistrar final : public v1::Registrar::Service {
 public:
  // Answers every Register with `status` (when not OK) or `response`.
  void SetAnswer(grpc::Status status, v1::RegisterResponse response);

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;

  // The first request, once it arrived within `timeout`.
  std::optional<v1::RegisterRequest> WaitForRegister(absl::Duration timeout);
  // The secret metadata of the first request ("" if none).
  std::string first_secret();
  int calls();

 private:
  absl::Mutex mu_;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  v1::RegisterResponse response_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RegisterRequest> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> secrets_ ABSL_GUARDED_BY(mu_);
};

// The broker's control socket with a FakeRegistrar.
class FakeBroker {
 public:
  // Serves on unix:<socket_path>.
  explicit FakeBroker(const std::string& socket_path);
  ~FakeBroker();
  FakeRegistrar& registrar() { return registrar_; }

 private:
  FakeRegistrar registrar_;
  std::unique_ptr<grpc::Server> server_;
};

// A child process (posix_spawn) with stdout and stderr captured as lines.
class ChildProcess {
 public:
  // Spawns argv[0] with exactly `env` as environment, in `cwd`.
  ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               const std::string& cwd);
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Waits up to `timeout` for the child to exit: its exit code, or 128 + the
  // signal number; nullopt on timeout.
  std::optional<int> WaitForExit(absl::Duration timeout);
  // Waits until stdout (resp. stderr) has a line equal to `line`.
  bool WaitForStdoutLine(const std::string& line, absl::Duration timeout);
  bool WaitForStderrLine(const std::string& line, absl::Duration timeout);
  // Lines read so far (all of them once the child exited and WaitForExit
  // returned a value).
  std::vector<std::string> stdout_lines();
  std::vector<std::string> stderr_lines();

 private:
  struct Output {
    std::vector<std::string> lines;
    bool closed = false;
  };
  void ReadLines(int fd, Output* output);
  bool WaitForLine(Output* output, const std::string& line, absl::Duration timeout);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> exit_code_;
  absl::Mutex mu_;
  Output stdout_ ABSL_GUARDED_BY(mu_);
  Output stderr_ ABSL_GUARDED_BY(mu_);
  std::thread stdout_reader_;
  std::thread stderr_reader_;
};

}  // namespace tracim::plugin::testing

#endif  // TRACIM_SDK_CPP_TESTS_FAKE_BROKER_H_
