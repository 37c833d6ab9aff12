// RunPlugin end to end: real plugin processes (sdk_test_plugin, and the
// hello_world library through sdk_test_loader) against a fake Registrar on a
// temp Unix socket, driven as the broker drives them.
#include <signal.h>

#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "sdk_cpp/tests/fake_broker.h"
#include "sdk_cpp/tests/http_exchange.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr absl::Duration kTimeout = absl::Seconds(10);
const std::string kSecret(64, 'c');

// Broker-side calls into a plugin's socket.
class PluginClient {
 public:
  explicit PluginClient(const std::string& socket)
      : channel_(grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials())),
        plugin_(v1::Plugin::NewStub(channel_)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}

  // A context with a deadline and, unless `secret` is empty, the secret.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& secret = kSecret) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + kTimeout));
    if (!secret.empty()) context->AddMetadata(v1::kSecretMetadataKey, secret);
    return context;
  }

  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service) {
    auto context = Context();
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health_->Check(context.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  // Sends `events` as one batch and reads acks until each is acknowledged,
  // then half-closes: returns the acked ids in order and the stream status.
  std::pair<std::vector<uint64_t>, grpc::Status> SendEvents(const std::vector<v1::Event>& events,
                                                            const std::string& secret = kSecret) {
    auto context = Context(secret);
    auto stream = plugin_->Events(context.get());
    v1::EventBatch batch;
    for (const v1::Event& event : events) *batch.add_events() = event;
    std::vector<uint64_t> acked;
    if (stream->Write(batch)) {
      v1::EventAck ack;
      while (acked.size() < events.size() && stream->Read(&ack)) {
        acked.insert(acked.end(), ack.event_ids().begin(), ack.event_ids().end());
      }
    }
    stream->WritesDone();
    return {acked, stream->Finish()};
  }

  tracim::plugin::testing::HttpExchange Http(const v1::HttpRequestHead& head,
                                             const std::vector<std::string>& body,
                                             const std::string& secret = kSecret) {
    auto context = Context(secret);
    return tracim::plugin::testing::ExchangeHttp(*plugin_, *context, head, body);
  }

  v1::Plugin::Stub& plugin() { return *plugin_; }

  grpc::Status Shutdown(uint32_t grace_ms, const std::string& secret = kSecret) {
    auto context = Context(secret);
    v1::ShutdownRequest request;
    request.set_reason("test");
    request.set_grace_ms(grace_ms);
    v1::ShutdownResponse response;
    return plugin_->Shutdown(context.get(), request, &response);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Plugin::Stub> plugin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

v1::Event MakeEvent(uint64_t id, const std::string& hook) {
  v1::Event event;
  event.set_event_id(id);
  event.set_hook(hook);
  return event;
}

class SdkRunPluginTest : public ::testing::Test {
 protected:
  SdkRunPluginTest() : broker_(BrokerSocket()) {
    v1::RegisterResponse answer;
    answer.set_protocol_version(1);
    answer.set_broker_version("test-broker");
    (*answer.mutable_settings())["greeting"] = "hi";
    broker_.registrar().SetAnswer(grpc::Status::OK, answer);
    WriteManifest("3.1.4");
  }

  std::string BrokerSocket() const { return dir_.path() + "/broker.sock"; }
  std::string PluginSocket() const { return dir_.path() + "/plugin.sock"; }

  void WriteManifest(const std::string& version) {
    std::ofstream(dir_.path() + "/plugin.json") << R"({"command": ["./x"], "version": ")" << version
                                                << R"(", "description": "from the manifest"})";
  }

  std::map<std::string, std::string> Env(const std::string& name,
                                         const std::string& versions = "1") {
    return {{"TRACIM_PLUGIN_NAME", name},
            {"TRACIM_PLUGIN_SECRET", kSecret},
            {"TRACIM_PLUGIN_SOCKET", PluginSocket()},
            {"TRACIM_BROKER_SOCKET", BrokerSocket()},
            {"TRACIM_PLUGIN_PROTOCOL_VERSIONS", versions},
            {"TRACIM_PLUGIN_LAUNCH", "1"}};
  }

  // Starts sdk_test_plugin and waits for its Register call.
  std::unique_ptr<ChildProcess> StartTestPlugin() {
    auto child = std::make_unique<ChildProcess>(std::vector<std::string>{TRACIM_SDK_TEST_PLUGIN},
                                                Env("test"), dir_.path());
    EXPECT_TRUE(broker_.registrar().WaitForRegister(kTimeout).has_value())
        << "stderr: " << absl::StrJoin(child->stderr_lines(), "\n");
    return child;
  }

  TempDir dir_;
  FakeBroker broker_;
};

