#include "sdk_cpp/src/work_queue.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin::internal {
namespace {

TEST(SdkWorkQueue, OneThreadRunsTasksInPostOrderOnlyAfterStart) {
  WorkQueue queue(1);
  std::vector<int> order;  // Touched by the queue's thread only, read after Stop.
  absl::Notification last;
  for (int i = 0; i < 100; ++i) queue.Post([&order, i] { order.push_back(i); });
  queue.Post([&last] { last.Notify(); });
  EXPECT_FALSE(last.HasBeenNotified());
  queue.Start();
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(queue.Stop(absl::Now() + absl::Seconds(10)));
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(SdkWorkQueue, StopDropsTasksNotStartedAndReportsARunningTaskPastTheDeadline) {
  // After a Stop that returns false the detached thread still uses the
  // queue and the task's captures: they live for the rest of the process.
  struct State {
    WorkQueue queue{1};
    absl::Notification running, release;
    std::atomic<bool> second_ran{false};
  };
  static State* const state = new State;
  state->queue.Post([] {
    state->running.Notify();
    state->release.WaitForNotification();
  });
  state->queue.Post([] { state->second_ran = true; });
  state->queue.Start();
  ASSERT_TRUE(state->running.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(state->queue.Stop(absl::Now() + absl::Milliseconds(50)));
  state->release.Notify();
  EXPECT_FALSE(state->second_ran);
}

TEST(SdkWorkQueue, PostAfterStopDestroysTheTaskUnrun) {
  WorkQueue queue(2);
  queue.Start();
  ASSERT_TRUE(queue.Stop(absl::Now() + absl::Seconds(10)));
  auto token = std::make_shared<int>(0);
  bool ran = false;
  queue.Post([token, &ran] { ran = true; });
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace tracim::plugin::internal
