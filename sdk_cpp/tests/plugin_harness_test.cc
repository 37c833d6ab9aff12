// The harness applies the SDK's dispatch rules: a throwing hook is logged
// and still acknowledged, routes are matched like the broker does, a
// throwing route gives 500.
#include "tracim/plugin/testing/plugin_harness.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using testing::PluginHarness;
using testing::StreamedResponse;
using ::testing::UnorderedElementsAre;

std::vector<std::string>& Seen() {
  static auto* seen = new std::vector<std::string>;
  return *seen;
}

class ThrowingPlugin : public Plugin {
 public:
  void OnUserCreated(const Event& event, const User& user) override {
    if (user.public_name() == "bad") throw std::runtime_error("boom");
    Seen().push_back("plugin " + user.public_name());
  }
};

void RegisterThrowing(PluginManager& m) {
  m.Register(std::make_unique<ThrowingPlugin>());
  m.Subscribe("on_user_created", [](const Event& e) { Seen().push_back("after"); });
  m.Subscribe("on_reaction_created", [](const Event&) { throw 42; });
}

TEST(SdkPluginHarness, AThrowingHookIsLoggedOnceAndItsEventStillAcknowledged) {
  Seen().clear();
  PluginHarness harness(&RegisterThrowing, {.echo_log = false});
  Event event = PluginHarness::MakeEvent("on_user_created");
  event.set_event_id(42);
  event.mutable_user()->set_public_name("bad");
  EXPECT_EQ(harness.Deliver(event),
            absl::InternalError("hook on_user_created threw on event 42: boom"));
  EXPECT_THAT(harness.log_lines(), ElementsAre("hook on_user_created threw on event 42: boom"));
  EXPECT_THAT(harness.acked_event_ids(), ElementsAre(42u));
  // The other handler of the hook still ran.
  EXPECT_THAT(Seen(), ElementsAre("after"));
}

TEST(SdkPluginHarness, ANonStandardExceptionIsReportedAsUnknown) {
  PluginHarness harness(&RegisterThrowing, {.echo_log = false});
  Event event = PluginHarness::MakeEvent("on_reaction_created");
  event.set_event_id(7);
  EXPECT_EQ(harness.Deliver(event),
            absl::InternalError("hook on_reaction_created threw on event 7: unknown exception"));
  EXPECT_THAT(harness.acked_event_ids(), ElementsAre(7u));
}

TEST(SdkPluginHarness, DeliveryContinuesAfterAFailure) {
  Seen().clear();
  PluginHarness harness(&RegisterThrowing, {.echo_log = false});
  Event bad = PluginHarness::MakeEvent("on_user_created");
  bad.mutable_user()->set_public_name("bad");
  Event good = PluginHarness::MakeEvent("on_user_created");
  good.mutable_user()->set_public_name("good");
  EXPECT_FALSE(harness.Deliver(bad).ok());
  EXPECT_TRUE(harness.Deliver(good).ok());
  EXPECT_THAT(Seen(), ElementsAre("after", "plugin good", "after"));
  EXPECT_THAT(harness.acked_event_ids(), ElementsAre(bad.event_id(), good.event_id()));
}

TEST(SdkPluginHarness, RefusesToDeliverAHookThePluginDidNotSubscribeTo) {
  PluginHarness harness(&RegisterThrowing);
  EXPECT_EQ(harness.Deliver(PluginHarness::MakeEvent("on_user_deleted")),
            absl::FailedPreconditionError("the plugin does not subscribe to 'on_user_deleted'"));
  EXPECT_THAT(harness.acked_event_ids(), ElementsAre());
}