TEST_F(SdkRunPluginTest, RegistersItsHooksRoutesAndManifestVersionWithTheSecret) {
  auto child = StartTestPlugin();
  std::optional<v1::RegisterRequest> request = broker_.registrar().WaitForRegister(kTimeout);
  ASSERT_TRUE(request.has_value());
  EXPECT_EQ(broker_.registrar().first_secret(), kSecret);
  EXPECT_EQ(request->name(), "test");
  EXPECT_EQ(request->version(), "3.1.4");
  EXPECT_EQ(request->description(), "from the manifest");
  EXPECT_EQ(request->protocol_version(), 1u);
  EXPECT_THAT(request->hooks(),
              ElementsAre("on_plugins_loaded", "on_reaction_created", "on_user_created"));
  ASSERT_EQ(request->routes_size(), 4);
  EXPECT_EQ(request->routes(0).method(), "POST");
  EXPECT_EQ(request->routes(0).path(), "/plugins/test/echo/{word}");
  EXPECT_FALSE(request->routes(0).public_());
  EXPECT_EQ(request->routes(1).path(), "/plugins/test/big");
  EXPECT_TRUE(request->routes(1).public_());
  EXPECT_EQ(request->routes(1).timeout_ms(), 2500u);
  EXPECT_EQ(request->routes(2).path(), "/plugins/test/throw");
  EXPECT_EQ(request->routes(3).method(), "POST");
  EXPECT_EQ(request->routes(3).path(), "/plugins/test/stream");

  PluginClient client(PluginSocket());
  EXPECT_EQ(client.Health(""), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(client.Health("tracim.plugin.v1.Plugin"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_TRUE(
      child->WaitForStderrLine("[INFO] registered with the broker test-broker (protocol 1, launch "
                               "1): hooks [on_plugins_loaded, "
                               "on_reaction_created, on_user_created], 4 route(s)",
                               kTimeout));
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, DeliversEventsInOrderAndAcksEachEvenWhenAHandlerThrows) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  v1::Event bob = MakeEvent(11, "on_user_created");
  bob.mutable_user()->set_public_name("Bob");
  v1::Event thrower = MakeEvent(12, "on_user_created");
  thrower.mutable_user()->set_public_name("throw");
  v1::Event ann = MakeEvent(13, "on_user_created");
  ann.mutable_user()->set_public_name("Ann");
  auto [acked, status] = client.SendEvents({MakeEvent(10, "on_plugins_loaded"), bob, thrower, ann,
                                            MakeEvent(14, "on_reaction_created")});
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(acked, ElementsAre(10, 11, 12, 13, 14));
  EXPECT_TRUE(child->WaitForStdoutLine("reaction 14", kTimeout));
  EXPECT_THAT(child->stdout_lines(), ElementsAre("plugins loaded, greeting=hi", "created user Bob",
                                                 "created user Ann", "reaction 14"));
  EXPECT_TRUE(
      child->WaitForStderrLine("[ERROR] hook on_user_created threw on event 12: boom", kTimeout));

  // A second stream (as after a broker reconnect) works the same.
  auto [acked_again, status_again] = client.SendEvents({MakeEvent(15, "on_reaction_created")});
  EXPECT_TRUE(status_again.ok());
  EXPECT_THAT(acked_again, ElementsAre(15));

  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, ServesHttpWithParamsHeadersUserAndBufferedBody) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  v1::HttpRequestHead head;
  head.set_method("POST");
  head.set_path("/plugins/test/echo/hello");
  head.set_query("a=1");
  head.set_route("/plugins/test/echo/{word}");
  (*head.mutable_path_params())["word"] = "hello";
  v1::HttpHeader* header = head.add_headers();
  header->set_name("X-Test");
  header->set_value("yes");
  head.mutable_user()->set_username("bob");
  head.set_request_id("req-1");
  auto result = client.Http(head, {"part one, ", "part two"});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_TRUE(result.head.has_value());
  EXPECT_EQ(result.head->status(), 200);
  const std::string body =
      R"({"word":"hello","route":"/plugins/test/echo/{word}","query":"a=1","x_test":"yes",)"
      R"("body":"part one, part two","user":"bob","request_id":"req-1"})";
  // The SDK declares the length of a buffered body.
  ASSERT_EQ(result.head->headers_size(), 2);
  EXPECT_EQ(result.head->headers(0).name(), "Content-Type");
  EXPECT_EQ(result.head->headers(0).value(), "application/json");
  EXPECT_EQ(result.head->headers(1).name(), "Content-Length");
  EXPECT_EQ(result.head->headers(1).value(), std::to_string(body.size()));
  EXPECT_EQ(result.body, body);
  // A body of one chunk travels with the head: one message.
  EXPECT_EQ(result.head->body(), body);
  EXPECT_EQ(result.messages, 1);
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, StreamsALargeResponseIn64KiBChunks) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  v1::HttpRequestHead head;
  head.set_method("GET");
  head.set_path("/plugins/test/big");
  head.set_query("size=200000");
  head.set_route("/plugins/test/big");
  auto result = client.Http(head, {});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_TRUE(result.head.has_value());
  EXPECT_EQ(result.head->status(), 200);
  // The first chunk with the head, then three more parts.
  EXPECT_THAT(result.chunk_sizes, ElementsAre(65536, 65536, 65536, 3392));
  EXPECT_EQ(result.head->body().size(), 65536u);
  EXPECT_EQ(result.messages, 4);
  ASSERT_EQ(result.body.size(), 200000u);
  EXPECT_EQ(result.body.substr(0, 27), "abcdefghijklmnopqrstuvwxyza");
  EXPECT_EQ(result.body[199999], static_cast<char>('a' + 199999 % 26));
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, AnswersAThrowingRouteWith500AndLogsIt) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  v1::HttpRequestHead head;
  head.set_method("GET");
  head.set_path("/plugins/test/throw");
  head.set_route("/plugins/test/throw");
  auto result = client.Http(head, {});
  ASSERT_TRUE(result.status.ok());
  ASSERT_TRUE(result.head.has_value());
  EXPECT_EQ(result.head->status(), 500);
  EXPECT_EQ(result.body, R"({"message":"route failed"})");
  EXPECT_TRUE(child->WaitForStderrLine("[ERROR] route GET /plugins/test/throw threw: route failed",
                                       kTimeout));
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, ServesAStreamingRoute) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  v1::HttpRequestHead head;
  head.set_method("POST");
  head.set_path("/plugins/test/stream");
  head.set_route("/plugins/test/stream");
  head.set_content_length(7);
  auto result = client.Http(head, {"one", "", "two", "!"});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_TRUE(result.head.has_value());
  EXPECT_EQ(result.head->status(), 200);
  EXPECT_EQ(result.body, "onetwo!");
  EXPECT_THAT(result.chunk_sizes, ElementsAre(3, 3, 1));
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

