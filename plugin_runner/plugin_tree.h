// The plugin's process tree as the runner keeps it. The runner is the
// plugin's parent and, with PR_SET_CHILD_SUBREAPER, the new parent of every
// process of the tree whose own parent dies: whatever the plugin starts stays
// a descendant of the runner, whichever process group or session it moves
// to. PluginTree forwards the broker's signals to the plugin, reaps every
// child, samples the plugin's memory when there is a memory limit, and at the
// end SIGKILLs everything that is left.
//
// Single-threaded: the runner's only thread. The signals of
// WaitedSignals() must be blocked before the plugin is forked (and unblocked
// in the child), so that none is lost and none runs a handler.
#ifndef TRACIM_PLUGIN_RUNNER_PLUGIN_TREE_H_
#define TRACIM_PLUGIN_RUNNER_PLUGIN_TREE_H_

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <set>
#include <vector>

#include "plugin_runner/limit_classifier.h"

namespace tracim::runner {

class PluginTree {
 public:
  // SIGCHLD, KillTreeSignal(), SIGPIPE (taken as EPIPE, never waited for)
  // and the forwarded signals: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1,
  // SIGUSR2.
  static sigset_t WaitedSignals();

  // `plugin` is a child of this process that made itself the leader of its
  // own process group (setpgid(0, 0)). With limits.memory_bytes set, the
  // plugin's /proc/<pid>/status is sampled while it runs (limit_classifier.h).
  PluginTree(pid_t plugin, LimitSettings limits);
  ~PluginTree();
  PluginTree(const PluginTree&) = delete;
  PluginTree& operator=(const PluginTree&) = delete;

  // Returns when the plugin has exited (and was reaped: its process group was
  // SIGKILLed just before), or when KillTreeSignal() arrived. Meanwhile
  // forwards the forwarded signals to the plugin's process group (and to the
  // plugin itself if it left it) and reaps orphans handed to the runner.
  void Watch();

  // SIGKILLs the plugin if it is still there and every remaining descendant,
  // and reaps them all: returns when this process has no child left.
  void KillAll();

  // How the plugin ended and the resources it used; after KillAll().
  PluginEnd end() const { return end_; }
  const std::optional<MemorySample>& last_sample() const { return last_sample_; }

 private:
  // Reaps every child that has exited. False when there is no child at all.
  bool ReapExited();
  void Forward(int signal);
  void Sample();
  // Time until the next memory sample; nullopt when not sampling.
  std::optional<std::chrono::nanoseconds> UntilNextSample() const;

  const pid_t plugin_;
  const LimitSettings limits_;
  bool plugin_reaped_ = false;
  bool kill_requested_ = false;
  std::set<int> forwarded_;
  PluginEnd end_;
  std::optional<MemorySample> last_sample_;
  int samples_taken_ = 0;
  int status_fd_ = -1;  // the plugin's /proc/<pid>/status
  std::chrono::steady_clock::time_point next_sample_;
};

// The pids of this process's children (/proc/self/task/<tid>/children, or a
// scan of /proc when the kernel lacks CONFIG_PROC_CHILDREN).
std::vector<pid_t> ListChildren();

}  // namespace tracim::runner

#endif  // TRACIM_PLUGIN_RUNNER_PLUGIN_TREE_H_
