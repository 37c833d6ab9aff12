// tracim-plugin-runner: what the broker spawns for every plugin launch, and
// the plugin's parent for as long as the plugin runs.
//
//   broker ──posix_spawn (own process group)──► runner ──fork──► plugin ──► …
//
// The runner applies the isolation the broker cannot apply from outside a
// posix_spawn (user drop, parent-death signal, closed fds), then forks the
// plugin: the child takes its own process group, dies with the runner
// (PR_SET_PDEATHSIG), gets the manifest's resource limits and no_new_privs,
// and execs the manifest's command (or, for a C++ plugin built as a shared
// library, dlopens it and serves it with sdk_cpp's RunPlugin).
//
// Why a parent rather than exec-ing into the plugin: the parent-death signal
// is not inherited by the plugin's own children, and a process that left the
// plugin's process group escaped the group SIGKILL. The runner is a
// subreaper, so it stays an ancestor of everything the plugin starts, and it
// kills all of it when the plugin ends, when the broker asks (runner_protocol.h)
// and when the broker dies (its parent-death signal). See plugin_tree.h.
//
// Its own exit mirrors the plugin's: the same exit code, or the same signal
// re-raised, so the broker's exit status reads as the plugin's. When a limit
// of the manifest ended the plugin it also writes one report line on
// --report-fd. Failures of the runner itself, and setup failures in the child
// before the plugin runs, exit with the codes of runner_options.h and one line
// on stderr, which the broker logs under the plugin's name.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "plugin_runner/limit_classifier.h"
#include "plugin_runner/plugin_tree.h"
#include "plugin_runner/runner_options.h"
#include "plugin_runner/runner_protocol.h"
#include "tracim/plugin/entry_points.h"

