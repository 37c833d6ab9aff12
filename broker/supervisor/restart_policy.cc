#include "broker/supervisor/restart_policy.h"

#include <algorithm>
#include <cmath>

namespace tracim::broker {

void RestartTracker::Expire(absl::Time now) {
  while (!failures_.empty() && failures_.front() <= now - policy_.failure_window) {
    failures_.pop_front();
  }
}

int RestartTracker::FailuresInWindow(absl::Time now) {
  Expire(now);
  return static_cast<int>(failures_.size());
}

std::optional<absl::Duration> RestartTracker::OnFailure(absl::Time now, double unit_random) {
  Expire(now);
  failures_.push_back(now);
  const int n = static_cast<int>(failures_.size());
  if (n > policy_.max_failures) return std::nullopt;
  if (n == 1) return absl::ZeroDuration();
  // n = 2 → initial_backoff, n = 3 → twice that, ... capped. The exponent is
  // bounded so that the shift cannot overflow whatever max_failures is.
  const int doublings = std::min(n - 2, 40);
  absl::Duration delay = policy_.initial_backoff * std::ldexp(1.0, doublings);
  delay = std::min(delay, policy_.max_backoff);
  const double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  const double factor = 1.0 - jitter + 2.0 * jitter * std::clamp(unit_random, 0.0, 1.0);
  return delay * factor;
}

}  // namespace tracim::broker
