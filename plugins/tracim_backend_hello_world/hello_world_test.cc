// hello_world through the SDK's in-process harness: hooks, output, route.
#include <iostream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/testing/plugin_harness.h"

namespace {

using ::testing::ElementsAre;
using tracim::plugin::Event;
using tracim::plugin::HttpRequest;
using tracim::plugin::HttpResponse;
using tracim::plugin::testing::PluginHarness;

// Captures std::cout for the scope of one test.
class CoutCapture {
 public:
  CoutCapture() : previous_(std::cout.rdbuf(buffer_.rdbuf())) {}
  ~CoutCapture() { std::cout.rdbuf(previous_); }
  std::string str() const { return buffer_.str(); }

 private:
  std::ostringstream buffer_;
  std::streambuf* previous_;
};

TEST(HelloWorldPlugin, SubscribesToPluginsLoadedAndUserCreatedAndServesOneRoute) {
  PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
  ASSERT_TRUE(harness.status().ok()) << harness.status();
  EXPECT_THAT(harness.hooks(), ElementsAre("on_plugins_loaded", "on_user_created"));
  ASSERT_EQ(harness.routes().size(), 1u);
  EXPECT_EQ(harness.routes()[0].method(), "GET");
  EXPECT_EQ(harness.routes()[0].path(), "/plugins/hello_world/user");
  EXPECT_FALSE(harness.routes()[0].public_());
}

TEST(HelloWorldPlugin, SaysHelloWorldWhenPluginsAreLoaded) {
  PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
  CoutCapture out;
  EXPECT_TRUE(harness.Deliver(PluginHarness::MakeEvent("on_plugins_loaded")).ok());
  EXPECT_EQ(out.str(), "Hello World !\n");
}

TEST(HelloWorldPlugin, PrintsThePublicNameOfACreatedUser) {
  PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
  Event event = PluginHarness::MakeEvent("on_user_created");
  event.mutable_user()->set_public_name("Bob Marley");
  CoutCapture out;
  EXPECT_TRUE(harness.Deliver(event).ok());
  EXPECT_EQ(out.str(), "created user Bob Marley\n");
  EXPECT_THAT(harness.acked_event_ids(), ElementsAre(event.event_id()));
}

TEST(HelloWorldPlugin, UserRouteReturnsTheCallerAsJson) {
  PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
  HttpRequest request{.method = "GET", .path = "/plugins/hello_world/user"};
  request.user.emplace();
  request.user->set_user_id(7);
  request.user->set_public_name("Bob");
  request.user->set_username("bob");
  request.user->set_email("bob@example.org");
  request.user->set_profile("users");
  HttpResponse response = harness.Call(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body,
            R"({"user_id":7,"public_name":"Bob","username":"bob","email":"bob@example.org",)"
            R"("profile":"users"})");
  EXPECT_THAT(response.headers,
              ElementsAre(std::pair<std::string, std::string>("Content-Type", "application/json")));
}

TEST(HelloWorldPlugin, UserRouteAnswers401WithoutAUser) {
  PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
  HttpResponse response =
      harness.Call(HttpRequest{.method = "GET", .path = "/plugins/hello_world/user"});
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.body, R"({"message":"authentication required"})");
}

}  // namespace