// A streaming handler waiting on a client that sends nothing: stopping
// cancels its call at half the grace period, its Read fails, it returns,
// and the plugin exits 0.
TEST_F(SdkRunPluginTest, StoppingCancelsAStreamingHandlerBlockedOnItsClient) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  auto context = PluginClient::Context();
  auto stream = client.plugin().HandleHttp(context.get());
  v1::HttpRequestPart part;
  part.mutable_head()->set_method("POST");
  part.mutable_head()->set_path("/plugins/test/stream");
  part.mutable_head()->set_route("/plugins/test/stream");
  part.mutable_head()->set_content_length(-1);
  ASSERT_TRUE(stream->Write(part));
  v1::HttpResponsePart response;
  ASSERT_TRUE(stream->Read(&response));  // the head: the handler now waits in Read
  ASSERT_TRUE(response.has_head());
  EXPECT_TRUE(client.Shutdown(1000).ok());
  EXPECT_TRUE(child->WaitForStdoutLine(
      "stream read failed: the request was cancelled: the client went away or its deadline "
      "passed",
      kTimeout));
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
  EXPECT_FALSE(stream->Read(&response));
  // Cancelled by the server's shutdown, or cut when the process exited.
  EXPECT_THAT(stream->Finish().error_code(),
              ::testing::AnyOf(grpc::StatusCode::CANCELLED, grpc::StatusCode::UNAVAILABLE));
}