namespace tracim::runner {
namespace {

[[noreturn]] void Die(int code, const std::string& message) {
  fprintf(stderr, "tracim-plugin-runner: %s\n", message.c_str());
  _exit(code);
}

std::string Errno() { return strerror(errno); }

void SetLimit(int resource, const char* name, const std::optional<uint64_t>& value) {
  if (!value) return;
  struct rlimit limit;
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(*value);
  struct rlimit inherited;
  if (resource == RLIMIT_CPU && *value < RLIM_INFINITY - 1 &&
      getrlimit(RLIMIT_CPU, &inherited) == 0) {
    // Soft limit: SIGXCPU, which says why the plugin died. The kernel sends
    // SIGKILL at the hard limit; were they equal, SIGKILL would come first.
    // (Not above an inherited hard limit, which only root could raise.)
    limit.rlim_max = limit.rlim_cur + 1;
    if (inherited.rlim_max != RLIM_INFINITY) {
      limit.rlim_max = std::max(limit.rlim_cur, std::min(limit.rlim_max, inherited.rlim_max));
    }
  }
  if (setrlimit(resource, &limit) != 0) {
    Die(kExitSetupFailed, std::string("cannot set ") + name + ": " + Errno());
  }
}

// Switches to the manifest's user and group. Only root can; the broker only
// passes --user/--group when it runs as root.
void DropPrivileges(const RunnerOptions& o) {
  if (!o.user && !o.group) return;
  if (geteuid() != 0) Die(kExitSetupFailed, "cannot switch user or group: not running as root");
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (o.user) {
    errno = 0;
    struct passwd* pw = getpwnam(o.user->c_str());
    if (pw == nullptr) Die(kExitSetupFailed, "unknown user '" + *o.user + "'");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  if (o.group) {
    struct group* gr = getgrnam(o.group->c_str());
    if (gr == nullptr) Die(kExitSetupFailed, "unknown group '" + *o.group + "'");
    gid = gr->gr_gid;
  }
  if (setgroups(0, nullptr) != 0) Die(kExitSetupFailed, "setgroups: " + Errno());
  if (setgid(gid) != 0) Die(kExitSetupFailed, "setgid: " + Errno());
  if (setuid(uid) != 0) Die(kExitSetupFailed, "setuid: " + Errno());
}

// In the forked child: becomes the plugin. Never returns.
[[noreturn]] void BecomePlugin(const RunnerOptions& o, const sigset_t& original_mask,
                               pid_t runner) {
  // Leader of its own group, which the runner signals; the runner does the
  // same from its side, so that either order works.
  setpgid(0, 0);
  // Dies with the runner, e.g. when an operator SIGKILLs it. If the runner
  // died before this line ran, the signal will never come.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(kExitSetupFailed, "PR_SET_PDEATHSIG: " + Errno());
  if (getppid() != runner) Die(kExitParentGone, "the runner exited during the spawn");
  if (o.report_fd) close(*o.report_fd);
  sigprocmask(SIG_SETMASK, &original_mask, nullptr);

  // Allocated before the limits: under a small RLIMIT_AS the plugin's own
  // memory is what must fail, not the runner's preparations.
  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  SetLimit(RLIMIT_AS, "memory limit (RLIMIT_AS)", o.rlimit_as);
  SetLimit(RLIMIT_CPU, "CPU limit (RLIMIT_CPU)", o.rlimit_cpu);
  SetLimit(RLIMIT_NOFILE, "open files limit (RLIMIT_NOFILE)", o.rlimit_nofile);
  SetLimit(RLIMIT_NPROC, "process limit (RLIMIT_NPROC)", o.rlimit_nproc);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    Die(kExitSetupFailed, "no_new_privs: " + Errno());

  if (!o.library.empty()) {
    // Lazy binding, as for any executable: RTLD_NOW would resolve every
    // function of gRPC, protobuf and the SDK up front, which was half of a
    // library plugin's spawn-to-ready time.
    void* handle = dlopen(o.library.c_str(), RTLD_LAZY | RTLD_LOCAL);
    if (handle == nullptr)
      Die(kExitLibraryFailed, std::string("cannot load library: ") + dlerror());
    void* symbol = dlsym(handle, tracim::plugin::kRegisterSymbol);
    if (symbol == nullptr) {
      Die(kExitLibraryFailed, "'" + o.library + "' has no " + tracim::plugin::kRegisterSymbol +
                                  " function (declare it extern \"C\")");
    }
    // Found in the plugin's dependencies: the SDK it was linked with.
    void* run = dlsym(handle, tracim::plugin::kRunSymbol);
    if (run == nullptr) {
      Die(kExitLibraryFailed, "'" + o.library + "' is not linked with the tracim plugin SDK (no " +
                                  tracim::plugin::kRunSymbol + " function)");
    }
    std::string arg0 = o.library;
    char* library_argv[] = {arg0.data(), nullptr};
    // exit, not _exit: as when a program returns from main.
    std::exit(reinterpret_cast<tracim::plugin::RunFunction>(run)(
        reinterpret_cast<tracim::plugin::RegisterFunction>(symbol), 1, library_argv));
  }

  execv(argv[0], argv.data());
  int err = errno;
  Die(err == ENOENT ? kExitNotFound : kExitNotExecutable,
      "cannot execute '" + o.command[0] + "': " + strerror(err));
}

// Exits as the plugin did: the same code, or the same signal (without a core
// dump of the runner: the plugin dumped its own if it could).
[[noreturn]] void ExitLike(const PluginEnd& end) {
  if (end.exited) _exit(end.code);
  prctl(PR_SET_DUMPABLE, 0);
  signal(end.signal, SIG_DFL);
  kill(getpid(), end.signal);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, end.signal);
  sigprocmask(SIG_UNBLOCK, &only, nullptr);
  _exit(128 + end.signal);  // not reached for a signal that kills
}

int Run(const RunnerOptions& o) {
  // Credentials first: changing them clears the parent-death signal.
  DropPrivileges(o);
  // Taken by PluginTree with sigtimedwait from here on; the child restores
  // the mask it was spawned with.
  sigset_t waited = PluginTree::WaitedSignals(), original_mask;
  sigprocmask(SIG_BLOCK, &waited, &original_mask);
  // Kill the tree when the broker dies. If the broker died before this line
  // ran, the signal will never come: check that our parent is still the
  // broker.
  if (prctl(PR_SET_PDEATHSIG, KillTreeSignal()) != 0)
    Die(kExitSetupFailed, "PR_SET_PDEATHSIG: " + Errno());
  if (getppid() != o.parent_pid) Die(kExitParentGone, "the broker exited during the spawn");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    Die(kExitSetupFailed, "PR_SET_CHILD_SUBREAPER: " + Errno());

  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
    Die(kExitSetupFailed, "/dev/null: " + Errno());
  // Nothing of the broker's leaks into the plugin beyond stdio; the report
  // pipe stays with the runner (close-on-exec, and closed in the child).
  std::optional<int> report_fd;
  if (o.report_fd && fcntl(*o.report_fd, F_SETFD, FD_CLOEXEC) == 0) report_fd = o.report_fd;
  if (report_fd) {
    if (*report_fd > 3) close_range(3, *report_fd - 1, 0);
    close_range(*report_fd + 1, ~0U, 0);
  } else {
    close_range(3, ~0U, 0);
  }

  if (chdir(o.dir.c_str()) != 0) Die(kExitSetupFailed, "cannot enter '" + o.dir + "': " + Errno());

  const pid_t runner = getpid();
  RunnerOptions child_options = o;
  child_options.report_fd = report_fd;
  pid_t plugin = fork();
  if (plugin < 0) Die(kExitSetupFailed, "fork: " + Errno());
  if (plugin == 0) BecomePlugin(child_options, original_mask, runner);
  setpgid(plugin, plugin);

  LimitSettings limits{o.rlimit_as, o.rlimit_cpu};
  PluginTree tree(plugin, limits);
  tree.Watch();
  tree.KillAll();
  PluginEnd end = tree.end();
  if (report_fd) {
    std::string report = FormatReport(ClassifyEnd(end, limits, tree.last_sample()));
    if (!report.empty()) (void)!write(*report_fd, report.data(), report.size());
  }
  ExitLike(end);
}

}  // namespace
}  // namespace tracim::runner

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = tracim::runner::ParseRunnerOptions(args);
  if (!options.ok()) {
    tracim::runner::Die(tracim::runner::kExitSetupFailed,
                        std::string(options.status().message()) +
                            " (this program is started by tracim-plugin-broker)");
  }
  return tracim::runner::Run(*options);
}
