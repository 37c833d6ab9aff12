// When a failed plugin is launched again: at once the first time, then after
// an exponential backoff with jitter, until it has failed more than
// `max_failures` times within `failure_window` — then it stays failed until
// an operator acts. Pure logic with injected time and randomness: tests are
// exact. Thread-compatible (the supervisor's strand owns one).
#ifndef TRACIM_BROKER_SUPERVISOR_RESTART_POLICY_H_
#define TRACIM_BROKER_SUPERVISOR_RESTART_POLICY_H_

#include <deque>
#include <optional>

#include "absl/time/time.h"

namespace tracim::broker {

struct RestartPolicy {
  // Delay before the second restart within the window; each later one
  // doubles it, up to max_backoff. The first restart is immediate.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(30);
  // More failures than this within failure_window: the plugin is marked
  // failed and left stopped. 0 never restarts.
  int max_failures = 5;
  absl::Duration failure_window = absl::Minutes(5);
  // Each delay is scaled by a factor drawn uniformly in [1 - jitter, 1 + jitter]
  // so that plugins failing together do not restart in lockstep.
  double jitter = 0.2;
};

class RestartTracker {
 public:
  explicit RestartTracker(RestartPolicy policy) : policy_(policy) {}

  // Records a failure at `now`. Returns the delay before the next launch, or
  // nullopt when the plugin has now failed more than max_failures times
  // within the window. `unit_random` is a draw in [0, 1) for the jitter.
  std::optional<absl::Duration> OnFailure(absl::Time now, double unit_random);

  // Forgets every failure (an operator restarted or re-enabled the plugin).
  void Reset() { failures_.clear(); }

  // Failures recorded within the window ending at `now`.
  int FailuresInWindow(absl::Time now);

  const RestartPolicy& policy() const { return policy_; }

 private:
  void Expire(absl::Time now);

  RestartPolicy policy_;
  std::deque<absl::Time> failures_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_RESTART_POLICY_H_