TEST(SdkPluginHarness, MakeEventFillsHookEventTypeAndAFreshId) {
  Event a = PluginHarness::MakeEvent("on_user_config_in_workspace_deleted");
  Event b = PluginHarness::MakeEvent("on_plugins_loaded");
  EXPECT_EQ(a.hook(), "on_user_config_in_workspace_deleted");
  EXPECT_EQ(a.event_type(), "workspace_member.deleted");
  EXPECT_EQ(b.event_type(), "plugins.loaded");
  EXPECT_NE(a.event_id(), 0u);
  EXPECT_GT(b.event_id(), a.event_id());
}

TEST(SdkPluginHarness, AThrowingRegisterFunctionGivesAnInternalStatus) {
  PluginHarness harness([](PluginManager&) { throw std::logic_error("no config"); });
  EXPECT_EQ(harness.status(), absl::InternalError("register_tracim_plugin threw: no config"));
}

void RegisterRoutes(PluginManager& m) {
  m.AddRoute("GET", "/plugins/r/items/{id}", [](const HttpRequest& request) {
    return HttpResponse::Text(200, "item " + request.path_params.at("id") + " via " +
                                       request.route +
                                       " q=" + request.QueryParam("q").value_or("-"));
  });
  m.AddRoute("GET", "/plugins/r/items/new",
             [](const HttpRequest&) { return HttpResponse::Text(200, "new form"); });
  m.AddRoute("POST", "/plugins/r/items/{id}/{field}", [](const HttpRequest& request) {
    HttpResponse response = HttpResponse::Text(201, request.body);
    response.headers.emplace_back(
        "X-Params", request.path_params.at("id") + "," + request.path_params.at("field"));
    return response;
  });
  m.AddRoute("GET", "/plugins/r/throw",
             [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("db is down"); });
  m.AddRoute("GET", "/plugins/r/weird", [](const HttpRequest&) {
    HttpResponse response;
    response.status = 42;
    return response;
  });
  m.AddRoute("GET", "/plugins/r/informational", [](const HttpRequest&) {
    HttpResponse response;
    response.status = 103;  // not a final response: the broker would not relay it
    return response;
  });
}

TEST(SdkPluginHarness, CallMatchesParamRoutesAndFillsPathParams) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r"});
  ASSERT_TRUE(harness.status().ok()) << harness.status();
  HttpResponse response =
      harness.Call({.method = "GET", .path = "/plugins/r/items/12", .query = "q=a+b"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "item 12 via /plugins/r/items/{id} q=a b");

  response =
      harness.Call({.method = "POST", .path = "/plugins/r/items/12/label", .body = "payload"});
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, "payload");
  EXPECT_THAT(response.headers,
              UnorderedElementsAre(Pair("Content-Type", "text/plain; charset=utf-8"),
                                   Pair("X-Params", "12,label")));
}

TEST(SdkPluginHarness, CallTakesParamsOfTheAlreadyDecodedPathAsTheyAre) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r"});
  HttpResponse response = harness.Call({.method = "GET", .path = "/plugins/r/items/100%"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "item 100% via /plugins/r/items/{id} q=-");
  EXPECT_EQ(harness.Call({.method = "GET", .path = "/plugins/r/items/a%41"}).body,
            "item a%41 via /plugins/r/items/{id} q=-");
}

TEST(SdkPluginHarness, CallPrefersALiteralSegmentOverAParam) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r"});
  EXPECT_EQ(harness.Call({.method = "GET", .path = "/plugins/r/items/new"}).body, "new form");
}

TEST(SdkPluginHarness, CallAnswers404And405AsJson) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r"});
  HttpResponse missing = harness.Call({.method = "GET", .path = "/plugins/r/nothing"});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"message":"no route for /plugins/r/nothing"})");
  HttpResponse wrong_method = harness.Call({.method = "DELETE", .path = "/plugins/r/items/3"});
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.body, R"({"message":"method DELETE not allowed on /plugins/r/items/3"})");
}

TEST(SdkPluginHarness, AThrowingRouteGives500WithTheMessageAndLogsIt) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r", .echo_log = false});
  HttpResponse response = harness.Call({.method = "GET", .path = "/plugins/r/throw"});
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"message":"db is down"})");
  EXPECT_THAT(harness.log_lines(), ElementsAre("route GET /plugins/r/throw threw: db is down"));
}

