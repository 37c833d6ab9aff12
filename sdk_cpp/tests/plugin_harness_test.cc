// The harness applies the SDK's dispatch rules: a throwing hook is logged
// and still acknowledged, routes are matched like the broker does, a
// throwing route gives 500.
#include "tracim/plugin/testing/plugin_harness.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using testing::PluginHarness;
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
}

TEST(SdkPluginHarness, SettingsAreVisibleThroughTheContext) {
  PluginHarness harness([](PluginManager&) {}, {.settings = {{"a", "1"}}});
  EXPECT_EQ(harness.context().Setting("a"), "1");
  EXPECT_EQ(harness.context().FindSetting("b"), std::nullopt);
  harness.SetSettings({{"b", "2"}});
  EXPECT_EQ(harness.context().Setting("a", "default"), "default");
  EXPECT_EQ(harness.plugin_manager().context().Setting("b"), "2");
}

}  // namespace
}  // namespace tracim::plugin
