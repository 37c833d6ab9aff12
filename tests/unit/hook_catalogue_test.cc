// Tests for the hook catalogue shared by the broker and the C++ SDK: which hook names are known,
// the event type of each hook, and the reverse mapping in which only content events carry a subtype
// ("content.created.file").
#include "tracim/plugin/v1/hook_catalogue.h"

#include <optional>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::plugin::v1 {
namespace {

using ::testing::Contains;
using ::testing::Optional;

TEST(HookCatalogue, ListsOnPluginsLoadedFirst) {
  ASSERT_FALSE(AllHooks().empty());
  EXPECT_EQ(AllHooks().front(), kOnPluginsLoaded);
  EXPECT_EQ(std::string(kOnPluginsLoaded), "on_plugins_loaded");
  EXPECT_EQ(std::string(kPluginsLoadedEventType), "plugins.loaded");
}

TEST(HookCatalogue, ListsEachHookOnceAndEveryNameStartsWithOn) {
  std::set<std::string> seen;
  for (const std::string& hook : AllHooks()) {
    EXPECT_TRUE(absl::StartsWith(hook, "on_")) << hook;
    EXPECT_TRUE(seen.insert(hook).second) << hook << " is listed twice";
  }
}

TEST(HookCatalogue, OffersTracimsCrudHooks) {
  for (const char* hook :
       {"on_user_created", "on_user_modified", "on_user_deleted", "on_workspace_created",
        "on_workspace_modified", "on_workspace_deleted", "on_user_config_in_workspace_created",
        "on_user_config_in_workspace_modified", "on_user_config_in_workspace_deleted",
        "on_content_created", "on_content_modified", "on_content_deleted"}) {
    EXPECT_THAT(AllHooks(), Contains(hook));
    EXPECT_TRUE(IsKnownHook(hook)) << hook;
  }
}

TEST(HookCatalogue, EveryListedHookIsKnown) {
  for (const std::string& hook : AllHooks()) EXPECT_TRUE(IsKnownHook(hook)) << hook;
}

TEST(HookCatalogue, DoesNotKnowUnlistedOrMisspelledNames) {
  for (const char* hook : {"", "on_", "on_user", "ON_USER_CREATED", "on_user_created ",
                           " on_user_created", "user.created", "on_bogus"}) {
    EXPECT_FALSE(IsKnownHook(hook)) << "'" << hook << "'";
  }
}

TEST(HookCatalogue, DoesNotOfferInProcessOnlyHooks) {
  for (const char* hook : {"add_new_hooks", "web_include", "on_context_session_created"}) {
    EXPECT_FALSE(IsKnownHook(hook)) << hook;
  }
}

TEST(EventTypeForHook, GivesTheDocumentedEventTypes) {
  EXPECT_THAT(EventTypeForHook("on_user_created"), Optional(std::string("user.created")));
  EXPECT_THAT(EventTypeForHook("on_user_config_in_workspace_deleted"),
              Optional(std::string("workspace_member.deleted")));
  EXPECT_THAT(EventTypeForHook("on_content_created"), Optional(std::string("content.created")));
  EXPECT_THAT(EventTypeForHook("on_workspace_modified"),
              Optional(std::string("workspace.modified")));
  EXPECT_THAT(EventTypeForHook(kOnPluginsLoaded), Optional(std::string(kPluginsLoadedEventType)));
}

TEST(EventTypeForHook, IsNulloptForAnUnknownHook) {
  EXPECT_EQ(EventTypeForHook("on_bogus"), std::nullopt);
  EXPECT_EQ(EventTypeForHook(""), std::nullopt);
}

TEST(HookForEventType, MapsAnExactEventType) {
  EXPECT_THAT(HookForEventType("user.created"), Optional(std::string("on_user_created")));
  EXPECT_THAT(HookForEventType("workspace_member.deleted"),
              Optional(std::string("on_user_config_in_workspace_deleted")));
  EXPECT_THAT(HookForEventType("content.created"), Optional(std::string("on_content_created")));
  EXPECT_THAT(HookForEventType(kPluginsLoadedEventType), Optional(std::string(kOnPluginsLoaded)));
}

TEST(HookForEventType, MapsAContentEventWithASubtype) {
  EXPECT_THAT(HookForEventType("content.created.file"),
              Optional(std::string("on_content_created")));
  EXPECT_THAT(HookForEventType("content.modified.file"),
              Optional(std::string("on_content_modified")));
  EXPECT_THAT(HookForEventType("content.deleted.html-document"),
              Optional(std::string("on_content_deleted")));
}

TEST(HookForEventType, RefusesASubtypeOnANonContentEvent) {
  EXPECT_EQ(HookForEventType("user.created.x"), std::nullopt);
  EXPECT_EQ(HookForEventType("workspace.modified.file"), std::nullopt);
  EXPECT_EQ(HookForEventType("workspace_member.created.x"), std::nullopt);
}

TEST(HookForEventType, RefusesAnEmptySubtypeOrATypeThatOnlyStartsLikeOne) {
  EXPECT_EQ(HookForEventType("content.created."), std::nullopt);
  EXPECT_EQ(HookForEventType("content.createdfile"), std::nullopt);
  EXPECT_EQ(HookForEventType("content.create"), std::nullopt);
  EXPECT_EQ(HookForEventType("content"), std::nullopt);
  EXPECT_EQ(HookForEventType(""), std::nullopt);
  EXPECT_EQ(HookForEventType("user.exploded"), std::nullopt);
}

TEST(HookCatalogue, EveryHookMapsToAnEventTypeAndBack) {
  for (const std::string& hook : AllHooks()) {
    std::optional<std::string> type = EventTypeForHook(hook);
    ASSERT_TRUE(type.has_value()) << hook;
    EXPECT_THAT(HookForEventType(*type), Optional(hook)) << *type;
    if (absl::StartsWith(*type, "content.")) {
      EXPECT_THAT(HookForEventType(*type + ".file"), Optional(hook)) << *type;
    }
  }
}

TEST(HookCatalogue, EveryHookHasItsOwnEventType) {
  std::set<std::string> types;
  for (const std::string& hook : AllHooks()) {
    EXPECT_TRUE(types.insert(EventTypeForHook(hook).value_or("")).second) << hook;
  }
}

}  // namespace
}  // namespace tracim::plugin::v1
