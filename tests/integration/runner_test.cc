// tracim-plugin-runner on its own, started by this test as the broker would
// start it: the exit codes and messages through which it tells the broker why
// a plugin could not even start; the plugin's exit mirrored; signals
// forwarded; every descendant of the plugin killed and reaped when the plugin
// ends, when the broker asks and when the broker dies; and the report line
// that names a CPU or memory limit.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin_runner/runner_protocol.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kTimeout(15000);

struct RunResult {
  int code = -1;  // exit code, or -signal
  std::string output;
  std::string report;
};

// The runner as a child of this test, stdout+stderr on one pipe, and with
// `report` a report pipe on fd 3 (`--report-fd 3` added, as the broker's
// launcher does). The destructor SIGKILLs and reaps a runner still running.
class Runner {
 public:
  explicit Runner(std::vector<std::string> args, std::vector<std::string> env = {},
                  bool report = false) {
    std::string runner = TRACIM_TEST_RUNNER_BINARY;
    args.insert(args.begin(), runner);
    if (report) args.insert(args.begin() + 1, {"--report-fd", "3"});
    Spawn(runner, args, env, report);
  }

  // A plain program (a stand-in for the broker) instead of the runner.
  static std::unique_ptr<Runner> Program(std::vector<std::string> argv) {
    auto r = std::unique_ptr<Runner>(new Runner());
    r->Spawn(argv[0], argv, {}, false);
    return r;
  }

  ~Runner() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
    if (report_ >= 0) close(report_);
  }

  pid_t pid() const { return pid_; }

  // The next line of output, without "\n"; "" at end of file or deadline.
  std::string ReadLine(milliseconds timeout = kTimeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      size_t nl = pending_.find('\n');
      if (nl != std::string::npos) {
        std::string line = pending_.substr(0, nl);
        output_ += pending_.substr(0, nl + 1);
        pending_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd p{out_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return "";
      char buf[4096];
      ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) return "";
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

  // Reaps the runner, collecting its output meanwhile; then what is left of
  // the output and the report. Does not wait for the end of the output: a
  // process that escaped the runner could keep it open.
  RunResult Wait() {
    int status = 0;
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      poll(&p, 1, 50);
      Drain();
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;
    }
    reaped_ = true;
    Drain();
    RunResult r;
    r.output = output_ + pending_;
    if (report_ >= 0) r.report = ReadAll(report_);  // its only writer has exited
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return r;
  }

 private:
  Runner() = default;

  void Spawn(const std::string& program, std::vector<std::string>& args,
             std::vector<std::string> env, bool report) {
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out[2], rep[2] = {-1, -1};
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    if (report) {
      EXPECT_EQ(pipe2(rep, O_CLOEXEC), 0);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    if (report) posix_spawn_file_actions_adddup2(&actions, rep[1], 3);
    int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << program;
    close(out[1]);
    out_ = out[0];
    if (report) {
      close(rep[1]);
      report_ = rep[0];
    }
  }

  // Reads what the output pipe holds now, without blocking.
  void Drain() {
    char buf[4096];
    pollfd p{out_, POLLIN, 0};
    while (!eof_ && poll(&p, 1, 0) > 0) {
      ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) {
        eof_ = true;
        break;
      }
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

  static std::string ReadAll(int fd) {
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    return text;
  }

  pid_t pid_ = -1;
  bool reaped_ = false;
  int out_ = -1;
  int report_ = -1;
  bool eof_ = false;
  std::string pending_;
  std::string output_;
};

RunResult RunRunner(std::vector<std::string> args, std::vector<std::string> env = {}) {
  return Runner(std::move(args), std::move(env)).Wait();
}

std::string Self() { return std::to_string(getpid()); }

// Runner options up to and including "--" for a plugin in `dir`.
std::vector<std::string> Options(const TempDir& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--parent-pid", Self(), "--dir", dir.path().string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--");
  return args;
}

std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Python plugin: ignores SIGTERM; starts three descendants that ignore it
// too (a child in its group, a child in a group of its own, a grandchild
// in a session of its own), prints "runner plugin child child grandchild"
// pids, then exits 0 ("exit") or stays ("stay").
constexpr const char* kDescendants = R"(
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def sleep():
    os.execv('/bin/sleep', ['sleep', '1000'])
r, w = os.pipe()
in_group = os.fork()
if in_group == 0:
    own_session = os.fork()
    if own_session == 0:
        os.setsid()
        sleep()
    os.write(w, b'%d\n' % own_session)
    sleep()
own_group = os.fork()
if own_group == 0:
    os.setpgid(0, 0)
    sleep()
own_session = int(os.read(r, 32))
print(os.getppid(), os.getpid(), in_group, own_group, own_session, flush=True)
if sys.argv[1] == 'stay':
    signal.pause()
)";