TEST_F(SdkRunPluginTest, RefusesCallsWithoutTheRightSecret) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  const grpc::Status expected(grpc::StatusCode::UNAUTHENTICATED,
                              "missing or wrong tracim-plugin-secret");
  for (const std::string& secret : {std::string(), std::string(64, 'd')}) {
    grpc::Status shutdown = client.Shutdown(0, secret);
    EXPECT_EQ(shutdown.error_code(), expected.error_code());
    EXPECT_EQ(shutdown.error_message(), expected.error_message());
    auto [acked, events] = client.SendEvents({MakeEvent(1, "on_reaction_created")}, secret);
    EXPECT_THAT(acked, IsEmpty());
    EXPECT_EQ(events.error_code(), expected.error_code());
    EXPECT_EQ(events.error_message(), expected.error_message());
    v1::HttpRequestHead head;
    head.set_method("GET");
    head.set_path("/plugins/test/big");
    auto http = client.Http(head, {}, secret);
    EXPECT_EQ(http.status.error_code(), expected.error_code());
    EXPECT_EQ(http.status.error_message(), expected.error_message());
  }
  EXPECT_THAT(child->stdout_lines(), IsEmpty());
  // Still serving, and still stoppable by the broker.
  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
  EXPECT_TRUE(child->WaitForStderrLine("[INFO] stopping (test, grace 5000 ms)", kTimeout));
}

TEST_F(SdkRunPluginTest, ShutdownEndsTheOpenEventStreamWithOkAndExitsWithoutUsingTheGrace) {
  auto child = StartTestPlugin();
  PluginClient client(PluginSocket());
  // The broker keeps its Events stream open for the whole launch.
  auto context = PluginClient::Context();
  auto stream = client.plugin().Events(context.get());
  v1::EventBatch batch;
  *batch.add_events() = MakeEvent(21, "on_reaction_created");
  ASSERT_TRUE(stream->Write(batch));
  v1::EventAck ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_THAT(ack.event_ids(), ElementsAre(21));

  // A grace far longer than the test's timeout: only closing the stream
  // lets the plugin exit in time.
  EXPECT_TRUE(client.Shutdown(60000).ok());
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
}

TEST_F(SdkRunPluginTest, StopsGracefullyOnSigterm) {
  auto child = StartTestPlugin();
  ASSERT_TRUE(
      child->WaitForStderrLine("[INFO] registered with the broker test-broker (protocol 1, launch "
                               "1): hooks [on_plugins_loaded, "
                               "on_reaction_created, on_user_created], 4 route(s)",
                               kTimeout));
  ASSERT_EQ(kill(child->pid(), SIGTERM), 0);
  EXPECT_EQ(child->WaitForExit(kTimeout), 0);
  EXPECT_TRUE(child->WaitForStderrLine("[INFO] stopping (SIGTERM, grace 2000 ms)", kTimeout));
}

