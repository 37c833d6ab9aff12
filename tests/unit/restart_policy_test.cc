#include "broker/supervisor/restart_policy.h"

#include <gtest/gtest.h>

#include <optional>

namespace tracim::broker {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

RestartPolicy NoJitter() {
  RestartPolicy p;
  p.jitter = 0;
  return p;
}

TEST(RestartTrackerTest, FirstRestartIsImmediateThenBackoffDoubles) {
  RestartTracker t(NoJitter());
  EXPECT_EQ(t.OnFailure(kStart, 0.5), absl::ZeroDuration());
  EXPECT_EQ(t.OnFailure(kStart + absl::Seconds(1), 0.5), absl::Milliseconds(100));
  EXPECT_EQ(t.OnFailure(kStart + absl::Seconds(2), 0.5), absl::Milliseconds(200));
  EXPECT_EQ(t.OnFailure(kStart + absl::Seconds(3), 0.5), absl::Milliseconds(400));
  EXPECT_EQ(t.OnFailure(kStart + absl::Seconds(4), 0.5), absl::Milliseconds(800));
}

TEST(RestartTrackerTest, MoreThanMaxFailuresWithinTheWindowGivesUp) {
  RestartTracker t(NoJitter());
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(t.OnFailure(kStart + absl::Seconds(i), 0).has_value()) << i;
  }
  EXPECT_EQ(t.OnFailure(kStart + absl::Seconds(5), 0), std::nullopt);
  EXPECT_EQ(t.FailuresInWindow(kStart + absl::Seconds(5)), 6);
}

TEST(RestartTrackerTest, FailuresOlderThanTheWindowAreForgotten) {
  RestartTracker t(NoJitter());
  for (int i = 0; i < 5; ++i) t.OnFailure(kStart + absl::Seconds(i), 0);
  // The window is 5 minutes: at +5 min + 1 s the failures at 0 s and 1 s
  // have expired, leaving 3; this one is the 4th.
  const absl::Time later = kStart + absl::Minutes(5) + absl::Seconds(1);
  EXPECT_EQ(t.OnFailure(later, 0.5), absl::Milliseconds(400));
  EXPECT_EQ(t.FailuresInWindow(later), 4);
  // Long after, the plugin starts over: immediate restart.
  EXPECT_EQ(t.OnFailure(later + absl::Hours(1), 0.5), absl::ZeroDuration());
}

TEST(RestartTrackerTest, BackoffIsCappedAtTheMaximum) {
  RestartPolicy p = NoJitter();
  p.max_failures = 100;
  p.max_backoff = absl::Seconds(30);
  RestartTracker t(p);
  std::optional<absl::Duration> last;
  for (int i = 0; i < 60; ++i) last = t.OnFailure(kStart + absl::Milliseconds(i), 0.5);
  EXPECT_EQ(last, absl::Seconds(30));
}

TEST(RestartTrackerTest, JitterScalesTheDelayWithinItsBounds) {
  RestartPolicy p;
  p.jitter = 0.2;
  RestartTracker low(p), high(p), mid(p);
  for (RestartTracker* t : {&low, &high, &mid}) t->OnFailure(kStart, 0);
  EXPECT_EQ(low.OnFailure(kStart, 0.0), absl::Milliseconds(80));
  EXPECT_EQ(mid.OnFailure(kStart, 0.5), absl::Milliseconds(100));
  EXPECT_EQ(high.OnFailure(kStart, 1.0), absl::Milliseconds(120));
}

TEST(RestartTrackerTest, ZeroMaxFailuresNeverRestarts) {
  RestartPolicy p = NoJitter();
  p.max_failures = 0;
  RestartTracker t(p);
  EXPECT_EQ(t.OnFailure(kStart, 0), std::nullopt);
}

TEST(RestartTrackerTest, ResetStartsOver) {
  RestartTracker t(NoJitter());
  for (int i = 0; i < 6; ++i) t.OnFailure(kStart, 0);
  t.Reset();
  EXPECT_EQ(t.FailuresInWindow(kStart), 0);
  EXPECT_EQ(t.OnFailure(kStart, 0), absl::ZeroDuration());
}

}  // namespace
}  // namespace tracim::broker
