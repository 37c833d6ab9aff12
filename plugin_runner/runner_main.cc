// tracim-plugin-runner: what the broker spawns for every plugin launch. It
// applies the isolation the broker cannot apply from outside a posix_spawn
// (death signal, resource limits, user drop, no_new_privs, closed fds) and
// then becomes the plugin: exec of the manifest's command, or, for a C++
// plugin built as a shared library, dlopen + sdk_cpp's RunPlugin in this very
// process. The process group (one per launch) is set by the broker's spawn.
//
// Failures of the runner itself exit with the codes of runner_options.h and
// one line on stderr, which the broker logs under the plugin's name.
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

#include <string>
#include <vector>

#include "plugin_runner/runner_options.h"
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

int Run(const RunnerOptions& o) {
  // Credentials first: changing them clears the parent-death signal.
  DropPrivileges(o);
  // Die with the broker. If the broker died before this line ran, the
  // signal will never come: check that our parent is still the broker.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) Die(kExitSetupFailed, "PR_SET_PDEATHSIG: " + Errno());
  if (getppid() != o.parent_pid) Die(kExitParentGone, "the broker exited during the spawn");

  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
    Die(kExitSetupFailed, "/dev/null: " + Errno());
  // Nothing of the broker's leaks into the plugin beyond stdio.
  close_range(3, ~0U, 0);

  if (chdir(o.dir.c_str()) != 0) Die(kExitSetupFailed, "cannot enter '" + o.dir + "': " + Errno());
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
    char* argv[] = {arg0.data(), nullptr};
    return reinterpret_cast<tracim::plugin::RunFunction>(run)(
        reinterpret_cast<tracim::plugin::RegisterFunction>(symbol), 1, argv);
  }

  std::vector<char*> argv;
  for (const auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  int err = errno;
  Die(err == ENOENT ? kExitNotFound : kExitNotExecutable,
      "cannot execute '" + o.command[0] + "': " + strerror(err));
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