std::vector<pid_t> Pids(const std::string& line) {
  std::vector<pid_t> pids;
  std::istringstream in(line);
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// Expects every pid gone within `timeout` (one deadline for all), and
// SIGKILLs those that are not, so that a failure leaves nothing behind.
void ExpectAllGoneWithin(const std::vector<pid_t>& pids, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (pid_t pid : pids) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (WaitProcessGone(pid, std::max(left, milliseconds(0)))) continue;
    ADD_FAILURE() << "pid " << pid << " survived";
    kill(pid, SIGKILL);
  }
}

// Expects none of `pids` to exist any more, not even as a zombie.
void ExpectAllReaped(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    if (!std::filesystem::exists("/proc/" + std::to_string(pid))) continue;
    ADD_FAILURE() << "pid " << pid << " still exists";
    kill(pid, SIGKILL);
  }
}

// --- Failures of the runner itself ------------------------------------------

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

TEST(Runner, ThePluginInheritsNeitherTheReportPipeNorTheRunnersFds) {
  TempDir dir;
  Runner runner(Plus(Options(dir), {"/bin/sh", "-c", "ls /proc/self/fd | wc -l"}), {}, true);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "4\n");
  EXPECT_EQ(r.report, "");
}

// --- The plugin's exit, mirrored --------------------------------------------

TEST(Runner, ExitsWithThePluginsExitCode) {
  TempDir dir;
  for (int code : {0, 1, 7, 125}) {
    auto r = RunRunner(Plus(Options(dir), {"/bin/sh", "-c", "exit " + std::to_string(code)}));
    EXPECT_EQ(r.code, code) << r.output;
  }
}

TEST(Runner, DiesOfTheSignalThatKilledThePlugin) {
  TempDir dir;
  for (int signal : {SIGSEGV, SIGABRT, SIGKILL, SIGTERM}) {
    auto r =
        RunRunner(Plus(Options(dir), {"/bin/sh", "-c", "kill -" + std::to_string(signal) + " $$"}));
    EXPECT_EQ(r.code, -signal) << r.output;
    EXPECT_EQ(r.output, "");
  }
}

TEST(Runner, LibraryPluginsRunInTheChildToo) {
  TempDir dir;
  auto r = RunRunner({"--parent-pid", Self(), "--dir", dir.path().string(), "--library",
                      (dir.path() / "missing.so").string()});
  EXPECT_EQ(r.code, 123);
  EXPECT_THAT(r.output, HasSubstr("cannot load library: "));
}

// --- Signals and the process tree -------------------------------------------

TEST(Runner, ForwardsSigtermToThePlugin) {
  TempDir dir;
  Runner runner(Plus(Options(dir), {"/usr/bin/python3", "-c",
                                    "import signal, sys\n"
                                    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))\n"
                                    "print('ready', flush=True)\n"
                                    "while True: signal.pause()\n"}));
  ASSERT_EQ(runner.ReadLine(), "ready");
  ASSERT_EQ(kill(runner.pid(), SIGTERM), 0);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, 5) << r.output;
}

TEST(Runner, KillsEveryDescendantWhenThePluginExits) {
  TempDir dir;
  Runner runner(Plus(Options(dir), {"/usr/bin/python3", "-c", kDescendants, "exit"}));
  std::vector<pid_t> pids = Pids(runner.ReadLine());
  ASSERT_EQ(pids.size(), 5u);
  EXPECT_EQ(pids[0], runner.pid());  // the plugin is the runner's child
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, 0) << r.output;
  // The runner exits only once it has reaped them all: no waiting needed.
  ExpectAllReaped({pids.begin() + 1, pids.end()});
}

TEST(Runner, KillTreeSignalKillsThePluginAndEveryDescendant) {
  TempDir dir;
  Runner runner(Plus(Options(dir), {"/usr/bin/python3", "-c", kDescendants, "stay"}));
  std::vector<pid_t> pids = Pids(runner.ReadLine());
  ASSERT_EQ(pids.size(), 5u);
  // Forwarded, and ignored by all of them.
  ASSERT_EQ(kill(runner.pid(), SIGTERM), 0);
  ASSERT_EQ(kill(runner.pid(), runner::KillTreeSignal()), 0);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, -SIGKILL) << r.output;
  ExpectAllReaped({pids.begin() + 1, pids.end()});
}

TEST(Runner, TheWholeTreeDiesWithTheBroker) {
  TempDir dir;
  // A shell stands in for the broker: the runner's parent, SIGKILLed.
  auto broker = Runner::Program({"/bin/sh", "-c",
                                 "runner=$1; shift; \"$runner\" --parent-pid $$ \"$@\" & wait",
                                 "sh", TRACIM_TEST_RUNNER_BINARY, "--dir", dir.path().string(),
                                 "--", "/usr/bin/python3", "-c", kDescendants, "stay"});
  std::vector<pid_t> pids = Pids(broker->ReadLine());
  ASSERT_EQ(pids.size(), 5u);
  ASSERT_EQ(kill(broker->pid(), SIGKILL), 0);
  ExpectAllGoneWithin(pids, milliseconds(1000));
  EXPECT_EQ(broker->Wait().code, -SIGKILL);
}

