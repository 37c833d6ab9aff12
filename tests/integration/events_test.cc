// Events published by an external backend through Backend.Publish and
// delivered to the plugins that subscribed, over real sockets to real plugin
// processes.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

namespace v1 = tracim::plugin::v1;
using ::testing::HasSubstr;

constexpr milliseconds kTimeout(15000);
constexpr char kToken[] = "test-backend-token-0123456789";

v1::Event UserCreated(const std::string& public_name) {
  v1::Event e;
  e.set_hook("on_user_created");
  e.mutable_user()->set_public_name(public_name);
  return e;
}

v1::Event WorkspaceCreated() {
  v1::Event e;
  e.set_event_type("workspace.created");
  return e;
}

class Events : public ::testing::Test {
 protected:
  void StartWith(const std::vector<std::pair<std::string, std::string>>& plugins,
                 const std::string& config = "") {
    for (const auto& [name, mode] : plugins) broker_.AddTestPlugin(name, mode);
    broker_.AddConfig(std::string("broker.backend_token = ") + kToken);
    if (!config.empty()) broker_.AddConfig(config);
    broker_.Start();
    for (const auto& [name, mode] : plugins) {
      ASSERT_TRUE(broker_.WaitForState(name, "ready", kTimeout)) << broker_.Output();
      ASSERT_TRUE(broker_.WaitForLine("test_plugin " + name + " got on_plugins_loaded", kTimeout));
    }
  }

  BrokerFixture broker_;
};

TEST_F(Events, SubscribedHooksArriveInPublicationOrderAndAreAcknowledged) {
  StartWith({{"alpha", "normal"}});
  std::vector<uint64_t> ids;
  grpc::Status status = broker_.Publish(
      {UserCreated("Ann"), WorkspaceCreated(), UserCreated("Bob"), UserCreated("Cy")}, kToken,
      &ids);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[2], ids[3]);
  // alpha subscribed to on_plugins_loaded and on_user_created only.
  const std::string last = "test_plugin alpha got on_user_created " + std::to_string(ids[3]);
  ASSERT_TRUE(broker_.WaitForLine(last, kTimeout)) << broker_.Output();
  std::string output = broker_.Output();
  size_t a = output.find("got on_user_created " + std::to_string(ids[0]));
  size_t b = output.find("got on_user_created " + std::to_string(ids[2]));
  size_t c = output.find("got on_user_created " + std::to_string(ids[3]));
  ASSERT_NE(a, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_THAT(output, ::testing::Not(HasSubstr("got on_workspace_created")));
  EXPECT_EQ(broker_.CountLines("test_plugin alpha got on_user_created"), 3);

  // Acknowledgements reach the broker: 3 events + on_plugins_loaded.
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  std::optional<v1::PluginStatus> alpha;
  while (std::chrono::steady_clock::now() < deadline) {
    alpha = broker_.PluginStatus("alpha");
    if (alpha && alpha->events_acknowledged() == 4) break;
    broker_.WaitForLine("<never printed>", milliseconds(20));
  }
  ASSERT_TRUE(alpha.has_value());
  EXPECT_EQ(alpha->events_acknowledged(), 4u);
  EXPECT_EQ(alpha->events_queued(), 0u);
  EXPECT_EQ(alpha->events_dropped(), 0u);
}

TEST_F(Events, HelloWorldNamesEachCreatedUser) {
  broker_.CopyPlugin(ExamplePluginsDir() / "tracim_backend_hello_world");
  broker_.AddConfig(std::string("broker.backend_token = ") + kToken);
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForLine("Hello World !", kTimeout)) << broker_.Output();
  ASSERT_TRUE(broker_.Publish({UserCreated("Ann Smith"), UserCreated("Bob")}, kToken).ok());
  EXPECT_TRUE(broker_.WaitForLine("] created user Bob", kTimeout)) << broker_.Output();
  EXPECT_EQ(broker_.CountLines("] created user Ann Smith"), 1);
}

