// HandleInAckGroups: how the SDK's event stream groups the acks of one batch.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk_cpp/src/plugin_service.h"

namespace tracim::plugin::internal {
namespace {

using ::testing::ElementsAre;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

v1::EventBatch Batch(std::vector<uint64_t> ids) {
  v1::EventBatch batch;
  for (uint64_t id : ids) batch.add_events()->set_event_id(id);
  return batch;
}

// Records the order of handler calls and acks, on a fake clock that each
// handler advances by the time given for its event.
struct Recorder {
  std::vector<std::string> calls;
  std::vector<std::vector<uint64_t>> acks;
  Clock::time_point clock{};

  void Run(const v1::EventBatch& batch, const std::vector<milliseconds>& handler_time,
           Clock::duration max_delay) {
    size_t i = 0;
    HandleInAckGroups(
        batch,
        [&](const v1::Event& e) {
          calls.push_back("handle " + std::to_string(e.event_id()));
          clock += handler_time[i++];
        },
        [&](const std::vector<uint64_t>& ids) {
          calls.push_back("ack " + std::to_string(ids.size()));
          acks.push_back(ids);
        },
        [&] { return clock; }, max_delay);
  }
};

TEST(SdkHandleInAckGroups, FastHandlersGiveOneAckForTheWholeBatchAfterTheLastHandler) {
  Recorder r;
  r.Run(Batch({7, 8, 9, 10}), {milliseconds(0), milliseconds(0), milliseconds(1), milliseconds(0)},
        milliseconds(2));
  EXPECT_THAT(r.calls, ElementsAre("handle 7", "handle 8", "handle 9", "handle 10", "ack 4"));
  EXPECT_THAT(r.acks, ElementsAre(ElementsAre(7, 8, 9, 10)));
}

TEST(SdkHandleInAckGroups, SlowHandlersAreAcknowledgedOnceTheDelayHasPassed) {
  Recorder r;
  // 1 ms each with a 2 ms delay: acks after the 2nd and the 4th; the 5th
  // goes out at the end of the batch.
  r.Run(Batch({1, 2, 3, 4, 5}), std::vector<milliseconds>(5, milliseconds(1)), milliseconds(2));
  EXPECT_THAT(r.calls, ElementsAre("handle 1", "handle 2", "ack 2", "handle 3", "handle 4", "ack 2",
                                   "handle 5", "ack 1"));
  EXPECT_THAT(r.acks, ElementsAre(ElementsAre(1, 2), ElementsAre(3, 4), ElementsAre(5)));
}

TEST(SdkHandleInAckGroups, AHandlerLongerThanTheDelayIsAcknowledgedRightAfterItReturns) {
  Recorder r;
  r.Run(Batch({1, 2, 3}), {milliseconds(0), milliseconds(50), milliseconds(0)}, milliseconds(2));
  EXPECT_THAT(r.calls, ElementsAre("handle 1", "handle 2", "ack 2", "handle 3", "ack 1"));
}

TEST(SdkHandleInAckGroups, AnEmptyBatchAcknowledgesNothing) {
  Recorder r;
  r.Run(Batch({}), {}, milliseconds(2));
  EXPECT_TRUE(r.calls.empty());
}

}  // namespace
}  // namespace tracim::plugin::internal