TEST(Runner, ReapsOrphansHandedToItWhileThePluginRuns) {
  TempDir dir;
  // The orphan's parent exits at once; the orphan a little later.
  Runner runner(Plus(Options(dir), {"/usr/bin/python3", "-c",
                                    "import os, signal, time\n"
                                    "r, w = os.pipe()\n"
                                    "if os.fork() == 0:\n"
                                    "    pid = os.fork()\n"
                                    "    if pid == 0:\n"
                                    "        time.sleep(0.1)\n"
                                    "        os._exit(0)\n"
                                    "    os.write(w, b'%d\\n' % pid)\n"
                                    "    os._exit(0)\n"
                                    "print(int(os.read(r, 32)), flush=True)\n"
                                    "signal.pause()\n"}));
  pid_t orphan = std::stoi(runner.ReadLine());
  // Gone from /proc only once reaped (a zombie stays listed).
  auto deadline = Clock::now() + kTimeout;
  while (std::filesystem::exists("/proc/" + std::to_string(orphan)) && Clock::now() < deadline) {
    WaitProcessGone(orphan, milliseconds(10));
  }
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(orphan)));
}

// --- Limits: the report -----------------------------------------------------

TEST(Runner, ReportsTheCpuLimit) {
  TempDir dir;
  Runner runner(Plus(Options(dir, {"--rlimit-cpu", "1"}), {"/bin/sh", "-c", "while :; do :; done"}),
                {}, true);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, -SIGXCPU) << r.output;
  EXPECT_EQ(r.report, "limit=cpu\n");
}

TEST(Runner, ReportsTheCpuLimitOfAPluginIgnoringSigxcpu) {
  TempDir dir;
  Runner runner(Plus(Options(dir, {"--rlimit-cpu", "1"}),
                     {"/bin/sh", "-c", "trap '' XCPU; while :; do :; done"}),
                {}, true);
  RunResult r = runner.Wait();
  // SIGKILL from the kernel at the hard limit, one CPU second later.
  EXPECT_EQ(r.code, -SIGKILL) << r.output;
  EXPECT_EQ(r.report, "limit=cpu\n");
}

// An AddressSanitizer build of the test plugin reserves terabytes of shadow
// address space: it cannot even start under RLIMIT_AS (make asan builds
// everything with it, the test binary included).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedPlugins = true;
#else
constexpr bool kSanitizedPlugins = false;
#endif
constexpr const char* kNoAddressLimitUnderAsan =
    "the AddressSanitizer build of the test plugin cannot run under RLIMIT_AS";

const std::vector<std::string> kTestPluginEnv = {"TRACIM_PLUGIN_NAME=t",
                                                 "TRACIM_PLUGIN_SOCKET=/nonexistent"};

TEST(Runner, ReportsTheMemoryLimitOfAPluginAllocatingUntilItFails) {
  if (kSanitizedPlugins) GTEST_SKIP() << kNoAddressLimitUnderAsan;
  TempDir dir;
  Runner runner(Plus(Options(dir, {"--rlimit-as", "268435456"}),
                     {TRACIM_TEST_PLUGIN_BINARY, "--mode=alloc-until-limit"}),
                kTestPluginEnv, true);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, -SIGABRT) << r.output;
  EXPECT_THAT(r.output, HasSubstr("std::bad_alloc"));
  EXPECT_EQ(r.report, "limit=memory\n");
}

TEST(Runner, ReportsTheMemoryLimitOfAnErrorExit) {
  TempDir dir;
  // Python: MemoryError, exit code 1.
  Runner runner(Plus(Options(dir, {"--rlimit-as", "268435456"}),
                     {"/usr/bin/python3", "-c",
                      "chunks = []\nwhile True: chunks.append(bytearray(8 << 20))\n"}),
                {}, true);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("MemoryError"));
  EXPECT_EQ(r.report, "limit=memory\n");
}

TEST(Runner, ReportsNoLimitForAnOrdinaryCrash) {
  if (kSanitizedPlugins) GTEST_SKIP() << kNoAddressLimitUnderAsan;
  TempDir dir;
  Runner runner(Plus(Options(dir, {"--rlimit-as", "268435456", "--rlimit-cpu", "30"}),
                     {TRACIM_TEST_PLUGIN_BINARY, "--mode=segfault-before-register"}),
                kTestPluginEnv, true);
  RunResult r = runner.Wait();
  EXPECT_EQ(r.code, -SIGSEGV) << r.output;
  EXPECT_EQ(r.report, "");
}

}  // namespace
}  // namespace tracim::testing
