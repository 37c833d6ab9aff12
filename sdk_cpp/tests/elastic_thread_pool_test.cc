#include "sdk_cpp/src/elastic_thread_pool.h"

#include <atomic>
#include <memory>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tracim::plugin::internal {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

TEST(SdkElasticThreadPool, RunsBlockingTasksAtOnceUpToTheMaximumThenQueuesInOrder) {
  ElasticThreadPool pool(3);
  absl::Notification release;
  absl::Notification started[4];
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pool.Post([&, i] {
      started[i].Notify();
      release.WaitForNotification();
    }));
  }
  // Three tasks block at once, each on a thread of its own.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(started[i].WaitForNotificationWithTimeout(kTimeout));
  EXPECT_EQ(pool.threads(), 3);
  EXPECT_FALSE(started[3].HasBeenNotified());
  // The fourth runs once one of them returns.
  release.Notify();
  EXPECT_TRUE(started[3].WaitForNotificationWithTimeout(kTimeout));
  EXPECT_TRUE(pool.Stop(absl::Now() + kTimeout));
  EXPECT_EQ(pool.threads(), 0);
}

TEST(SdkElasticThreadPool, ReusesAnIdleThreadInsteadOfCreatingOne) {
  ElasticThreadPool pool(8);
  for (int i = 0; i < 5; ++i) {
    absl::Notification done;
    ASSERT_TRUE(pool.Post([&done] { done.Notify(); }));
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
    // Back to waiting for work (it notified from inside its task).
    const absl::Time deadline = absl::Now() + kTimeout;
    while (pool.idle_threads() != 1 && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(1));
    ASSERT_EQ(pool.idle_threads(), 1);
  }
  EXPECT_EQ(pool.threads(), 1);
}

TEST(SdkElasticThreadPool, StopDropsQueuedTasksReportsARunningOneAndRefusesNewOnes) {
  // After a Stop that returns false the detached thread still uses the pool
  // and the task's captures: they live for the rest of the process.
  struct State {
    ElasticThreadPool pool{1};
    absl::Notification running, release;
    std::atomic<bool> queued_ran{false};
  };
  static State* const state = new State;
  ASSERT_TRUE(state->pool.Post([] {
    state->running.Notify();
    state->release.WaitForNotification();
  }));
  ASSERT_TRUE(state->running.WaitForNotificationWithTimeout(kTimeout));
  auto owner = std::make_shared<int>(0);
  ASSERT_TRUE(state->pool.Post([owner] { state->queued_ran = true; }));
  EXPECT_EQ(owner.use_count(), 2);

  EXPECT_FALSE(state->pool.Stop(absl::Now()));  // the first task still runs
  EXPECT_EQ(owner.use_count(), 1);              // the queued one was dropped unrun
  EXPECT_FALSE(state->pool.Post([owner] { state->queued_ran = true; }));
  EXPECT_EQ(owner.use_count(), 1);  // the refused task was destroyed
  state->release.Notify();
  EXPECT_FALSE(state->queued_ran.load());
}

}  // namespace
}  // namespace tracim::plugin::internal