TEST_F(Events, PublishIsRefusedWithoutTheTokenAndPublishesNothingFromABadBatch) {
  StartWith({{"alpha", "normal"}});
  grpc::Status none = broker_.Publish({UserCreated("Ann")}, "");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(none.error_message(), "missing tracim-backend-token metadata");
  grpc::Status wrong = broker_.Publish({UserCreated("Ann")}, "wrong-token-0123456789");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "wrong tracim-backend-token metadata");

  v1::Event unknown;
  unknown.set_hook("on_user_create");
  grpc::Status bad = broker_.Publish({UserCreated("Ann"), unknown}, kToken);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "event 1: unknown hook 'on_user_create'");

  v1::Event mismatch;
  mismatch.set_hook("on_user_created");
  mismatch.set_event_type("workspace.created");
  bad = broker_.Publish({mismatch}, kToken);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(),
            "event 0: event_type 'workspace.created' does not match hook 'on_user_created' "
            "(expected on_workspace_created)");

  v1::Event loaded;
  loaded.set_hook("on_plugins_loaded");
  bad = broker_.Publish({loaded}, kToken);
  EXPECT_EQ(bad.error_message(), "event 0: on_plugins_loaded is sent by the broker, not published");

  // A good event afterwards is the first on_user_created alpha ever sees.
  std::vector<uint64_t> ids;
  ASSERT_TRUE(broker_.Publish({UserCreated("Zed")}, kToken, &ids).ok());
  ASSERT_TRUE(broker_.WaitForLine("got on_user_created " + std::to_string(ids[0]), kTimeout));
  EXPECT_EQ(broker_.CountLines("test_plugin alpha got on_user_created"), 1);
}

TEST_F(Events, BackendServiceIsDisabledWithoutAToken) {
  broker_.AddTestPlugin("alpha", "normal");
  broker_.Start();
  ASSERT_TRUE(broker_.WaitForState("alpha", "ready", kTimeout));
  grpc::Status status = broker_.Publish({UserCreated("Ann")}, kToken);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "the Backend service is disabled: set broker.backend_token");
}

// The acknowledgement timeout is long here: killing and restarting a plugin
// that stops acknowledging is covered by supervision_test.cc.
TEST_F(Events, APluginThatStopsAcknowledgingDoesNotDelayAnotherAndIsAccountedFor) {
  StartWith({{"good", "normal"}, {"stuck", "no-ack"}},
            "broker.event_queue_size = 5\nbroker.event_ack_timeout_ms = 600000");
  // One event at a time, each handled by good before the next: good never
  // has more than one outstanding, stuck accumulates.
  for (int i = 0; i < 20; ++i) {
    std::vector<uint64_t> ids;
    ASSERT_TRUE(broker_.Publish({UserCreated("user" + std::to_string(i))}, kToken, &ids).ok());
    ASSERT_TRUE(broker_.WaitForLine(
        "test_plugin good got on_user_created " + std::to_string(ids[0]), kTimeout))
        << broker_.Output();
  }
  // good got all 20 although stuck never acknowledges anything.
  EXPECT_EQ(broker_.CountLines("test_plugin good got on_user_created"), 20);
  // stuck holds on_plugins_loaded + 4 events unacknowledged (capacity 5):
  // the other 16 are dropped, logged and counted.
  ASSERT_TRUE(broker_.WaitForLine("plugin 'stuck': event queue full (5 events)", kTimeout));
  auto stuck = broker_.PluginStatus("stuck");
  ASSERT_TRUE(stuck.has_value());
  EXPECT_EQ(stuck->events_dropped(), 16u);
  EXPECT_EQ(stuck->events_queued(), 5u);
  EXPECT_EQ(stuck->events_acknowledged(), 0u);
  EXPECT_EQ(broker_.CountLines("test_plugin stuck got on_user_created"), 4);
  auto good = broker_.PluginStatus("good");
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(good->events_dropped(), 0u);
}

TEST_F(Events, PublishBeyondOneQueueOfEventsInTransitAnswersOnceThePluginsQueuedThem) {
  // Back-pressure: a Backend.Publish that would put more than
  // broker.event_queue_size events on their way to the plugins returns only
  // after the plugins' strands took them, so a publisher can never run far
  // ahead of them. Right after it returns, the stuck plugin's counters
  // already account for every event.
  StartWith({{"stuck", "no-ack"}},
            "broker.event_queue_size = 5\nbroker.event_ack_timeout_ms = 600000");
  std::vector<v1::Event> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(UserCreated("user" + std::to_string(i)));
  std::vector<uint64_t> ids;
  ASSERT_TRUE(broker_.Publish(batch, kToken, &ids).ok());
  ASSERT_EQ(ids.size(), 50u);
  auto stuck = broker_.PluginStatus("stuck");
  ASSERT_TRUE(stuck.has_value());
  // on_plugins_loaded + 4 events fill the queue (5); 46 are dropped.
  EXPECT_EQ(stuck->events_queued(), 5u);
  EXPECT_EQ(stuck->events_dropped(), 46u);
  batch.resize(6);
  ASSERT_TRUE(broker_.Publish(batch, kToken, &ids).ok());
  stuck = broker_.PluginStatus("stuck");
  ASSERT_TRUE(stuck.has_value());
  EXPECT_EQ(stuck->events_dropped(), 52u);
}

}  // namespace
}  // namespace tracim::testing