TEST_F(SdkRunPluginTest, ExitsWith1AndLogsTheBrokersRefusal) {
  broker_.registrar().SetAnswer(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown hook 'on_x'"), {});
  ChildProcess child({TRACIM_SDK_TEST_PLUGIN}, Env("test"), dir_.path());
  EXPECT_EQ(child.WaitForExit(kTimeout), 1);
  EXPECT_THAT(child.stderr_lines(),
              ElementsAre(absl::StrCat("[ERROR] Register on unix:", BrokerSocket(),
                                       " failed: INVALID_ARGUMENT: unknown hook 'on_x'")));
}

TEST_F(SdkRunPluginTest, ExitsWith1WhenTheBrokerSpeaksNoCommonProtocolVersion) {
  ChildProcess child({TRACIM_SDK_TEST_PLUGIN}, Env("test", "2,3"), dir_.path());
  EXPECT_EQ(child.WaitForExit(kTimeout), 1);
  EXPECT_THAT(child.stderr_lines(),
              ElementsAre("[ERROR] broker speaks protocol versions 2,3, this SDK speaks 1"));
  EXPECT_EQ(broker_.registrar().calls(), 0);
}

TEST_F(SdkRunPluginTest, StartedByHandPrintsOneLineAndExits2) {
  ChildProcess child({TRACIM_SDK_TEST_PLUGIN}, {{"PATH", "/usr/bin:/bin"}}, dir_.path());
  EXPECT_EQ(child.WaitForExit(kTimeout), 2);
  EXPECT_THAT(
      child.stderr_lines(),
      ElementsAre("[ERROR] this is a tracim plugin: it is started by tracim-plugin-broker, not by "
                  "hand (TRACIM_PLUGIN_SOCKET is not set); see docs/writing-plugins.md"));
  EXPECT_THAT(child.stdout_lines(), IsEmpty());
}

TEST_F(SdkRunPluginTest, HelloWorldSharedLibraryRunsEndToEnd) {
  WriteManifest("1.0.0");
  ChildProcess child({TRACIM_SDK_TEST_LOADER, TRACIM_HELLO_WORLD_LIBRARY}, Env("hello_world"),
                     dir_.path());
  std::optional<v1::RegisterRequest> request = broker_.registrar().WaitForRegister(kTimeout);
  ASSERT_TRUE(request.has_value()) << absl::StrJoin(child.stderr_lines(), "\n");
  EXPECT_EQ(request->name(), "hello_world");
  EXPECT_EQ(request->version(), "1.0.0");
  EXPECT_THAT(request->hooks(), ElementsAre("on_plugins_loaded", "on_user_created"));
  ASSERT_EQ(request->routes_size(), 1);
  EXPECT_EQ(request->routes(0).method(), "GET");
  EXPECT_EQ(request->routes(0).path(), "/plugins/hello_world/user");

  PluginClient client(PluginSocket());
  v1::Event created = MakeEvent(2, "on_user_created");
  created.mutable_user()->set_public_name("Bob");
  auto [acked, status] = client.SendEvents({MakeEvent(1, "on_plugins_loaded"), created});
  EXPECT_TRUE(status.ok());
  EXPECT_THAT(acked, ElementsAre(1, 2));
  EXPECT_TRUE(child.WaitForStdoutLine("created user Bob", kTimeout));
  EXPECT_THAT(child.stdout_lines(), ElementsAre("Hello World !", "created user Bob"));

  v1::HttpRequestHead head;
  head.set_method("GET");
  head.set_path("/plugins/hello_world/user");
  head.set_route("/plugins/hello_world/user");
  auto anonymous = client.Http(head, {});
  ASSERT_TRUE(anonymous.head.has_value());
  EXPECT_EQ(anonymous.head->status(), 401);
  EXPECT_EQ(anonymous.body, R"({"message":"authentication required"})");
  head.mutable_user()->set_user_id(1);
  head.mutable_user()->set_public_name("Global manager");
  head.mutable_user()->set_username("admin");
  head.mutable_user()->set_email("admin@admin.admin");
  head.mutable_user()->set_profile("administrators");
  auto user = client.Http(head, {});
  ASSERT_TRUE(user.head.has_value());
  EXPECT_EQ(user.head->status(), 200);
  EXPECT_EQ(user.body, R"({"user_id":1,"public_name":"Global manager","username":"admin",)"
                       R"("email":"admin@admin.admin","profile":"administrators"})");

  EXPECT_TRUE(client.Shutdown(5000).ok());
  EXPECT_EQ(child.WaitForExit(kTimeout), 0);
}

}  // namespace
}  // namespace tracim::plugin::testing