TEST(SdkPluginHarness, AnInvalidStatusGives500) {
  PluginHarness harness(&RegisterRoutes, {.plugin_name = "r", .echo_log = false});
  HttpResponse response = harness.Call({.method = "GET", .path = "/plugins/r/weird"});
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"message":"route handler returned the invalid HTTP status 42"})");
  response = harness.Call({.method = "GET", .path = "/plugins/r/informational"});
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"message":"route handler returned the invalid HTTP status 103"})");
}

TEST(SdkPluginHarness, SettingsAreVisibleThroughTheContext) {
  PluginHarness harness([](PluginManager&) {}, {.settings = {{"a", "1"}}});
  EXPECT_EQ(harness.context().Setting("a"), "1");
  EXPECT_EQ(harness.context().FindSetting("b"), std::nullopt);
  harness.SetSettings({{"b", "2"}});
  EXPECT_EQ(harness.context().Setting("a", "default"), "default");
  EXPECT_EQ(harness.plugin_manager().context().Setting("b"), "2");
}

// Streaming routes through the harness: the same HttpStream rules as over
// gRPC, in memory and on the calling thread.

// What the handlers of RegisterStreaming saw, per test.
std::vector<std::string>& StreamEvents() {
  static auto* events = new std::vector<std::string>;
  return *events;
}

std::string Describe(const absl::Status& status) {
  return status.ok() ? "OK"
                     : std::string(absl::StatusCodeToString(status.code())) + ": " +
                           std::string(status.message());
}

void RegisterStreaming(PluginManager& m) {
  // Echoes each chunk back, prefixed with its size.
  m.AddStreamingRoute(
      "POST", "/plugins/st/echo/{tag}", [](const HttpRequestHead& request, HttpStream& stream) {
        absl::Status status = stream.WriteHead(
            200, {{"X-Tag", request.path_params.at("tag")},
                  {"X-Length", std::to_string(request.content_length.value_or(0))}});
        while (status.ok()) {
          absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
          if (!chunk.ok()) {
            status = chunk.status();
            break;
          }
          if (!*chunk) break;
          status = stream.Write(std::to_string((*chunk)->size()) + ":" + **chunk + ";");
        }
        StreamEvents().push_back("echo " + Describe(status));
      });
  m.AddStreamingRoute("GET", "/plugins/st/download",
                      [](const HttpRequestHead&, HttpStream& stream) {
                        absl::Status status = stream.WriteHead(200);
                        for (int i = 0; i < 3 && status.ok(); ++i) {
                          status = stream.Write(std::string(100000, static_cast<char>('a' + i)));
                        }
                        StreamEvents().push_back("download " + Describe(status));
                      });
  m.AddStreamingRoute("GET", "/plugins/st/misuse", [](const HttpRequestHead&, HttpStream& stream) {
    StreamEvents().push_back("write first: " + Describe(stream.Write("x")));
    StreamEvents().push_back("status 42: " + Describe(stream.WriteHead(42)));
    StreamEvents().push_back("status 101: " + Describe(stream.WriteHead(101)));
    StreamEvents().push_back("head: " + Describe(stream.WriteHead(204)));
    StreamEvents().push_back("head again: " + Describe(stream.WriteHead(200)));
    StreamEvents().push_back("empty write: " + Describe(stream.Write("")));
  });
  m.AddStreamingRoute("GET", "/plugins/st/late", [](const HttpRequestHead&, HttpStream& stream) {
    if (stream.WriteHead(200).ok() && stream.Write("partial").ok())
      throw std::runtime_error("boom");
  });
  m.AddStreamingRoute("GET", "/plugins/st/early", [](const HttpRequestHead&, HttpStream&) {
    throw std::runtime_error("no disk");
  });
  m.AddRoute("POST", "/plugins/st/buffered", [](const HttpRequest& request) {
    return HttpResponse::Text(200, request.body + request.body);
  });
}

