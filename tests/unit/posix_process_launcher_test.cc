// PosixProcessLauncher with the real tracim-plugin-runner (and, once, a
// plain program): the runner protocol seen from the broker's side — the
// report pipe's verdict in ExitStatus, SIGKILL turned into a kill-tree
// request that also ends the processes that left the plugin's group, and
// SIGTERM forwarded to the plugin.
#include "broker/process/posix_process_launcher.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTimeout(15000);

// Launches children on an io_context run by its own thread and collects
// their output lines and their exit.
class PosixProcessLauncherTest : public ::testing::Test {
 protected:
  PosixProcessLauncherTest() : work_(boost::asio::make_work_guard(io_)), launcher_(io_) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~PosixProcessLauncherTest() override {
    child_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // Starts the runner (is_runner) with `options` then "--" and `command`.
  void StartRunner(std::vector<std::string> options, std::vector<std::string> command) {
    LaunchSpec spec;
    spec.executable = TRACIM_TEST_RUNNER_BINARY;
    spec.argv = {spec.executable, "--parent-pid", std::to_string(getpid()), "--dir", "/"};
    spec.argv.insert(spec.argv.end(), options.begin(), options.end());
    spec.argv.push_back("--");
    spec.argv.insert(spec.argv.end(), command.begin(), command.end());
    Start(std::move(spec));
  }

  void Start(LaunchSpec spec) {
    ChildCallbacks callbacks;
    callbacks.on_line = [this](OutputStream, absl::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
      cv_.notify_all();
    };
    callbacks.on_exit = [this](ExitStatus status) {
      std::lock_guard<std::mutex> lock(mu_);
      exit_ = status;
      cv_.notify_all();
    };
    auto child = launcher_.Launch(spec, std::move(callbacks));
    ASSERT_TRUE(child.ok()) << child.status();
    child_ = std::move(*child);
  }

  // The first output line, waited for.
  std::string FirstLine() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kTimeout, [this] { return !lines_.empty(); });
    return lines_.empty() ? "" : lines_.front();
  }

  std::optional<ExitStatus> WaitExit() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kTimeout, [this] { return exit_.has_value(); });
    return exit_;
  }

  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  PosixProcessLauncher launcher_;
  std::thread thread_;
  std::unique_ptr<ChildProcess> child_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::optional<ExitStatus> exit_;
};

bool Exists(pid_t pid) { return std::filesystem::exists("/proc/" + std::to_string(pid)); }

TEST_F(PosixProcessLauncherTest, CarriesTheRunnersLimitVerdictIntoTheExitStatus) {
  StartRunner({"--rlimit-as", "268435456"},
              {"/usr/bin/python3", "-c", "b = []\nwhile True: b.append(bytearray(8 << 20))\n"});
  std::optional<ExitStatus> status = WaitExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 1);
  EXPECT_EQ(status->limit, ExitStatus::Limit::kMemory);
  EXPECT_EQ(status->Describe(), "killed: memory limit (exit code 1)");
}

TEST_F(PosixProcessLauncherTest, AnOrdinaryExitHasNoLimit) {
  StartRunner({"--rlimit-as", "268435456"}, {"/bin/sh", "-c", "echo bye; exit 3"});
  std::optional<ExitStatus> status = WaitExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Describe(), "exit code 3");
  EXPECT_EQ(Lines(), std::vector<std::string>{"bye"});
}

TEST_F(PosixProcessLauncherTest, SigkillKillsThePluginsWholeTreeThroughTheRunner) {
  // A plugin ignoring SIGTERM with a child that started its own session.
  StartRunner({}, {"/bin/sh", "-c",
                   "trap '' TERM; setsid sh -c 'echo $$; exec sleep 1000' & wait; sleep 1000"});
  pid_t escaped = std::stoi(FirstLine());
  ASSERT_TRUE(Exists(escaped));
  child_->SignalGroup(SIGTERM);  // ignored, and the escaped child never gets it
  child_->SignalGroup(SIGKILL);
  std::optional<ExitStatus> status = WaitExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Describe(), "killed by signal 9 (SIGKILL)");
  EXPECT_FALSE(Exists(escaped));
  if (Exists(escaped)) kill(escaped, SIGKILL);
}

TEST_F(PosixProcessLauncherTest, SigtermReachesThePluginThroughTheRunner) {
  StartRunner({},
              {"/bin/sh", "-c", "trap 'exit 5' TERM; echo ready; while :; do sleep 0.01; done"});
  ASSERT_EQ(FirstLine(), "ready");
  child_->SignalGroup(SIGTERM);
  std::optional<ExitStatus> status = WaitExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Describe(), "exit code 5");
}

TEST_F(PosixProcessLauncherTest, PlainProgramsKeepTheirArgvAndGetTheGroupSigkill) {
  LaunchSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh", "-c", "echo \"$@\"; exec sleep 1000", "sh", "a", "b"};
  spec.is_runner = false;
  Start(std::move(spec));
  EXPECT_EQ(FirstLine(), "a b");  // no --report-fd inserted
  child_->SignalGroup(SIGKILL);
  std::optional<ExitStatus> status = WaitExit();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->Describe(), "killed by signal 9 (SIGKILL)");
}

}  // namespace
}  // namespace tracim::broker
