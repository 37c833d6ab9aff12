// PluginManager: compile-time hook detection, Subscribe and AddRoute checks,
// and typed dispatch (driven through the harness, which uses the SDK's own
// dispatch code).
#include "tracim/plugin/plugin_manager.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/testing/plugin_harness.h"

namespace tracim::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::PluginHarness;

// What the test plugins saw, in order. Tests run one at a time per process.
std::vector<std::string>& Seen() {
  static auto* seen = new std::vector<std::string>;
  return *seen;
}

class NoHooksPlugin : public Plugin {};

class UserAndContentPlugin : public Plugin {
 public:
  void OnUserCreated(const Event& event, const User& user) override {
    Seen().push_back("user created " + user.public_name());
  }
  void OnContentModified(const Event& event, const Content& content) override {
    Seen().push_back("content modified " + content.label() + " in " + event.workspace().label());
  }
};

// Overrides in an intermediate class count for the derived class too.
class WorkspaceBase : public Plugin {
 public:
  void OnWorkspaceCreated(const Event& event, const Workspace& workspace) override {
    Seen().push_back("workspace created " + workspace.label());
  }
};
class DerivedPlugin : public WorkspaceBase {
 public:
  void OnUserConfigInWorkspaceCreated(const Event& event, const Membership& member) override {
    Seen().push_back("member " + std::to_string(member.user_id()) + " " + member.role());
  }
  void OnPluginsLoaded(const Event& event, const PluginsLoaded& loaded) override {
    Seen().push_back("loaded " + std::to_string(loaded.ready_size()) +
                     " greeting=" + context().Setting("greeting", "none"));
  }
};

class AllHooksPlugin : public Plugin {
 public:
  void OnPluginsLoaded(const Event&, const PluginsLoaded&) override {}
  void OnUserCreated(const Event&, const User&) override {}
  void OnUserModified(const Event&, const User&) override {}
  void OnUserDeleted(const Event&, const User&) override {}
  void OnWorkspaceCreated(const Event&, const Workspace&) override {}
  void OnWorkspaceModified(const Event&, const Workspace&) override {}
  void OnWorkspaceDeleted(const Event&, const Workspace&) override {}
  void OnUserConfigInWorkspaceCreated(const Event&, const Membership&) override {}
  void OnUserConfigInWorkspaceModified(const Event&, const Membership&) override {}
  void OnUserConfigInWorkspaceDeleted(const Event&, const Membership&) override {}
  void OnContentCreated(const Event&, const Content&) override {}
  void OnContentModified(const Event&, const Content&) override {}
  void OnContentDeleted(const Event&, const Content&) override {}
  void OnContentRevisionCreated(const Event&, const Content&) override {}
};

std::vector<std::string> HooksOf(RegisterFunction register_fn) {
  PluginHarness harness(register_fn);
  EXPECT_TRUE(harness.status().ok()) << harness.status();
  return harness.hooks();
}

TEST(SdkPluginManagerRegister, SubscribesToNothingWhenNoHookIsOverridden) {
  EXPECT_THAT(HooksOf([](PluginManager& m) { m.Register(std::make_unique<NoHooksPlugin>()); }),
              IsEmpty());
}

TEST(SdkPluginManagerRegister, SubscribesExactlyToTheOverriddenHooks) {
  EXPECT_THAT(
      HooksOf([](PluginManager& m) { m.Register(std::make_unique<UserAndContentPlugin>()); }),
      ElementsAre("on_content_modified", "on_user_created"));
}

TEST(SdkPluginManagerRegister, CountsOverridesMadeInAnIntermediateBaseClass) {
  EXPECT_THAT(HooksOf([](PluginManager& m) { m.Register(std::make_unique<DerivedPlugin>()); }),
              ElementsAre("on_plugins_loaded", "on_user_config_in_workspace_created",
                          "on_workspace_created"));
}

TEST(SdkPluginManagerRegister, DetectsEveryTypedHook) {
  EXPECT_THAT(
      HooksOf([](PluginManager& m) { m.Register(std::make_unique<AllHooksPlugin>()); }),
      ElementsAre("on_content_created", "on_content_deleted", "on_content_modified",
                  "on_content_revision_created", "on_plugins_loaded",
                  "on_user_config_in_workspace_created", "on_user_config_in_workspace_deleted",
                  "on_user_config_in_workspace_modified", "on_user_created", "on_user_deleted",
                  "on_user_modified", "on_workspace_created", "on_workspace_deleted",
                  "on_workspace_modified"));
}

TEST(SdkPluginManagerRegister, MergesHooksOfSeveralPluginsAndSubscribeWithoutDuplicates) {
  EXPECT_THAT(HooksOf([](PluginManager& m) {
                m.Register(std::make_unique<UserAndContentPlugin>());
                m.Register(std::make_unique<UserAndContentPlugin>());
                m.Subscribe("on_reaction_created", [](const Event&) {});
                m.Subscribe("on_user_created", [](const Event&) {});
              }),
              ElementsAre("on_content_modified", "on_reaction_created", "on_user_created"));
}

