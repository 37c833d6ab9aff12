#include "broker/events/plugin_event_queue.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;
using ::testing::ElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

PluginEventQueue::EventPtr MakeEvent(uint64_t id, const std::string& hook = "on_user_created") {
  v1::Event e;
  e.set_event_id(id);
  e.set_hook(hook);
  e.mutable_user()->set_public_name("user " + std::to_string(id));
  return MakePublishedEvent(std::move(e));
}

v1::EventBatch Parse(const std::string& bytes) {
  v1::EventBatch batch;
  EXPECT_TRUE(batch.ParseFromString(bytes));
  return batch;
}

std::vector<uint64_t> Ids(const std::string& bytes) {
  std::vector<uint64_t> ids;
  const v1::EventBatch batch = Parse(bytes);
  for (const auto& e : batch.events()) ids.push_back(e.event_id());
  return ids;
}

std::vector<bool> Redelivered(const std::string& bytes) {
  std::vector<bool> r;
  const v1::EventBatch batch = Parse(bytes);
  for (const auto& e : batch.events()) r.push_back(e.redelivered());
  return r;
}

TEST(PluginEventQueue, BatchesWaitingEventsInOrderUpToTheMaximum) {
  PluginEventQueue q(100);
  for (uint64_t id = 1; id <= 7; ++id) ASSERT_TRUE(q.Push(MakeEvent(id)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(3, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(1, 2, 3));
  ASSERT_TRUE(q.NextBatch(3, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(4, 5, 6));
  ASSERT_TRUE(q.NextBatch(3, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(7));
  EXPECT_FALSE(q.NextBatch(3, kT0, batch));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_EQ(q.unacked(), 7u);
  EXPECT_EQ(q.size(), 7u);
}

TEST(PluginEventQueue, AMaximumOfZeroStillSendsOneEvent) {
  PluginEventQueue q(10);
  ASSERT_TRUE(q.Push(MakeEvent(1)));
  ASSERT_TRUE(q.Push(MakeEvent(2)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(0, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(1));
}

TEST(PluginEventQueue, BatchIsTheEncodingOfAnEventBatchOfTheEvents) {
  PluginEventQueue q(10);
  v1::EventBatch expected;
  for (uint64_t id : {3, 4, 5}) {
    auto event = MakeEvent(id);
    ASSERT_TRUE(q.Push(event));
    *expected.add_events() = event->event;
  }
  std::string batch;
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_EQ(batch, expected.SerializeAsString());
}

TEST(PublishedEvent, BatchBytesMatchProtobufsForEventsOfAnySize) {
  v1::EventBatch expected;
  std::string batch;
  for (size_t name_size : {0, 100, 300, 70000}) {
    v1::Event e;
    e.set_event_id(name_size + 1);
    e.mutable_user()->set_public_name(std::string(name_size, 'x'));
    *expected.add_events() = e;
    AppendToEventBatch(*MakePublishedEvent(std::move(e)), batch);
  }
  EXPECT_EQ(batch, expected.SerializeAsString());
}

TEST(PluginEventQueue, HoldsTheSharedEventUntilAcknowledged) {
  PluginEventQueue q(10);
  auto event = MakeEvent(5);
  ASSERT_TRUE(q.Push(event));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_EQ(event.use_count(), 2);
  EXPECT_EQ(q.Acknowledge({5}), 1u);
  EXPECT_EQ(event.use_count(), 1);
}

TEST(PluginEventQueue, CapacityCountsWaitingAndUnacknowledgedEvents) {
  PluginEventQueue q(3);
  ASSERT_TRUE(q.Push(MakeEvent(1)));
  ASSERT_TRUE(q.Push(MakeEvent(2)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));  // 1 and 2 now unacknowledged
  EXPECT_TRUE(q.Push(MakeEvent(3)));
  EXPECT_FALSE(q.Push(MakeEvent(4)));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.Acknowledge({1}), 1u);
  EXPECT_TRUE(q.Push(MakeEvent(5)));
  EXPECT_FALSE(q.Push(MakeEvent(6)));
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(3, 5));
}

TEST(PluginEventQueue, AcknowledgeIgnoresUnknownAndRepeatedIdsAndAcceptsAnyOrder) {
  PluginEventQueue q(10);
  for (uint64_t id = 1; id <= 4; ++id) ASSERT_TRUE(q.Push(MakeEvent(id)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(3, kT0, batch));  // 1..3 sent, 4 waiting
  EXPECT_EQ(q.Acknowledge({3, 1, 99}), 2u);
  EXPECT_EQ(q.Acknowledge({3}), 0u);
  EXPECT_EQ(q.Acknowledge({4}), 0u);  // waiting, never sent
  EXPECT_EQ(q.unacked(), 1u);
  EXPECT_EQ(q.waiting(), 1u);
}

TEST(PluginEventQueue, RequeuePutsUnacknowledgedCopiesMarkedRedeliveredBeforeWaitingOnes) {
  PluginEventQueue q(10);
  std::vector<PluginEventQueue::EventPtr> events;
  for (uint64_t id = 1; id <= 5; ++id) {
    events.push_back(MakeEvent(id));
    ASSERT_TRUE(q.Push(events.back()));
  }
  std::string batch;
  ASSERT_TRUE(q.NextBatch(2, kT0, batch));
  ASSERT_TRUE(q.NextBatch(2, kT0, batch));  // 1..4 sent, 5 waiting
  EXPECT_EQ(q.Acknowledge({2}), 1u);
  q.RequeueUnacked();
  EXPECT_EQ(q.unacked(), 0u);
  EXPECT_EQ(q.waiting(), 4u);
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(1, 3, 4, 5));
  EXPECT_THAT(Redelivered(batch), ElementsAre(true, true, true, false));
  // The published events themselves are not marked.
  for (const auto& e : events) EXPECT_FALSE(e->event.redelivered());
  // An ack for the previous stream's delivery of 1 counts for the new one.
  EXPECT_EQ(q.Acknowledge({1}), 1u);
}

TEST(PluginEventQueue, RequeueDiscardsTheEndedLaunchsOnPluginsLoaded) {
  PluginEventQueue q(10);
  ASSERT_TRUE(q.Push(MakeEvent(1, "on_plugins_loaded")));
  ASSERT_TRUE(q.Push(MakeEvent(2)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  q.RequeueUnacked();
  EXPECT_EQ(q.size(), 1u);
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(2));
  EXPECT_THAT(Redelivered(batch), ElementsAre(true));
}

TEST(PluginEventQueue, FilterWaitingDropsOnlyWaitingEvents) {
  PluginEventQueue q(10);
  ASSERT_TRUE(q.Push(MakeEvent(1, "on_workspace_created")));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  ASSERT_TRUE(q.Push(MakeEvent(2, "on_user_created")));
  ASSERT_TRUE(q.Push(MakeEvent(3, "on_workspace_created")));
  q.FilterWaiting([](const v1::Event& e) { return e.hook() == "on_user_created"; });
  EXPECT_EQ(q.waiting(), 1u);
  EXPECT_EQ(q.unacked(), 1u);
  ASSERT_TRUE(q.NextBatch(10, kT0, batch));
  EXPECT_THAT(Ids(batch), ElementsAre(2));
}

TEST(PluginEventQueue, LateEventsAreReportedOncePerDelivery) {
  PluginEventQueue q(10);
  const absl::Duration timeout = absl::Seconds(30);
  EXPECT_EQ(q.NextAckDeadline(timeout), std::nullopt);
  ASSERT_TRUE(q.Push(MakeEvent(1)));
  ASSERT_TRUE(q.Push(MakeEvent(2)));
  std::string batch;
  ASSERT_TRUE(q.NextBatch(1, kT0, batch));
  ASSERT_TRUE(q.NextBatch(1, kT0 + absl::Seconds(10), batch));
  EXPECT_EQ(q.NextAckDeadline(timeout), kT0 + absl::Seconds(30));

  auto none = q.MarkLate(kT0 + absl::Seconds(29), timeout);
  EXPECT_EQ(none.count, 0u);
  EXPECT_EQ(none.oldest_id, 0u);

  auto first = q.MarkLate(kT0 + absl::Seconds(30), timeout);
  EXPECT_EQ(first.count, 1u);
  EXPECT_EQ(first.oldest_id, 1u);
  EXPECT_EQ(q.NextAckDeadline(timeout), kT0 + absl::Seconds(40));

  auto second = q.MarkLate(kT0 + absl::Seconds(45), timeout);
  EXPECT_EQ(second.count, 1u);
  EXPECT_EQ(second.oldest_id, 2u);
  EXPECT_EQ(q.NextAckDeadline(timeout), std::nullopt);
  EXPECT_EQ(q.MarkLate(kT0 + absl::Seconds(100), timeout).count, 0u);

  // Acknowledging a late event, then a redelivery, starts the clock again.
  EXPECT_EQ(q.Acknowledge({1}), 1u);
  q.RequeueUnacked();
  ASSERT_TRUE(q.NextBatch(10, kT0 + absl::Seconds(200), batch));
  EXPECT_THAT(Ids(batch), ElementsAre(2));
  EXPECT_EQ(q.NextAckDeadline(timeout), kT0 + absl::Seconds(230));
}

}  // namespace
}  // namespace tracim::broker
