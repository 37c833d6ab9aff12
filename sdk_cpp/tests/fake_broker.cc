#include "sdk_cpp/tests/fake_broker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin::testing {

TempDir::TempDir() {
  char pattern[] = "/tmp/sdk-test-XXXXXX";
  if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void FakeRegistrar::SetAnswer(grpc::Status status, v1::RegisterResponse response) {
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
  response_ = std::move(response);
}

grpc::Status FakeRegistrar::Register(grpc::ServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(*request);
  auto it = context->client_metadata().find(v1::kSecretMetadataKey);
  secrets_.push_back(it == context->client_metadata().end()
                         ? std::string()
                         : std::string(it->second.data(), it->second.size()));
  if (!status_.ok()) return status_;
  *response = response_;
  return grpc::Status::OK;
}

std::optional<v1::RegisterRequest> FakeRegistrar::WaitForRegister(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto arrived = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !requests_.empty(); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout)) return std::nullopt;
  return requests_.front();
}

std::string FakeRegistrar::first_secret() {
  absl::MutexLock lock(&mu_);
  return secrets_.empty() ? std::string() : secrets_.front();
}

int FakeRegistrar::calls() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(requests_.size());
}

FakeBroker::FakeBroker(const std::string& socket_path) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&registrar_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) throw std::runtime_error("cannot serve the fake broker");
}

FakeBroker::~FakeBroker() { server_->Shutdown(std::chrono::system_clock::now()); }

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env, const std::string& cwd) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  std::vector<std::string> env_strings;
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    close(out[0]);
    close(err[0]);
    throw std::runtime_error(absl::StrCat("posix_spawn: ", strerror(rc)));
  }
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) throw std::runtime_error("pidfd_open failed");
  stdout_reader_ = std::thread([this, fd = out[0]] { ReadLines(fd, &stdout_); });
  stderr_reader_ = std::thread([this, fd = err[0]] { ReadLines(fd, &stderr_); });
}

ChildProcess::~ChildProcess() {
  if (!exit_code_.has_value()) {
    kill(pid_, SIGKILL);
    WaitForExit(absl::InfiniteDuration());
  }
  stdout_reader_.join();
  stderr_reader_.join();
  close(pidfd_);
}

void ChildProcess::ReadLines(int fd, Output* output) {
  std::string partial;
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = partial.find('\n')) != std::string::npos) {
      absl::MutexLock lock(&mu_);
      output->lines.push_back(partial.substr(0, newline));
      partial.erase(0, newline + 1);
    }
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  if (!partial.empty()) output->lines.push_back(partial);
  output->closed = true;
}

std::optional<int> ChildProcess::WaitForExit(absl::Duration timeout) {
  if (exit_code_.has_value()) return exit_code_;
  pollfd pfd{pidfd_, POLLIN, 0};
  const int timeout_ms = timeout == absl::InfiniteDuration()
                             ? -1
                             : static_cast<int>(absl::ToInt64Milliseconds(timeout));
  int ready;
  do {
    ready = poll(&pfd, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) return std::nullopt;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // Every line is in once both pipes closed (the child is gone; a grandchild
  // holding them would be a bug of the plugin under test).
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](ChildProcess* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                             return self->stdout_.closed && self->stderr_.closed;
                           },
                           this),
                       absl::Seconds(10));
  return exit_code_;
}

bool ChildProcess::WaitForLine(Output* output, const std::string& line, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto found = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (const std::string& l : output->lines) {
      if (l == line) return true;
    }
    return output->closed;
  };
  mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
  for (const std::string& l : output->lines) {
    if (l == line) return true;
  }
  return false;
}

bool ChildProcess::WaitForStdoutLine(const std::string& line, absl::Duration timeout) {
  return WaitForLine(&stdout_, line, timeout);
}

bool ChildProcess::WaitForStderrLine(const std::string& line, absl::Duration timeout) {
  return WaitForLine(&stderr_, line, timeout);
}

std::vector<std::string> ChildProcess::stdout_lines() {
  absl::MutexLock lock(&mu_);
  return stdout_.lines;
}

std::vector<std::string> ChildProcess::stderr_lines() {
  absl::MutexLock lock(&mu_);
  return stderr_.lines;
}

}  // namespace tracim::plugin::testing