TEST(SdkPluginManagerRegister, RefusesANullPlugin) {
  PluginHarness harness([](PluginManager& m) { m.Register(std::unique_ptr<NoHooksPlugin>()); });
  EXPECT_EQ(harness.status(), absl::InvalidArgumentError(
                                  "register_tracim_plugin: Register() was given a null plugin"));
}

TEST(SdkPluginManagerSubscribe, RefusesAnUnknownHookAndKeepsTheFirstError) {
  PluginHarness harness([](PluginManager& m) {
    m.Subscribe("on_user_creatd", [](const Event&) {});
    m.Subscribe("on_nothing", [](const Event&) {});
  });
  EXPECT_EQ(harness.status(),
            absl::InvalidArgumentError("register_tracim_plugin: Subscribe(): unknown hook "
                                       "'on_user_creatd'"));
}

TEST(SdkPluginManagerSubscribe, AcceptsTheWholeCatalogueBeyondTypedHooks) {
  EXPECT_THAT(HooksOf([](PluginManager& m) {
                for (const char* hook :
                     {"on_workspace_subscription_created", "on_reaction_deleted", "on_tag_modified",
                      "on_content_tag_created", "on_content_tag_deleted", "on_user_call_created",
                      "on_user_config_modified"}) {
                  m.Subscribe(hook, [](const Event&) {});
                }
              }),
              ElementsAre("on_content_tag_created", "on_content_tag_deleted", "on_reaction_deleted",
                          "on_tag_modified", "on_user_call_created", "on_user_config_modified",
                          "on_workspace_subscription_created"));
}

TEST(SdkPluginManagerAddRoute, DeclaresRoutesWithTheirOptions) {
  PluginHarness harness(
      [](PluginManager& m) {
        m.AddRoute("GET", "/plugins/x/user", [](const HttpRequest&) { return HttpResponse{}; });
        m.AddRoute(
            "POST", "/plugins/x/items/{id}", [](const HttpRequest&) { return HttpResponse{}; },
            RouteOptions{.public_route = true, .timeout = std::chrono::seconds(3)});
      },
      {.plugin_name = "x"});
  ASSERT_TRUE(harness.status().ok()) << harness.status();
  ASSERT_EQ(harness.routes().size(), 2u);
  EXPECT_EQ(harness.routes()[0].method(), "GET");
  EXPECT_EQ(harness.routes()[0].path(), "/plugins/x/user");
  EXPECT_FALSE(harness.routes()[0].public_());
  EXPECT_EQ(harness.routes()[0].timeout_ms(), 0u);
  EXPECT_EQ(harness.routes()[1].method(), "POST");
  EXPECT_EQ(harness.routes()[1].path(), "/plugins/x/items/{id}");
  EXPECT_TRUE(harness.routes()[1].public_());
  EXPECT_EQ(harness.routes()[1].timeout_ms(), 3000u);
}