TEST(SdkPluginHarnessStreaming, StreamFeedsTheBodyInChunksAndCollectsEachPart) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  ASSERT_TRUE(harness.status().ok()) << harness.status();
  StreamedResponse streamed =
      harness.Stream({.method = "POST", .path = "/plugins/st/echo/t1", .body = "abcdefgh"},
                     {.read_chunk_bytes = 3});
  EXPECT_TRUE(streamed.status.ok()) << streamed.status;
  EXPECT_TRUE(streamed.head_sent);
  EXPECT_EQ(streamed.response.status, 200);
  EXPECT_THAT(streamed.response.headers, ElementsAre(Pair("X-Tag", "t1"), Pair("X-Length", "8")));
  EXPECT_EQ(streamed.response.body, "3:abc;3:def;2:gh;");
  EXPECT_THAT(streamed.part_sizes, ElementsAre(6u, 6u, 5u));
  EXPECT_EQ(streamed.chunks_read, 3u);
  EXPECT_THAT(StreamEvents(), ElementsAre("echo OK"));
}

TEST(SdkPluginHarnessStreaming, CallServesAStreamingRouteWithTheBodyInOneChunk) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  HttpResponse response =
      harness.Call({.method = "POST", .path = "/plugins/st/echo/t2", .body = "hello"});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "5:hello;");
}

TEST(SdkPluginHarnessStreaming, LargeWritesAreCutIn64KiBParts) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  StreamedResponse streamed = harness.Stream({.method = "GET", .path = "/plugins/st/download"});
  EXPECT_TRUE(streamed.status.ok()) << streamed.status;
  EXPECT_THAT(streamed.part_sizes, ElementsAre(65536u, 34464u, 65536u, 34464u, 65536u, 34464u));
  EXPECT_EQ(streamed.response.body.size(), 300000u);
  EXPECT_EQ(streamed.response.body.substr(99999, 2), "ab");
}

TEST(SdkPluginHarnessStreaming, AClientGoingAwayFailsTheWritesWithCancelled) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st", .echo_log = false});
  StreamedResponse streamed = harness.Stream({.method = "GET", .path = "/plugins/st/download"},
                                             {.cancel_after_parts_sent = 3});
  const std::string cancelled =
      "CANCELLED: the request was cancelled: the client went away or its deadline passed";
  EXPECT_EQ(Describe(streamed.status), cancelled);
  EXPECT_THAT(streamed.part_sizes, ElementsAre(65536u, 34464u));
  EXPECT_THAT(StreamEvents(), ElementsAre("download " + cancelled));
  EXPECT_THAT(harness.log_lines(), ElementsAre());
}

TEST(SdkPluginHarnessStreaming, AClientGoingAwayMidUploadFailsTheRead) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  StreamedResponse streamed =
      harness.Stream({.method = "POST", .path = "/plugins/st/echo/t3", .body = "abcdef"},
                     {.read_chunk_bytes = 2, .cancel_after_chunks_read = 1});
  EXPECT_EQ(streamed.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(streamed.chunks_read, 1u);
  EXPECT_EQ(streamed.response.body, "2:ab;");
  EXPECT_THAT(StreamEvents(),
              ElementsAre("echo CANCELLED: the request was cancelled: the client went away or "
                          "its deadline passed"));
}

