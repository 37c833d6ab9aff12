// tracim-plugin-runner on its own: the exit codes and messages through which
// it tells the broker why a plugin could not even start.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

using ::testing::HasSubstr;

struct RunResult {
  int code = -1;
  std::string output;
};

// Runs the runner as the broker would (we are its parent), collecting
// stdout+stderr.
RunResult RunRunner(std::vector<std::string> args) {
  std::string runner = TRACIM_TEST_RUNNER_BINARY;
  args.insert(args.begin(), runner);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  pid_t pid;
  char* envp[] = {nullptr};
  int rc = posix_spawn(&pid, runner.c_str(), &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  RunResult r;
  if (rc != 0) return r;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) r.output.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return r;
}

std::string Self() { return std::to_string(getpid()); }

TEST(Runner, MissingCommandExits127NamingIt) {
  TempDir dir;
  auto r = RunRunner({"--parent-pid", Self(), "--dir", dir.path().string(), "--",
                      (dir.path() / "missing").string()});
  EXPECT_EQ(r.code, 127);
  EXPECT_EQ(r.output, "tracim-plugin-runner: cannot execute '" + (dir.path() / "missing").string() +
                          "': No such file or directory\n");
}

TEST(Runner, NonExecutableCommandExits126) {
  TempDir dir;
  WriteFile(dir.path() / "plugin.sh", "#!/bin/sh\n", 0644);
  auto r = RunRunner({"--parent-pid", Self(), "--dir", dir.path().string(), "--",
                      (dir.path() / "plugin.sh").string()});
  EXPECT_EQ(r.code, 126);
  EXPECT_THAT(r.output, HasSubstr("cannot execute '" + (dir.path() / "plugin.sh").string() +
                                  "': Permission denied"));
}

TEST(Runner, WrongParentExits124) {
  TempDir dir;
  auto r = RunRunner({"--parent-pid", "1", "--dir", dir.path().string(), "--", "/bin/true"});
  EXPECT_EQ(r.code, 124);
  EXPECT_EQ(r.output, "tracim-plugin-runner: the broker exited during the spawn\n");
}

TEST(Runner, BadOptionsExit125) {
  auto r = RunRunner({"--parent-pid", Self(), "--rlimit-as", "lots"});
  EXPECT_EQ(r.code, 125);
  EXPECT_EQ(r.output,
            "tracim-plugin-runner: --rlimit-as: expected a positive integer, got 'lots' (this "
            "program is started by tracim-plugin-broker)\n");
}

TEST(Runner, LibraryWithoutEntryPointExits123) {
  TempDir dir;
  // Any shared object without register_tracim_plugin will do.
  auto r =
      RunRunner({"--parent-pid", Self(), "--dir", dir.path().string(), "--library", "libm.so.6"});
  EXPECT_EQ(r.code, 123);
  EXPECT_THAT(r.output, HasSubstr("'libm.so.6' has no register_tracim_plugin function"));
}

TEST(Runner, AppliesLimitsCwdAndCleanStdinBeforeExec) {
  TempDir dir;
  auto r = RunRunner({"--parent-pid", Self(), "--dir", dir.path().string(), "--rlimit-nofile", "64",
                      "--rlimit-cpu", "30", "--", "/bin/sh", "-c",
                      "pwd; ulimit -n; ulimit -t; grep NoNewPrivs /proc/self/status; "
                      "ls /proc/self/fd | wc -l; cat"});
  EXPECT_EQ(r.code, 0) << r.output;
  // fds: 0, 1, 2 and the one ls opens to list them.
  EXPECT_EQ(r.output, dir.path().string() + "\n64\n30\nNoNewPrivs:\t1\n4\n");
}

}  // namespace
}  // namespace tracim::testing