TEST(SdkPluginManagerAddRoute, RefusesABadMethod) {
  PluginHarness harness(
      [](PluginManager& m) {
        m.AddRoute("get", "/plugins/x/user", [](const HttpRequest&) { return HttpResponse{}; });
      },
      {.plugin_name = "x"});
  EXPECT_EQ(harness.status(),
            absl::InvalidArgumentError(
                "register_tracim_plugin: AddRoute(\"get\", \"/plugins/x/user\"): method must be "
                "one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
}

// Route paths are checked by the contract's RoutePattern (the broker's rules
// and messages), then for the plugin's prefix.
TEST(SdkPluginManagerAddRoute, RefusesABadPathWithTheContractsMessage) {
  struct Case {
    RegisterFunction register_fn;
    const char* message;
  };
  const Case cases[] = {
      {[](PluginManager& m) {
         m.AddRoute("GET", "/plugins/y/user", [](const HttpRequest&) { return HttpResponse{}; });
       },
       "AddRoute(\"GET\", \"/plugins/y/user\"): route path '/plugins/y/user': must be under "
       "/plugins/x/"},
      {[](PluginManager& m) {
         m.AddRoute("GET", "/plugins/x/{id", [](const HttpRequest&) { return HttpResponse{}; });
       },
       "AddRoute(\"GET\", \"/plugins/x/{id\"): route path '/plugins/x/{id': malformed "
       "parameter '{id'"},
      {[](PluginManager& m) {
         m.AddRoute("GET", "/plugins/x/", [](const HttpRequest&) { return HttpResponse{}; });
       },
       "AddRoute(\"GET\", \"/plugins/x/\"): route path '/plugins/x/': empty path segment"},
  };
  for (const Case& c : cases) {
    PluginHarness harness(c.register_fn, {.plugin_name = "x"});
    EXPECT_EQ(harness.status(),
              absl::InvalidArgumentError(std::string("register_tracim_plugin: ") + c.message));
  }
}

TEST(SdkPluginManagerAddRoute, RefusesADuplicateAfterRenamingParams) {
  PluginHarness harness(
      [](PluginManager& m) {
        m.AddRoute("GET", "/plugins/x/{a}", [](const HttpRequest&) { return HttpResponse{}; });
        m.AddRoute("POST", "/plugins/x/{b}", [](const HttpRequest&) { return HttpResponse{}; });
        m.AddRoute("GET", "/plugins/x/{b}", [](const HttpRequest&) { return HttpResponse{}; });
      },
      {.plugin_name = "x"});
  EXPECT_EQ(harness.status(), absl::InvalidArgumentError(
                                  "register_tracim_plugin: AddRoute(\"GET\", \"/plugins/x/{b}\"): "
                                  "duplicates route GET /plugins/x/{a}"));
}

TEST(SdkPluginManagerAddRoute, RefusesATimeoutOverOneHour) {
  PluginHarness harness(
      [](PluginManager& m) {
        m.AddRoute(
            "GET", "/plugins/x/slow", [](const HttpRequest&) { return HttpResponse{}; },
            RouteOptions{.timeout = std::chrono::hours(1) + std::chrono::milliseconds(1)});
      },
      {.plugin_name = "x"});
  EXPECT_EQ(harness.status(), absl::InvalidArgumentError(
                                  "register_tracim_plugin: AddRoute(\"GET\", \"/plugins/x/slow\"): "
                                  "timeout must be between 0 and one hour"));
}

TEST(SdkPluginManager, KeepsVersionAndDescriptionAndName) {
  PluginHarness harness(
      [](PluginManager& m) {
        EXPECT_EQ(m.name(), "named");
        m.SetVersion("2.1.0");
        m.SetDescription("does things");
      },
      {.plugin_name = "named"});
  EXPECT_EQ(harness.version(), "2.1.0");
  EXPECT_EQ(harness.description(), "does things");
}

TEST(SdkPluginDispatch, CallsTheTypedMethodWithTheEventsEntity) {
  Seen().clear();
  PluginHarness harness([](PluginManager& m) {
    m.Register(std::make_unique<UserAndContentPlugin>());
    m.Register(std::make_unique<DerivedPlugin>());
  });
  Event user = PluginHarness::MakeEvent("on_user_created");
  user.mutable_user()->set_public_name("Ann");
  Event content = PluginHarness::MakeEvent("on_content_modified");
  content.mutable_content()->set_label("Notes");
  content.mutable_workspace()->set_label("Team");
  Event member = PluginHarness::MakeEvent("on_user_config_in_workspace_created");
  member.mutable_member()->set_user_id(4);
  member.mutable_member()->set_role("reader");
  Event workspace = PluginHarness::MakeEvent("on_workspace_created");
  workspace.mutable_workspace()->set_label("Open space");
  for (const Event& event : {user, content, member, workspace}) {
    EXPECT_TRUE(harness.Deliver(event).ok());
  }
  EXPECT_THAT(Seen(), ElementsAre("user created Ann", "content modified Notes in Team",
                                  "member 4 reader", "workspace created Open space"));
}

TEST(SdkPluginDispatch, HandlersOfOneHookRunInRegistrationOrder) {
  Seen().clear();
  PluginHarness harness([](PluginManager& m) {
    m.Subscribe("on_user_created", [](const Event&) { Seen().push_back("first"); });
    m.Register(std::make_unique<UserAndContentPlugin>());
    m.Subscribe("on_user_created", [](const Event&) { Seen().push_back("last"); });
  });
  Event event = PluginHarness::MakeEvent("on_user_created");
  event.mutable_user()->set_public_name("Ann");
  EXPECT_TRUE(harness.Deliver(event).ok());
  EXPECT_THAT(Seen(), ElementsAre("first", "user created Ann", "last"));
}

TEST(SdkPluginDispatch, PluginsReadSettingsThroughTheirContext) {
  Seen().clear();
  PluginHarness harness([](PluginManager& m) { m.Register(std::make_unique<DerivedPlugin>()); },
                        {.settings = {{"greeting", "hello"}}});
  Event event = PluginHarness::MakeEvent("on_plugins_loaded");
  event.mutable_plugins_loaded()->add_ready("test");
  EXPECT_TRUE(harness.Deliver(event).ok());
  harness.SetSettings({});
  EXPECT_TRUE(harness.Deliver(event).ok());
  EXPECT_THAT(Seen(), ElementsAre("loaded 1 greeting=hello", "loaded 1 greeting=none"));
}

}  // namespace
}  // namespace tracim::plugin