TEST(SdkPluginHarnessStreaming, MisuseIsRefusedWithoutSendingAnything) {
  StreamEvents().clear();
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  StreamedResponse streamed = harness.Stream({.method = "GET", .path = "/plugins/st/misuse"});
  EXPECT_TRUE(streamed.status.ok()) << streamed.status;
  EXPECT_EQ(streamed.response.status, 204);
  EXPECT_THAT(streamed.part_sizes, ElementsAre());
  EXPECT_THAT(StreamEvents(),
              ElementsAre("write first: FAILED_PRECONDITION: Write: the response head is not "
                          "written yet (call WriteHead first)",
                          "status 42: INVALID_ARGUMENT: WriteHead: invalid HTTP status 42 (must "
                          "be 200-599)",
                          "status 101: INVALID_ARGUMENT: WriteHead: invalid HTTP status 101 "
                          "(must be 200-599)",
                          "head: OK",
                          "head again: FAILED_PRECONDITION: WriteHead: the response head was "
                          "already written",
                          "empty write: OK"));
}

TEST(SdkPluginHarnessStreaming, AnExceptionAfterTheHeadCutsTheResponseWithInternal) {
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st", .echo_log = false});
  StreamedResponse streamed = harness.Stream({.method = "GET", .path = "/plugins/st/late"});
  EXPECT_EQ(streamed.status,
            absl::InternalError("route GET /plugins/st/late threw after the response head: boom"));
  EXPECT_EQ(streamed.response.status, 200);
  EXPECT_EQ(streamed.response.body, "partial");
  EXPECT_THAT(harness.log_lines(),
              ElementsAre("route GET /plugins/st/late threw after the response head: boom"));
}

TEST(SdkPluginHarnessStreaming, AnExceptionBeforeTheHeadIsA500) {
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st", .echo_log = false});
  StreamedResponse streamed = harness.Stream({.method = "GET", .path = "/plugins/st/early"});
  EXPECT_TRUE(streamed.status.ok()) << streamed.status;
  EXPECT_EQ(streamed.response.status, 500);
  EXPECT_EQ(streamed.response.body, R"({"message":"no disk"})");
  EXPECT_THAT(harness.log_lines(), ElementsAre("route GET /plugins/st/early threw: no disk"));
}

TEST(SdkPluginHarnessStreaming, StreamServesBufferedRoutesToo) {
  PluginHarness harness(&RegisterStreaming, {.plugin_name = "st"});
  StreamedResponse streamed = harness.Stream(
      {.method = "POST", .path = "/plugins/st/buffered", .body = "xy"}, {.read_chunk_bytes = 1});
  EXPECT_TRUE(streamed.status.ok()) << streamed.status;
  EXPECT_EQ(streamed.response.body, "xyxy");
  EXPECT_EQ(streamed.chunks_read, 2u);
  EXPECT_THAT(streamed.part_sizes, ElementsAre(4u));
}

TEST(SdkPluginHarnessStreaming, StreamingRoutesAreDeclaredAndShareTheDuplicateCheck) {
  PluginHarness harness(
      [](PluginManager& m) {
        m.AddStreamingRoute(
            "GET", "/plugins/d/files/{id}", [](const HttpRequestHead&, HttpStream&) {},
            RouteOptions{.public_route = true});
        m.AddRoute("GET", "/plugins/d/files/{name}",
                   [](const HttpRequest&) { return HttpResponse{}; });
      },
      {.plugin_name = "d"});
  EXPECT_EQ(harness.status(),
            absl::InvalidArgumentError(
                "register_tracim_plugin: AddRoute(\"GET\", \"/plugins/d/files/{name}\"): "
                "duplicates route GET /plugins/d/files/{id}"));
  ASSERT_EQ(harness.routes().size(), 1u);
  EXPECT_EQ(harness.routes()[0].path(), "/plugins/d/files/{id}");
  EXPECT_TRUE(harness.routes()[0].public_());

  PluginHarness empty([](PluginManager& m) { m.AddStreamingRoute("GET", "/plugins/d/x", nullptr); },
                      {.plugin_name = "d"});
  EXPECT_EQ(empty.status(),
            absl::InvalidArgumentError("register_tracim_plugin: AddStreamingRoute(\"GET\", "
                                       "\"/plugins/d/x\"): empty handler"));
}

}  // namespace
}  // namespace tracim::plugin
