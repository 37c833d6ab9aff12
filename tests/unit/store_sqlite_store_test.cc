// Tests for SqliteStore's operations on a real file in a per-test folder:
// every operation, every error code with its exact message, uniqueness, soft
// delete, "a failed mutation changes nothing", the plugin key-value store,
// API keys, EnsureAdmin, and concurrent callers.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/store/sqlite_store.h"
#include "broker/store/testing/temp_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

#define TRACIM_TEST_CONCAT_INNER_(a, b) a##b
#define TRACIM_TEST_CONCAT_(a, b) TRACIM_TEST_CONCAT_INNER_(a, b)
// In a void function: asserts `expr` (a StatusOr) is OK and assigns its value.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(TRACIM_TEST_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(var, lhs, expr) \
  auto var = (expr);                               \
  ASSERT_TRUE(var.ok()) << var.status();           \
  lhs = std::move(var).value()

template <typename T>
std::vector<int64_t> UserIds(const std::vector<T>& users) {
  std::vector<int64_t> ids;
  for (const auto& u : users) ids.push_back(u.user_id);
  return ids;
}
std::vector<int64_t> WorkspaceIds(const std::vector<Workspace>& workspaces) {
  std::vector<int64_t> ids;
  for (const auto& w : workspaces) ids.push_back(w.workspace_id);
  return ids;
}
std::vector<int64_t> ContentIds(const std::vector<Content>& contents) {
  std::vector<int64_t> ids;
  for (const auto& c : contents) ids.push_back(c.content_id);
  return ids;
}

NewUser Bob() {
  NewUser user;
  user.email = "bob@example.org";
  user.username = "bob";
  user.public_name = "Bob";
  user.password = "bob's password";
  return user;
}
NewUser Alice() {
  NewUser user;
  user.email = "alice@example.org";
  user.username = "alice";
  user.public_name = "Alice";
  user.password = "alice's password";
  return user;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, SqliteStore::Open(file_, TestStoreOptions(&clock_)));
  }

  void Reopen() {
    store_.reset();
    ASSERT_OK_AND_ASSIGN(store_, SqliteStore::Open(file_, TestStoreOptions(&clock_)));
  }

  TempDir dir_;
  const fs::path file_ = dir_.path() / "broker.sqlite3";
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
};

// --- Users ------------------------------------------------------------------------

TEST_F(StoreTest, CreateUserReturnsTheStoredUser) {
  NewUser bob = Bob();
  bob.lang = "fr";
  bob.timezone = "Europe/Paris";
  bob.profile = Profile::kTrustedUsers;
  ASSERT_OK_AND_ASSIGN(const User user, store_->CreateUser(bob));
  EXPECT_EQ(user.user_id, 1);
  EXPECT_EQ(user.email, "bob@example.org");
  EXPECT_EQ(user.username, "bob");
  EXPECT_EQ(user.public_name, "Bob");
  EXPECT_EQ(user.profile, Profile::kTrustedUsers);
  EXPECT_TRUE(user.is_active);
  EXPECT_FALSE(user.is_deleted);
  EXPECT_EQ(user.lang, "fr");
  EXPECT_EQ(user.timezone, "Europe/Paris");
  EXPECT_EQ(user.created, FakeClock::Start());
  EXPECT_TRUE(user.has_password);
  ASSERT_OK_AND_ASSIGN(const User fetched, store_->GetUser(1));
  EXPECT_EQ(fetched, user);
}

TEST_F(StoreTest, CreateUserDefaultsPublicNameAndAllowsOneLoginOnly) {
  NewUser by_email;
  by_email.email = "carol.d@example.org";
  ASSERT_OK_AND_ASSIGN(const User carol, store_->CreateUser(by_email));
  EXPECT_EQ(carol.public_name, "carol.d");
  EXPECT_EQ(carol.username, "");
  EXPECT_EQ(carol.profile, Profile::kUsers);
  EXPECT_FALSE(carol.has_password);

  NewUser by_username;
  by_username.username = "dave_2";
  ASSERT_OK_AND_ASSIGN(const User dave, store_->CreateUser(by_username));
  EXPECT_EQ(dave.public_name, "dave_2");
  EXPECT_EQ(dave.email, "");
  EXPECT_EQ(dave.user_id, carol.user_id + 1);
}

TEST_F(StoreTest, CreateUserRefusesMalformedFields) {
  EXPECT_EQ(store_->CreateUser(NewUser{}).status(),
            absl::InvalidArgumentError("a user needs an email or a username"));
  for (const char* email : {"bob", "@example.org", "bob@", "bo b@example.org", "a@b@c"}) {
    NewUser user = Bob();
    user.email = email;
    EXPECT_EQ(store_->CreateUser(user).status(),
              absl::InvalidArgumentError(absl::StrCat("invalid email \"", email, "\"")));
  }
  for (const char* username : {"bo", "bob smith", "bob@home", "bób"}) {
    NewUser user = Bob();
    user.username = username;
    EXPECT_EQ(store_->CreateUser(user).status(),
              absl::InvalidArgumentError(
                  absl::StrCat("invalid username \"", username,
                               "\": expected 3 to 255 letters, digits, '.', '-' or '_'")));
  }
  NewUser no_password = Bob();
  no_password.password = "";
  EXPECT_EQ(store_->CreateUser(no_password).status(),
            absl::InvalidArgumentError("password must not be empty"));
  ASSERT_OK_AND_ASSIGN(const std::vector<User> users, store_->ListUsers(true));
  EXPECT_THAT(users, IsEmpty());
}

TEST_F(StoreTest, DuplicateEmailOrUsernameIsAlreadyExistsWhateverTheCase) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  NewUser same_email = Alice();
  same_email.email = "BOB@Example.org";
  EXPECT_EQ(store_->CreateUser(same_email).status(),
            absl::AlreadyExistsError("a user with email \"BOB@Example.org\" already exists"));
  NewUser same_username = Alice();
  same_username.username = "Bob";
  EXPECT_EQ(store_->CreateUser(same_username).status(),
            absl::AlreadyExistsError("a user with username \"Bob\" already exists"));
  ASSERT_OK_AND_ASSIGN(const std::vector<User> users, store_->ListUsers(true));
  EXPECT_THAT(UserIds(users), ElementsAre(bob.user_id));
}

TEST_F(StoreTest, DeletedUsersKeepTheirEmailAndUsername) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_TRUE(store_->DeleteUser(bob.user_id).ok());
  EXPECT_EQ(store_->CreateUser(Bob()).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, GetUserByEmailAndUsernameIgnoreCase) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User by_email, store_->GetUserByEmail("Bob@EXAMPLE.org"));
  EXPECT_EQ(by_email, bob);
  ASSERT_OK_AND_ASSIGN(const User by_username, store_->GetUserByUsername("BOB"));
  EXPECT_EQ(by_username, bob);
  EXPECT_EQ(store_->GetUserByEmail("nobody@example.org").status(),
            absl::NotFoundError("no user with email \"nobody@example.org\""));
  EXPECT_EQ(store_->GetUserByUsername("nobody").status(),
            absl::NotFoundError("no user with username \"nobody\""));
}

TEST_F(StoreTest, UnknownUserIdIsNotFound) {
  EXPECT_EQ(store_->GetUser(42).status(), absl::NotFoundError("user 42 not found"));
  EXPECT_EQ(store_->GetUser(0).status(), absl::NotFoundError("user 0 not found"));
  EXPECT_EQ(store_->UpdateUser(42, {}).status(), absl::NotFoundError("user 42 not found"));
  EXPECT_EQ(store_->DeleteUser(42).status(), absl::NotFoundError("user 42 not found"));
}

TEST_F(StoreTest, ListUsersIsOrderedByIdAndSkipsDeletedUnlessAsked) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User alice, store_->CreateUser(Alice()));
  NewUser carol;
  carol.username = "carol";
  ASSERT_OK_AND_ASSIGN(const User carol_user, store_->CreateUser(carol));
  ASSERT_TRUE(store_->DeleteUser(alice.user_id).ok());
  ASSERT_OK_AND_ASSIGN(const std::vector<User> live, store_->ListUsers(false));
  EXPECT_THAT(UserIds(live), ElementsAre(bob.user_id, carol_user.user_id));
  ASSERT_OK_AND_ASSIGN(const std::vector<User> all, store_->ListUsers(true));
  EXPECT_THAT(UserIds(all), ElementsAre(bob.user_id, alice.user_id, carol_user.user_id));
}

TEST_F(StoreTest, UpdateUserChangesOnlyTheGivenFields) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  UserUpdate update;
  update.public_name = "Robert";
  update.profile = Profile::kAdministrators;
  update.lang = "de";
  update.is_active = false;
  ASSERT_OK_AND_ASSIGN(const User updated, store_->UpdateUser(bob.user_id, update));
  User expected = bob;
  expected.public_name = "Robert";
  expected.profile = Profile::kAdministrators;
  expected.lang = "de";
  expected.is_active = false;
  EXPECT_EQ(updated, expected);
  ASSERT_OK_AND_ASSIGN(const User fetched, store_->GetUser(bob.user_id));
  EXPECT_EQ(fetched, expected);
}

TEST_F(StoreTest, UpdateUserCanChangeTheCaseOfItsOwnEmailAndClearOneLogin) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  UserUpdate update;
  update.email = "Bob@Example.org";
  update.username = "";
  ASSERT_OK_AND_ASSIGN(const User updated, store_->UpdateUser(bob.user_id, update));
  EXPECT_EQ(updated.email, "Bob@Example.org");
  EXPECT_EQ(updated.username, "");
  // The freed username can be taken.
  NewUser other;
  other.username = "bob";
  EXPECT_TRUE(store_->CreateUser(other).ok());
}

TEST_F(StoreTest, UpdateUserWithATakenEmailIsAlreadyExistsAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User alice, store_->CreateUser(Alice()));
  UserUpdate update;
  update.email = "alice@example.org";
  update.public_name = "Not Bob";
  update.password = "new password";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, update).status(),
            absl::AlreadyExistsError("a user with email \"alice@example.org\" already exists"));
  ASSERT_OK_AND_ASSIGN(const User after, store_->GetUser(bob.user_id));
  EXPECT_EQ(after, bob);
  EXPECT_TRUE(store_->VerifyPassword("bob", "bob's password").ok());
  EXPECT_FALSE(store_->VerifyPassword("bob", "new password").ok());

  UserUpdate username;
  username.username = "ALICE";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, username).status(),
            absl::AlreadyExistsError("a user with username \"ALICE\" already exists"));
  ASSERT_OK_AND_ASSIGN(const User alice_after, store_->GetUser(alice.user_id));
  EXPECT_EQ(alice_after, alice);
}

TEST_F(StoreTest, UpdateUserRefusesMalformedFields) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  UserUpdate both_empty;
  both_empty.email = "";
  both_empty.username = "";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, both_empty).status(),
            absl::InvalidArgumentError("a user needs an email or a username"));
  UserUpdate bad_email;
  bad_email.email = "bob";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, bad_email).status(),
            absl::InvalidArgumentError("invalid email \"bob\""));
  UserUpdate no_name;
  no_name.public_name = "";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, no_name).status(),
            absl::InvalidArgumentError("public_name must not be empty"));
  UserUpdate no_password;
  no_password.password = "";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, no_password).status(),
            absl::InvalidArgumentError("password must not be empty"));
  ASSERT_OK_AND_ASSIGN(const User after, store_->GetUser(bob.user_id));
  EXPECT_EQ(after, bob);
}

TEST_F(StoreTest, UpdateUserPasswordReplacesTheOldOne) {
  NewUser no_password = Bob();
  no_password.password.reset();
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(no_password));
  EXPECT_FALSE(bob.has_password);
  UserUpdate update;
  update.password = "first";
  ASSERT_OK_AND_ASSIGN(const User with_password, store_->UpdateUser(bob.user_id, update));
  EXPECT_TRUE(with_password.has_password);
  EXPECT_TRUE(store_->VerifyPassword("bob", "first").ok());
  update.password = "second";
  ASSERT_TRUE(store_->UpdateUser(bob.user_id, update).ok());
  EXPECT_FALSE(store_->VerifyPassword("bob", "first").ok());
  EXPECT_TRUE(store_->VerifyPassword("bob", "second").ok());
  // An update without a password keeps it.
  UserUpdate rename;
  rename.public_name = "B";
  ASSERT_TRUE(store_->UpdateUser(bob.user_id, rename).ok());
  EXPECT_TRUE(store_->VerifyPassword("bob", "second").ok());
}

TEST_F(StoreTest, DeleteUserIsSoft) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User deleted, store_->DeleteUser(bob.user_id));
  User expected = bob;
  expected.is_deleted = true;
  EXPECT_EQ(deleted, expected);
  ASSERT_OK_AND_ASSIGN(const User fetched, store_->GetUser(bob.user_id));
  EXPECT_EQ(fetched, expected);
  EXPECT_EQ(store_->DeleteUser(bob.user_id).status(),
            absl::FailedPreconditionError("user 1 is already deleted"));
  UserUpdate update;
  update.public_name = "Zombie";
  EXPECT_EQ(store_->UpdateUser(bob.user_id, update).status(),
            absl::FailedPreconditionError("user 1 is deleted"));
}

TEST_F(StoreTest, VerifyPasswordAcceptsEmailOrUsername) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User by_email,
                       store_->VerifyPassword("BOB@example.org", "bob's password"));
  EXPECT_EQ(by_email, bob);
  ASSERT_OK_AND_ASSIGN(const User by_username, store_->VerifyPassword("bob", "bob's password"));
  EXPECT_EQ(by_username, bob);
}

TEST_F(StoreTest, VerifyPasswordFailsTheSameWayForEveryReason) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User alice, store_->CreateUser(Alice()));
  NewUser bot;
  bot.username = "bot";
  ASSERT_TRUE(store_->CreateUser(bot).ok());
  UserUpdate deactivate;
  deactivate.is_active = false;
  ASSERT_TRUE(store_->UpdateUser(alice.user_id, deactivate).ok());
  NewUser carol;
  carol.username = "carol";
  carol.password = "carol's password";
  ASSERT_OK_AND_ASSIGN(const User carol_user, store_->CreateUser(carol));
  ASSERT_TRUE(store_->DeleteUser(carol_user.user_id).ok());

  const absl::Status denied = absl::UnauthenticatedError("invalid login or password");
  EXPECT_EQ(store_->VerifyPassword("bob", "wrong").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("bob", "").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("nobody", "bob's password").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("", "bob's password").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("bot", "").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("alice", "alice's password").status(), denied);
  EXPECT_EQ(store_->VerifyPassword("carol", "carol's password").status(), denied);
}

TEST_F(StoreTest, EnsureAdminCreatesTracimsFirstAdminOnceOnly) {
  ASSERT_OK_AND_ASSIGN(const std::optional<User> admin, store_->EnsureAdmin("s3cret"));
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->email, "admin@admin.admin");
  EXPECT_EQ(admin->username, "admin");
  EXPECT_EQ(admin->public_name, "Global manager");
  EXPECT_EQ(admin->profile, Profile::kAdministrators);
  EXPECT_TRUE(admin->is_active);
  ASSERT_OK_AND_ASSIGN(const User verified, store_->VerifyPassword("admin@admin.admin", "s3cret"));
  EXPECT_EQ(verified, *admin);

  ASSERT_OK_AND_ASSIGN(const std::optional<User> again, store_->EnsureAdmin("other"));
  EXPECT_FALSE(again.has_value());
  Reopen();
  ASSERT_OK_AND_ASSIGN(const std::optional<User> after_restart, store_->EnsureAdmin("other"));
  EXPECT_FALSE(after_restart.has_value());
  ASSERT_OK_AND_ASSIGN(const std::vector<User> users, store_->ListUsers(true));
  EXPECT_THAT(users, SizeIs(1));
  EXPECT_TRUE(store_->VerifyPassword("admin", "s3cret").ok());
  EXPECT_FALSE(store_->VerifyPassword("admin", "other").ok());
}

TEST_F(StoreTest, EnsureAdminDoesNothingOnADatabaseWithUsers) {
  ASSERT_TRUE(store_->CreateUser(Bob()).ok());
  ASSERT_OK_AND_ASSIGN(const std::optional<User> admin, store_->EnsureAdmin("s3cret"));
  EXPECT_FALSE(admin.has_value());
  EXPECT_EQ(store_->GetUserByEmail("admin@admin.admin").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, EnsureAdminRefusesAnEmptyPasswordOnAnEmptyDatabase) {
  EXPECT_EQ(store_->EnsureAdmin("").status(),
            absl::InvalidArgumentError("password must not be empty"));
  ASSERT_OK_AND_ASSIGN(const std::vector<User> users, store_->ListUsers(true));
  EXPECT_THAT(users, IsEmpty());
}

// --- API keys -----------------------------------------------------------------------

TEST_F(StoreTest, ApiKeyAuthenticatesItsOwnerByEmailOrUsername) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const CreatedApiKey created, store_->CreateApiKey(bob.user_id, "ci"));
  EXPECT_EQ(created.key.size(), 64u);
  EXPECT_EQ(created.api_key.api_key_id, 1);
  EXPECT_EQ(created.api_key.user_id, bob.user_id);
  EXPECT_EQ(created.api_key.label, "ci");
  EXPECT_EQ(created.api_key.created, FakeClock::Start());
  ASSERT_OK_AND_ASSIGN(const User by_email, store_->VerifyApiKey("bob@example.org", created.key));
  EXPECT_EQ(by_email, bob);
  ASSERT_OK_AND_ASSIGN(const User by_username, store_->VerifyApiKey("BOB", created.key));
  EXPECT_EQ(by_username, bob);
  ASSERT_OK_AND_ASSIGN(const std::vector<ApiKey> keys, store_->ListApiKeys(bob.user_id));
  EXPECT_THAT(keys, ElementsAre(created.api_key));
}

TEST_F(StoreTest, ApiKeyIsRefusedForAnotherLoginAWrongKeyOrADeletedOwner) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User alice, store_->CreateUser(Alice()));
  ASSERT_OK_AND_ASSIGN(const CreatedApiKey key, store_->CreateApiKey(bob.user_id, ""));
  const absl::Status denied = absl::UnauthenticatedError("invalid login or API key");
  EXPECT_EQ(store_->VerifyApiKey("alice", key.key).status(), denied);
  EXPECT_EQ(store_->VerifyApiKey("", key.key).status(), denied);
  std::string wrong = key.key;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(store_->VerifyApiKey("bob", wrong).status(), denied);
  EXPECT_EQ(store_->VerifyApiKey("bob", key.key.substr(1)).status(), denied);
  EXPECT_EQ(store_->VerifyApiKey("bob", "").status(), denied);
  UserUpdate deactivate;
  deactivate.is_active = false;
  ASSERT_TRUE(store_->UpdateUser(bob.user_id, deactivate).ok());
  EXPECT_EQ(store_->VerifyApiKey("bob", key.key).status(), denied);
  ASSERT_TRUE(store_->DeleteUser(bob.user_id).ok());
  EXPECT_EQ(store_->VerifyApiKey("bob", key.key).status(), denied);
  EXPECT_EQ(store_->CreateApiKey(bob.user_id, "").status(),
            absl::FailedPreconditionError("user 1 is deleted"));
  EXPECT_EQ(store_->CreateApiKey(99, "").status(), absl::NotFoundError("user 99 not found"));
  EXPECT_EQ(store_->ListApiKeys(99).status(), absl::NotFoundError("user 99 not found"));
  ASSERT_OK_AND_ASSIGN(const std::vector<ApiKey> none, store_->ListApiKeys(alice.user_id));
  EXPECT_THAT(none, IsEmpty());
}

TEST_F(StoreTest, DeletedApiKeyNoLongerAuthenticates) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const User alice, store_->CreateUser(Alice()));
  ASSERT_OK_AND_ASSIGN(const CreatedApiKey first, store_->CreateApiKey(bob.user_id, "one"));
  ASSERT_OK_AND_ASSIGN(const CreatedApiKey second, store_->CreateApiKey(bob.user_id, "two"));
  EXPECT_NE(first.key, second.key);
  EXPECT_EQ(store_->DeleteApiKey(alice.user_id, first.api_key.api_key_id).status(),
            absl::NotFoundError("api key 1 not found for user 2"));
  ASSERT_OK_AND_ASSIGN(const ApiKey deleted,
                       store_->DeleteApiKey(bob.user_id, first.api_key.api_key_id));
  EXPECT_EQ(deleted, first.api_key);
  EXPECT_EQ(store_->DeleteApiKey(bob.user_id, first.api_key.api_key_id).status(),
            absl::NotFoundError("api key 1 not found for user 1"));
  EXPECT_EQ(store_->VerifyApiKey("bob", first.key).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(store_->VerifyApiKey("bob", second.key).ok());
  ASSERT_OK_AND_ASSIGN(const std::vector<ApiKey> keys, store_->ListApiKeys(bob.user_id));
  EXPECT_THAT(keys, ElementsAre(second.api_key));
}

TEST_F(StoreTest, OnlyADigestOfTheApiKeyReachesTheDisk) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const CreatedApiKey key, store_->CreateApiKey(bob.user_id, "marker-label"));
  store_.reset();  // checkpoints the WAL into the file
  std::ifstream in(file_, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StrContains(bytes, "marker-label"));  // the row is there
  EXPECT_FALSE(absl::StrContains(bytes, key.key));
}

// --- Workspaces -----------------------------------------------------------------------

TEST_F(StoreTest, CreateWorkspaceReturnsTheStoredWorkspace) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  NewWorkspace parent;
  parent.label = "Projects";
  ASSERT_OK_AND_ASSIGN(const Workspace projects, store_->CreateWorkspace(parent));
  EXPECT_EQ(projects.workspace_id, 1);
  EXPECT_EQ(projects.label, "Projects");
  EXPECT_EQ(projects.description, "");
  EXPECT_EQ(projects.access_type, AccessType::kConfidential);
  EXPECT_EQ(projects.default_user_role, WorkspaceRole::kReader);
  EXPECT_EQ(projects.parent_id, 0);
  EXPECT_EQ(projects.owner_id, 0);
  EXPECT_FALSE(projects.is_deleted);
  EXPECT_EQ(projects.created, FakeClock::Start());

  NewWorkspace child;
  child.label = "Broker";
  child.description = "<p>plugins</p>";
  child.access_type = AccessType::kOpen;
  child.default_user_role = WorkspaceRole::kContributor;
  child.parent_id = projects.workspace_id;
  child.owner_id = bob.user_id;
  ASSERT_OK_AND_ASSIGN(const Workspace broker, store_->CreateWorkspace(child));
  EXPECT_EQ(broker.description, "<p>plugins</p>");
  EXPECT_EQ(broker.access_type, AccessType::kOpen);
  EXPECT_EQ(broker.default_user_role, WorkspaceRole::kContributor);
  EXPECT_EQ(broker.parent_id, projects.workspace_id);
  EXPECT_EQ(broker.owner_id, bob.user_id);
  ASSERT_OK_AND_ASSIGN(const Workspace fetched, store_->GetWorkspace(broker.workspace_id));
  EXPECT_EQ(fetched, broker);
}

TEST_F(StoreTest, CreateWorkspaceChecksItsLabelAndReferences) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_TRUE(store_->DeleteUser(bob.user_id).ok());
  ASSERT_OK_AND_ASSIGN(const Workspace gone, store_->CreateWorkspace({.label = "Gone"}));
  ASSERT_TRUE(store_->DeleteWorkspace(gone.workspace_id).ok());

  EXPECT_EQ(store_->CreateWorkspace({.label = " "}).status(),
            absl::InvalidArgumentError("label must not be empty"));
  EXPECT_EQ(store_->CreateWorkspace({.label = "W", .parent_id = 99}).status(),
            absl::NotFoundError("parent workspace 99 not found"));
  EXPECT_EQ(store_->CreateWorkspace({.label = "W", .parent_id = gone.workspace_id}).status(),
            absl::FailedPreconditionError("parent workspace 1 is deleted"));
  EXPECT_EQ(store_->CreateWorkspace({.label = "W", .owner_id = 99}).status(),
            absl::NotFoundError("owner 99 not found"));
  EXPECT_EQ(store_->CreateWorkspace({.label = "W", .owner_id = bob.user_id}).status(),
            absl::FailedPreconditionError("owner 1 is deleted"));
  ASSERT_OK_AND_ASSIGN(const std::vector<Workspace> all, store_->ListWorkspaces(true));
  EXPECT_THAT(WorkspaceIds(all), ElementsAre(gone.workspace_id));
}

TEST_F(StoreTest, UnknownWorkspaceIdIsNotFound) {
  EXPECT_EQ(store_->GetWorkspace(7).status(), absl::NotFoundError("workspace 7 not found"));
  EXPECT_EQ(store_->UpdateWorkspace(7, {}).status(), absl::NotFoundError("workspace 7 not found"));
  EXPECT_EQ(store_->DeleteWorkspace(7).status(), absl::NotFoundError("workspace 7 not found"));
}

TEST_F(StoreTest, UpdateWorkspaceChangesOnlyTheGivenFields) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const Workspace top, store_->CreateWorkspace({.label = "Top"}));
  ASSERT_OK_AND_ASSIGN(const Workspace w, store_->CreateWorkspace({.label = "W"}));
  WorkspaceUpdate update;
  update.description = "desc";
  update.access_type = AccessType::kOnRequest;
  update.default_user_role = WorkspaceRole::kContentManager;
  update.parent_id = top.workspace_id;
  update.owner_id = bob.user_id;
  ASSERT_OK_AND_ASSIGN(const Workspace updated, store_->UpdateWorkspace(w.workspace_id, update));
  Workspace expected = w;
  expected.description = "desc";
  expected.access_type = AccessType::kOnRequest;
  expected.default_user_role = WorkspaceRole::kContentManager;
  expected.parent_id = top.workspace_id;
  expected.owner_id = bob.user_id;
  EXPECT_EQ(updated, expected);
  ASSERT_OK_AND_ASSIGN(const Workspace fetched, store_->GetWorkspace(w.workspace_id));
  EXPECT_EQ(fetched, expected);

  // Back to top level, owner cleared.
  WorkspaceUpdate detach;
  detach.parent_id = 0;
  detach.owner_id = 0;
  ASSERT_OK_AND_ASSIGN(const Workspace detached, store_->UpdateWorkspace(w.workspace_id, detach));
  EXPECT_EQ(detached.parent_id, 0);
  EXPECT_EQ(detached.owner_id, 0);
}

TEST_F(StoreTest, UpdateWorkspaceRefusesCyclesAndBadReferencesAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(const Workspace a, store_->CreateWorkspace({.label = "A"}));
  ASSERT_OK_AND_ASSIGN(const Workspace b,
                       store_->CreateWorkspace({.label = "B", .parent_id = a.workspace_id}));
  ASSERT_OK_AND_ASSIGN(const Workspace c,
                       store_->CreateWorkspace({.label = "C", .parent_id = b.workspace_id}));
  WorkspaceUpdate to_self;
  to_self.parent_id = a.workspace_id;
  to_self.label = "renamed";
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, to_self).status(),
            absl::FailedPreconditionError("workspace 1 cannot be its own parent"));
  WorkspaceUpdate under_grandchild;
  under_grandchild.parent_id = c.workspace_id;
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, under_grandchild).status(),
            absl::FailedPreconditionError("workspace 1 cannot be moved under its descendant 3"));
  WorkspaceUpdate unknown_parent;
  unknown_parent.parent_id = 42;
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, unknown_parent).status(),
            absl::NotFoundError("parent workspace 42 not found"));
  WorkspaceUpdate unknown_owner;
  unknown_owner.owner_id = 42;
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, unknown_owner).status(),
            absl::NotFoundError("owner 42 not found"));
  WorkspaceUpdate blank;
  blank.label = "";
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, blank).status(),
            absl::InvalidArgumentError("label must not be empty"));
  ASSERT_OK_AND_ASSIGN(const Workspace after, store_->GetWorkspace(a.workspace_id));
  EXPECT_EQ(after, a);
}

TEST_F(StoreTest, UpdateWorkspaceKeepsAnUnchangedOwnerWhoWasDeletedSince) {
  ASSERT_OK_AND_ASSIGN(const User bob, store_->CreateUser(Bob()));
  ASSERT_OK_AND_ASSIGN(const Workspace w,
                       store_->CreateWorkspace({.label = "W", .owner_id = bob.user_id}));
  ASSERT_TRUE(store_->DeleteUser(bob.user_id).ok());
  WorkspaceUpdate update;
  update.label = "W2";
  update.owner_id = bob.user_id;
  ASSERT_OK_AND_ASSIGN(const Workspace updated, store_->UpdateWorkspace(w.workspace_id, update));
  EXPECT_EQ(updated.label, "W2");
  EXPECT_EQ(updated.owner_id, bob.user_id);
}

TEST_F(StoreTest, DeleteWorkspaceIsSoftAndListsSkipIt) {
  ASSERT_OK_AND_ASSIGN(const Workspace a, store_->CreateWorkspace({.label = "A"}));
  ASSERT_OK_AND_ASSIGN(const Workspace b, store_->CreateWorkspace({.label = "B"}));
  ASSERT_OK_AND_ASSIGN(const Workspace deleted, store_->DeleteWorkspace(a.workspace_id));
  Workspace expected = a;
  expected.is_deleted = true;
  EXPECT_EQ(deleted, expected);
  ASSERT_OK_AND_ASSIGN(const Workspace fetched, store_->GetWorkspace(a.workspace_id));
  EXPECT_EQ(fetched, expected);
  ASSERT_OK_AND_ASSIGN(const std::vector<Workspace> live, store_->ListWorkspaces(false));
  EXPECT_THAT(WorkspaceIds(live), ElementsAre(b.workspace_id));
  ASSERT_OK_AND_ASSIGN(const std::vector<Workspace> all, store_->ListWorkspaces(true));
  EXPECT_THAT(WorkspaceIds(all), ElementsAre(a.workspace_id, b.workspace_id));
  EXPECT_EQ(store_->DeleteWorkspace(a.workspace_id).status(),
            absl::FailedPreconditionError("workspace 1 is already deleted"));
  EXPECT_EQ(store_->UpdateWorkspace(a.workspace_id, {}).status(),
            absl::FailedPreconditionError("workspace 1 is deleted"));
}

// --- Memberships ----------------------------------------------------------------------

class StoreMembershipTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_OK_AND_ASSIGN(bob_, store_->CreateUser(Bob()));
    ASSERT_OK_AND_ASSIGN(alice_, store_->CreateUser(Alice()));
    ASSERT_OK_AND_ASSIGN(w1_, store_->CreateWorkspace({.label = "One"}));
    ASSERT_OK_AND_ASSIGN(w2_, store_->CreateWorkspace({.label = "Two"}));
  }
  User bob_, alice_;
  Workspace w1_, w2_;
};

TEST_F(StoreMembershipTest, AddMembershipReturnsItAndGetFindsIt) {
  ASSERT_OK_AND_ASSIGN(const Membership added, store_->AddMembership(w1_.workspace_id, bob_.user_id,
                                                                     WorkspaceRole::kContributor));
  EXPECT_EQ(added.workspace_id, w1_.workspace_id);
  EXPECT_EQ(added.user_id, bob_.user_id);
  EXPECT_EQ(added.role, WorkspaceRole::kContributor);
  EXPECT_EQ(added.created, FakeClock::Start());
  ASSERT_OK_AND_ASSIGN(const Membership fetched,
                       store_->GetMembership(w1_.workspace_id, bob_.user_id));
  EXPECT_EQ(fetched, added);
}

TEST_F(StoreMembershipTest, AddingAnExistingMemberIsAlreadyExistsAndKeepsTheRole) {
  ASSERT_TRUE(store_->AddMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kReader).ok());
  EXPECT_EQ(store_->AddMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kWorkspaceManager)
                .status(),
            absl::AlreadyExistsError("user 1 is already a member of workspace 1"));
  ASSERT_OK_AND_ASSIGN(const Membership kept,
                       store_->GetMembership(w1_.workspace_id, bob_.user_id));
  EXPECT_EQ(kept.role, WorkspaceRole::kReader);
}

TEST_F(StoreMembershipTest, MembershipsNeedALiveUserAndWorkspace) {
  const auto role = WorkspaceRole::kReader;
  EXPECT_EQ(store_->AddMembership(9, bob_.user_id, role).status(),
            absl::NotFoundError("workspace 9 not found"));
  EXPECT_EQ(store_->AddMembership(w1_.workspace_id, 9, role).status(),
            absl::NotFoundError("user 9 not found"));
  EXPECT_EQ(store_->SetMembership(9, bob_.user_id, role).status(),
            absl::NotFoundError("workspace 9 not found"));
  ASSERT_TRUE(store_->DeleteWorkspace(w2_.workspace_id).ok());
  ASSERT_TRUE(store_->DeleteUser(alice_.user_id).ok());
  EXPECT_EQ(store_->AddMembership(w2_.workspace_id, bob_.user_id, role).status(),
            absl::FailedPreconditionError("workspace 2 is deleted"));
  EXPECT_EQ(store_->AddMembership(w1_.workspace_id, alice_.user_id, role).status(),
            absl::FailedPreconditionError("user 2 is deleted"));
  EXPECT_EQ(store_->SetMembership(w1_.workspace_id, alice_.user_id, role).status(),
            absl::FailedPreconditionError("user 2 is deleted"));
  ASSERT_OK_AND_ASSIGN(const std::vector<Membership> none,
                       store_->ListWorkspaceMembers(w1_.workspace_id));
  EXPECT_THAT(none, IsEmpty());
}

TEST_F(StoreMembershipTest, UpdateMembershipChangesTheRoleOfAnExistingMember) {
  EXPECT_EQ(
      store_->UpdateMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kReader).status(),
      absl::NotFoundError("user 1 is not a member of workspace 1"));
  ASSERT_OK_AND_ASSIGN(const Membership added, store_->AddMembership(w1_.workspace_id, bob_.user_id,
                                                                     WorkspaceRole::kReader));
  ASSERT_OK_AND_ASSIGN(
      const Membership updated,
      store_->UpdateMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kContentManager));
  Membership expected = added;
  expected.role = WorkspaceRole::kContentManager;
  EXPECT_EQ(updated, expected);
}

TEST_F(StoreMembershipTest, SetMembershipTellsWhetherItCreated) {
  ASSERT_OK_AND_ASSIGN(
      const MembershipChange first,
      store_->SetMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kReader));
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.membership.role, WorkspaceRole::kReader);
  ASSERT_OK_AND_ASSIGN(
      const MembershipChange second,
      store_->SetMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kWorkspaceManager));
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.membership.role, WorkspaceRole::kWorkspaceManager);
  EXPECT_EQ(second.membership.created, first.membership.created);
}

TEST_F(StoreMembershipTest, ListsAreOrderedAndScoped) {
  const auto role = WorkspaceRole::kReader;
  ASSERT_TRUE(store_->AddMembership(w2_.workspace_id, alice_.user_id, role).ok());
  ASSERT_TRUE(store_->AddMembership(w1_.workspace_id, alice_.user_id, role).ok());
  ASSERT_TRUE(store_->AddMembership(w1_.workspace_id, bob_.user_id, role).ok());
  ASSERT_OK_AND_ASSIGN(const std::vector<Membership> members,
                       store_->ListWorkspaceMembers(w1_.workspace_id));
  EXPECT_THAT(UserIds(members), ElementsAre(bob_.user_id, alice_.user_id));
  ASSERT_OK_AND_ASSIGN(const std::vector<Membership> of_alice,
                       store_->ListUserMemberships(alice_.user_id));
  ASSERT_THAT(of_alice, SizeIs(2));
  EXPECT_EQ(of_alice[0].workspace_id, w1_.workspace_id);
  EXPECT_EQ(of_alice[1].workspace_id, w2_.workspace_id);
  EXPECT_EQ(store_->ListWorkspaceMembers(9).status(), absl::NotFoundError("workspace 9 not found"));
  EXPECT_EQ(store_->ListUserMemberships(9).status(), absl::NotFoundError("user 9 not found"));
}

TEST_F(StoreMembershipTest, RemoveMembershipReturnsWhatItRemoved) {
  ASSERT_OK_AND_ASSIGN(const Membership added, store_->AddMembership(w1_.workspace_id, bob_.user_id,
                                                                     WorkspaceRole::kContributor));
  ASSERT_OK_AND_ASSIGN(const Membership removed,
                       store_->RemoveMembership(w1_.workspace_id, bob_.user_id));
  EXPECT_EQ(removed, added);
  EXPECT_EQ(store_->GetMembership(w1_.workspace_id, bob_.user_id).status(),
            absl::NotFoundError("user 1 is not a member of workspace 1"));
  EXPECT_EQ(store_->RemoveMembership(w1_.workspace_id, bob_.user_id).status(),
            absl::NotFoundError("user 1 is not a member of workspace 1"));
  // And it can be added again.
  EXPECT_TRUE(store_->AddMembership(w1_.workspace_id, bob_.user_id, WorkspaceRole::kReader).ok());
}

// --- Contents ---------------------------------------------------------------------------

class StoreContentTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_OK_AND_ASSIGN(bob_, store_->CreateUser(Bob()));
    ASSERT_OK_AND_ASSIGN(w1_, store_->CreateWorkspace({.label = "One"}));
    ASSERT_OK_AND_ASSIGN(w2_, store_->CreateWorkspace({.label = "Two"}));
  }

  NewContent Folder(absl::string_view label, int64_t parent_id = 0) const {
    NewContent content;
    content.workspace_id = w1_.workspace_id;
    content.parent_id = parent_id;
    content.content_type = ContentType::kFolder;
    content.label = std::string(label);
    content.author_id = bob_.user_id;
    return content;
  }
  NewContent Document(absl::string_view label, int64_t parent_id = 0) const {
    NewContent content = Folder(label, parent_id);
    content.content_type = ContentType::kHtmlDocument;
    content.raw_content = "<p>hello</p>";
    return content;
  }
  NewContent File(absl::string_view file_name, int64_t parent_id = 0) const {
    NewContent content = Folder("", parent_id);
    content.content_type = ContentType::kFile;
    content.file_name = std::string(file_name);
    content.file_mimetype = "video/mp4";
    return content;
  }
  NewContent Comment(int64_t parent_id, absl::string_view text) const {
    NewContent content = Folder("", parent_id);
    content.content_type = ContentType::kComment;
    content.raw_content = std::string(text);
    return content;
  }

  User bob_;
  Workspace w1_, w2_;
};

TEST_F(StoreContentTest, CreateContentReturnsTheStoredContent) {
  ASSERT_OK_AND_ASSIGN(const Content folder, store_->CreateContent(Folder("Docs")));
  EXPECT_EQ(folder.content_id, 1);
  EXPECT_EQ(folder.workspace_id, w1_.workspace_id);
  EXPECT_EQ(folder.parent_id, 0);
  EXPECT_EQ(folder.content_type, ContentType::kFolder);
  EXPECT_EQ(folder.label, "Docs");
  EXPECT_EQ(folder.status, ContentStatus::kOpen);
  EXPECT_FALSE(folder.is_deleted);
  EXPECT_FALSE(folder.is_archived);
  EXPECT_EQ(folder.author_id, bob_.user_id);
  EXPECT_EQ(folder.revision_type, RevisionType::kCreation);
  EXPECT_EQ(folder.created, FakeClock::Start());
  EXPECT_EQ(folder.modified, FakeClock::Start());

  NewContent doc = Document("Readme", folder.content_id);
  doc.status = ContentStatus::kClosedValidated;
  ASSERT_OK_AND_ASSIGN(const Content created, store_->CreateContent(doc));
  EXPECT_EQ(created.parent_id, folder.content_id);
  EXPECT_EQ(created.content_type, ContentType::kHtmlDocument);
  EXPECT_EQ(created.raw_content, "<p>hello</p>");
  EXPECT_EQ(created.status, ContentStatus::kClosedValidated);
  ASSERT_OK_AND_ASSIGN(const Content fetched, store_->GetContent(created.content_id));
  EXPECT_EQ(fetched, created);
}

TEST_F(StoreContentTest, FileGetsItsExtensionAndADefaultLabelFromItsName) {
  ASSERT_OK_AND_ASSIGN(const Content movie, store_->CreateContent(File("holiday.mp4")));
  EXPECT_EQ(movie.label, "holiday");
  EXPECT_EQ(movie.file_name, "holiday.mp4");
  EXPECT_EQ(movie.file_extension, ".mp4");
  EXPECT_EQ(movie.file_mimetype, "video/mp4");
  struct Case {
    const char* file_name;
    const char* label;
    const char* extension;
  };
  for (const Case& c :
       {Case{"archive.tar.gz", "archive.tar", ".gz"}, Case{".bashrc", ".bashrc", ""},
        Case{"..x", "..x", ""}, Case{"README", "README", ""}, Case{"a.", "a", "."}}) {
    ASSERT_OK_AND_ASSIGN(const Content file, store_->CreateContent(File(c.file_name)));
    EXPECT_EQ(file.label, c.label) << c.file_name;
    EXPECT_EQ(file.file_extension, c.extension) << c.file_name;
  }
  NewContent labelled = File("x.png");
  labelled.label = "Logo";
  ASSERT_OK_AND_ASSIGN(const Content logo, store_->CreateContent(labelled));
  EXPECT_EQ(logo.label, "Logo");
}

TEST_F(StoreContentTest, CommentsAreContentsWithAParentAndNoLabel) {
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("Doc")));
  NewContent first = Comment(doc.content_id, "<p>first</p>");
  first.label = "ignored";
  ASSERT_OK_AND_ASSIGN(const Content c1, store_->CreateContent(first));
  EXPECT_EQ(c1.content_type, ContentType::kComment);
  EXPECT_EQ(c1.parent_id, doc.content_id);
  EXPECT_EQ(c1.label, "");
  EXPECT_EQ(c1.raw_content, "<p>first</p>");
  ASSERT_OK_AND_ASSIGN(const Content c2,
                       store_->CreateContent(Comment(doc.content_id, "<p>second</p>")));
  ASSERT_OK_AND_ASSIGN(const Content other, store_->CreateContent(Document("Other")));
  ASSERT_TRUE(store_->CreateContent(Comment(other.content_id, "<p>elsewhere</p>")).ok());
  ASSERT_OK_AND_ASSIGN(
      const std::vector<Content> comments,
      store_->ListContents(w1_.workspace_id, {.parent_id = doc.content_id,
                                              .content_types = {ContentType::kComment}}));
  EXPECT_THAT(ContentIds(comments), ElementsAre(c1.content_id, c2.content_id));
}

TEST_F(StoreContentTest, CreateContentRefusesMalformedFields) {
  EXPECT_EQ(store_->CreateContent(Folder(" ")).status(),
            absl::InvalidArgumentError("label must not be empty"));
  EXPECT_EQ(store_->CreateContent(Document("")).status(),
            absl::InvalidArgumentError("label must not be empty"));
  EXPECT_EQ(store_->CreateContent(File("")).status(),
            absl::InvalidArgumentError("a file needs a file_name"));
  EXPECT_EQ(
      store_->CreateContent(File("a/b.txt")).status(),
      absl::InvalidArgumentError("invalid file_name \"a/b.txt\": it must not contain '/' or NUL"));
  EXPECT_EQ(store_->CreateContent(Comment(0, "<p>x</p>")).status(),
            absl::InvalidArgumentError("a comment needs a parent content"));
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("Doc")));
  EXPECT_EQ(store_->CreateContent(Comment(doc.content_id, "  ")).status(),
            absl::InvalidArgumentError("a comment needs a raw_content"));
  ASSERT_OK_AND_ASSIGN(const std::vector<Content> all,
                       store_->ListContents(w1_.workspace_id, {.include_deleted = true}));
  EXPECT_THAT(ContentIds(all), ElementsAre(doc.content_id));
}

TEST_F(StoreContentTest, CreateContentChecksWorkspaceAuthorAndParent) {
  ASSERT_OK_AND_ASSIGN(const Content folder, store_->CreateContent(Folder("F")));
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D", folder.content_id)));
  ASSERT_OK_AND_ASSIGN(const Content comment,
                       store_->CreateContent(Comment(doc.content_id, "<p>c</p>")));
  ASSERT_OK_AND_ASSIGN(const Content trashed, store_->CreateContent(Folder("Trash")));
  ASSERT_TRUE(store_->DeleteContent(trashed.content_id).ok());

  NewContent unknown_workspace = Folder("X");
  unknown_workspace.workspace_id = 99;
  EXPECT_EQ(store_->CreateContent(unknown_workspace).status(),
            absl::NotFoundError("workspace 99 not found"));
  NewContent unknown_author = Folder("X");
  unknown_author.author_id = 99;
  EXPECT_EQ(store_->CreateContent(unknown_author).status(),
            absl::NotFoundError("author 99 not found"));
  EXPECT_EQ(store_->CreateContent(Folder("X", 99)).status(),
            absl::NotFoundError("parent content 99 not found"));
  EXPECT_EQ(store_->CreateContent(Folder("X", trashed.content_id)).status(),
            absl::FailedPreconditionError("parent content 4 is deleted"));
  EXPECT_EQ(store_->CreateContent(Folder("X", doc.content_id)).status(),
            absl::FailedPreconditionError(
                "parent content 2 is a html-document: only folders hold contents"));
  EXPECT_EQ(
      store_->CreateContent(Comment(comment.content_id, "<p>re</p>")).status(),
      absl::FailedPreconditionError("parent content 3 is a comment: comments cannot be nested"));
  NewContent elsewhere = Folder("X", folder.content_id);
  elsewhere.workspace_id = w2_.workspace_id;
  EXPECT_EQ(
      store_->CreateContent(elsewhere).status(),
      absl::FailedPreconditionError("parent content 1 is in workspace 1, not in workspace 2"));

  ASSERT_OK_AND_ASSIGN(const std::vector<Content> before,
                       store_->ListContents(w1_.workspace_id, {.include_deleted = true}));
  ASSERT_TRUE(store_->DeleteWorkspace(w2_.workspace_id).ok());
  NewContent in_deleted = Folder("X");
  in_deleted.workspace_id = w2_.workspace_id;
  EXPECT_EQ(store_->CreateContent(in_deleted).status(),
            absl::FailedPreconditionError("workspace 2 is deleted"));
  ASSERT_TRUE(store_->DeleteUser(bob_.user_id).ok());
  EXPECT_EQ(store_->CreateContent(Folder("X")).status(),
            absl::FailedPreconditionError("author 1 is deleted"));
  ASSERT_OK_AND_ASSIGN(const std::vector<Content> after,
                       store_->ListContents(w1_.workspace_id, {.include_deleted = true}));
  EXPECT_EQ(after, before);
}

TEST_F(StoreContentTest, ListContentsFiltersByParentTypeAndDeletion) {
  ASSERT_OK_AND_ASSIGN(const Content folder, store_->CreateContent(Folder("F")));      // 1
  ASSERT_OK_AND_ASSIGN(const Content root_doc, store_->CreateContent(Document("R")));  // 2
  ASSERT_OK_AND_ASSIGN(const Content inner,
                       store_->CreateContent(Document("I", folder.content_id)));  // 3
  ASSERT_OK_AND_ASSIGN(const Content comment,
                       store_->CreateContent(Comment(inner.content_id, "<p>c</p>")));  // 4
  ASSERT_OK_AND_ASSIGN(const Content gone, store_->CreateContent(File("gone.txt")));   // 5
  ASSERT_TRUE(store_->DeleteContent(gone.content_id).ok());
  NewContent other = Folder("Other");
  other.workspace_id = w2_.workspace_id;
  ASSERT_TRUE(store_->CreateContent(other).ok());

  auto ids = [&](const ContentFilter& filter) {
    auto contents = store_->ListContents(w1_.workspace_id, filter);
    EXPECT_TRUE(contents.ok()) << contents.status();
    return contents.ok() ? ContentIds(*contents) : std::vector<int64_t>{};
  };
  EXPECT_THAT(ids({}), ElementsAre(folder.content_id, root_doc.content_id, inner.content_id,
                                   comment.content_id));
  EXPECT_THAT(ids({.include_deleted = true}),
              ElementsAre(folder.content_id, root_doc.content_id, inner.content_id,
                          comment.content_id, gone.content_id));
  EXPECT_THAT(ids({.parent_id = 0}), ElementsAre(folder.content_id, root_doc.content_id));
  EXPECT_THAT(ids({.parent_id = folder.content_id}), ElementsAre(inner.content_id));
  EXPECT_THAT(ids({.content_types = {ContentType::kFolder, ContentType::kHtmlDocument,
                                     ContentType::kFile, ContentType::kThread}}),
              ElementsAre(folder.content_id, root_doc.content_id, inner.content_id));
  EXPECT_THAT(ids({.content_types = {ContentType::kFile}}), IsEmpty());
  EXPECT_THAT(ids({.content_types = {ContentType::kFile}, .include_deleted = true}),
              ElementsAre(gone.content_id));
  EXPECT_EQ(store_->ListContents(99, {}).status(), absl::NotFoundError("workspace 99 not found"));
}

TEST_F(StoreContentTest, UnknownContentIdIsNotFound) {
  EXPECT_EQ(store_->GetContent(5).status(), absl::NotFoundError("content 5 not found"));
  EXPECT_EQ(store_->UpdateContent(5, {}).status(), absl::NotFoundError("content 5 not found"));
  EXPECT_EQ(store_->DeleteContent(5).status(), absl::NotFoundError("content 5 not found"));
}

TEST_F(StoreContentTest, UpdateContentSetsModifiedAndTheRevisionType) {
  ASSERT_OK_AND_ASSIGN(const Content folder, store_->CreateContent(Folder("F")));
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D")));
  auto update = [&](const ContentUpdate& u) {
    clock_.Advance(absl::Seconds(1));
    auto updated = store_->UpdateContent(doc.content_id, u);
    EXPECT_TRUE(updated.ok()) << updated.status();
    if (updated.ok()) {
      EXPECT_EQ(updated->modified, clock_.Now());
    }
    return updated.ok() ? *updated : Content{};
  };
  Content c = update({.label = "D2", .raw_content = "<p>new</p>"});
  EXPECT_EQ(c.revision_type, RevisionType::kEdition);
  EXPECT_EQ(c.label, "D2");
  EXPECT_EQ(c.raw_content, "<p>new</p>");
  EXPECT_EQ(c.created, FakeClock::Start());
  c = update({.status = ContentStatus::kClosedDeprecated});
  EXPECT_EQ(c.revision_type, RevisionType::kStatusUpdate);
  EXPECT_EQ(c.status, ContentStatus::kClosedDeprecated);
  c = update({.is_archived = true});
  EXPECT_EQ(c.revision_type, RevisionType::kArchiving);
  EXPECT_TRUE(c.is_archived);
  c = update({.is_archived = false});
  EXPECT_EQ(c.revision_type, RevisionType::kUnarchiving);
  c = update({.parent_id = folder.content_id});
  EXPECT_EQ(c.revision_type, RevisionType::kMove);
  EXPECT_EQ(c.parent_id, folder.content_id);
  c = update({.label = "D3", .parent_id = 0});
  EXPECT_EQ(c.revision_type, RevisionType::kEdition);
  EXPECT_EQ(c.parent_id, 0);
  c = update({});
  EXPECT_EQ(c.revision_type, RevisionType::kEdition);
  ASSERT_OK_AND_ASSIGN(const Content fetched, store_->GetContent(doc.content_id));
  EXPECT_EQ(fetched, c);
}

TEST_F(StoreContentTest, UpdatingAFileNameUpdatesItsExtension) {
  ASSERT_OK_AND_ASSIGN(const Content file, store_->CreateContent(File("a.mp4")));
  ASSERT_OK_AND_ASSIGN(const Content renamed,
                       store_->UpdateContent(file.content_id, {.file_name = "a.webm",
                                                               .file_mimetype = "video/webm"}));
  EXPECT_EQ(renamed.file_name, "a.webm");
  EXPECT_EQ(renamed.file_extension, ".webm");
  EXPECT_EQ(renamed.file_mimetype, "video/webm");
  EXPECT_EQ(renamed.label, "a");
  EXPECT_EQ(store_->UpdateContent(file.content_id, {.file_name = ""}).status(),
            absl::InvalidArgumentError("a file needs a file_name"));
}

TEST_F(StoreContentTest, UpdateContentRefusesBadChangesAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(const Content a, store_->CreateContent(Folder("A")));                // 1
  ASSERT_OK_AND_ASSIGN(const Content b, store_->CreateContent(Folder("B", a.content_id)));  // 2
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D")));            // 3
  ASSERT_OK_AND_ASSIGN(const Content comment,
                       store_->CreateContent(Comment(doc.content_id, "<p>c</p>")));  // 4
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(
      store_->UpdateContent(a.content_id, {.label = "A2", .parent_id = a.content_id}).status(),
      absl::FailedPreconditionError("content 1 cannot be its own parent"));
  EXPECT_EQ(store_->UpdateContent(a.content_id, {.parent_id = b.content_id}).status(),
            absl::FailedPreconditionError("content 1 cannot be moved under its descendant 2"));
  EXPECT_EQ(store_->UpdateContent(a.content_id, {.parent_id = doc.content_id}).status(),
            absl::FailedPreconditionError(
                "parent content 3 is a html-document: only folders hold contents"));
  EXPECT_EQ(store_->UpdateContent(a.content_id, {.parent_id = 77}).status(),
            absl::NotFoundError("parent content 77 not found"));
  EXPECT_EQ(store_->UpdateContent(a.content_id, {.label = ""}).status(),
            absl::InvalidArgumentError("label must not be empty"));
  EXPECT_EQ(
      store_->UpdateContent(a.content_id, {.file_name = "x/y"}).status(),
      absl::InvalidArgumentError("invalid file_name \"x/y\": it must not contain '/' or NUL"));
  EXPECT_EQ(store_->UpdateContent(comment.content_id, {.parent_id = a.content_id}).status(),
            absl::InvalidArgumentError("a comment cannot be moved"));
  EXPECT_EQ(store_->UpdateContent(comment.content_id, {.raw_content = ""}).status(),
            absl::InvalidArgumentError("a comment needs a raw_content"));
  for (const Content& before : {a, b, doc, comment}) {
    ASSERT_OK_AND_ASSIGN(const Content after, store_->GetContent(before.content_id));
    EXPECT_EQ(after, before);
  }
}

TEST_F(StoreContentTest, CommentTextCanBeEdited) {
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D")));
  ASSERT_OK_AND_ASSIGN(const Content comment,
                       store_->CreateContent(Comment(doc.content_id, "<p>c</p>")));
  ASSERT_OK_AND_ASSIGN(const Content edited,
                       store_->UpdateContent(comment.content_id, {.raw_content = "<p>d</p>",
                                                                  .parent_id = doc.content_id}));
  EXPECT_EQ(edited.raw_content, "<p>d</p>");
  EXPECT_EQ(edited.revision_type, RevisionType::kEdition);
}

TEST_F(StoreContentTest, DeleteContentIsSoftAndLeavesChildren) {
  ASSERT_OK_AND_ASSIGN(const Content folder, store_->CreateContent(Folder("F")));
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D", folder.content_id)));
  clock_.Advance(absl::Minutes(1));
  ASSERT_OK_AND_ASSIGN(const Content deleted, store_->DeleteContent(folder.content_id));
  Content expected = folder;
  expected.is_deleted = true;
  expected.revision_type = RevisionType::kDeletion;
  expected.modified = clock_.Now();
  EXPECT_EQ(deleted, expected);
  ASSERT_OK_AND_ASSIGN(const Content fetched, store_->GetContent(folder.content_id));
  EXPECT_EQ(fetched, expected);
  ASSERT_OK_AND_ASSIGN(const Content child, store_->GetContent(doc.content_id));
  EXPECT_EQ(child, doc);
  EXPECT_EQ(store_->DeleteContent(folder.content_id).status(),
            absl::FailedPreconditionError("content 1 is already deleted"));
  EXPECT_EQ(store_->UpdateContent(folder.content_id, {.label = "F2"}).status(),
            absl::FailedPreconditionError("content 1 is deleted"));
}

TEST_F(StoreContentTest, ContentOfADeletedWorkspaceCannotBeUpdated) {
  ASSERT_OK_AND_ASSIGN(const Content doc, store_->CreateContent(Document("D")));
  ASSERT_TRUE(store_->DeleteWorkspace(w1_.workspace_id).ok());
  EXPECT_EQ(store_->UpdateContent(doc.content_id, {.label = "D2"}).status(),
            absl::FailedPreconditionError("workspace 1 is deleted"));
  // Still readable and listable.
  EXPECT_TRUE(store_->GetContent(doc.content_id).ok());
  ASSERT_OK_AND_ASSIGN(const std::vector<Content> listed,
                       store_->ListContents(w1_.workspace_id, {}));
  EXPECT_THAT(ContentIds(listed), ElementsAre(doc.content_id));
}

// --- Plugin key-value store ------------------------------------------------------------

TEST_F(StoreTest, KvSetGetOverwriteAndDelete) {
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> missing, store_->KvGet("p", "k"));
  EXPECT_EQ(missing, std::nullopt);
  ASSERT_TRUE(store_->KvSet("p", "k", "one").ok());
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> one, store_->KvGet("p", "k"));
  EXPECT_EQ(one, "one");
  ASSERT_TRUE(store_->KvSet("p", "k", "two").ok());
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> two, store_->KvGet("p", "k"));
  EXPECT_EQ(two, "two");
  ASSERT_OK_AND_ASSIGN(const bool deleted, store_->KvDelete("p", "k"));
  EXPECT_TRUE(deleted);
  ASSERT_OK_AND_ASSIGN(const bool deleted_again, store_->KvDelete("p", "k"));
  EXPECT_FALSE(deleted_again);
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> gone, store_->KvGet("p", "k"));
  EXPECT_EQ(gone, std::nullopt);
}

TEST_F(StoreTest, KvValuesAreBytes) {
  const std::string binary("\0\x01\xff\0end", 7);
  ASSERT_TRUE(store_->KvSet("p", "bin", binary).ok());
  ASSERT_TRUE(store_->KvSet("p", "empty", "").ok());
  Reopen();
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> bin, store_->KvGet("p", "bin"));
  EXPECT_EQ(bin, binary);
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> empty, store_->KvGet("p", "empty"));
  EXPECT_EQ(empty, "");
}

TEST_F(StoreTest, KvPluginsSeeOnlyTheirOwnKeys) {
  ASSERT_TRUE(store_->KvSet("alpha", "shared", "a").ok());
  ASSERT_TRUE(store_->KvSet("beta", "shared", "b").ok());
  ASSERT_TRUE(store_->KvSet("beta", "only-beta", "b").ok());
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> a, store_->KvGet("alpha", "shared"));
  EXPECT_EQ(a, "a");
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> none, store_->KvGet("alpha", "only-beta"));
  EXPECT_EQ(none, std::nullopt);
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> alpha_keys, store_->KvList("alpha", ""));
  EXPECT_THAT(alpha_keys, ElementsAre("shared"));
  ASSERT_OK_AND_ASSIGN(const bool deleted, store_->KvDelete("alpha", "shared"));
  EXPECT_TRUE(deleted);
  ASSERT_OK_AND_ASSIGN(const std::optional<std::string> b, store_->KvGet("beta", "shared"));
  EXPECT_EQ(b, "b");
  ASSERT_OK_AND_ASSIGN(const bool not_theirs, store_->KvDelete("alpha", "only-beta"));
  EXPECT_FALSE(not_theirs);
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> beta_keys, store_->KvList("beta", ""));
  EXPECT_THAT(beta_keys, ElementsAre("only-beta", "shared"));
}

TEST_F(StoreTest, KvListReturnsKeysWithThePrefixInByteOrder) {
  for (const char* key : {"b", "a/2", "é", "a/10", "ab", "A", "a/1", "a", "a/"}) {
    ASSERT_TRUE(store_->KvSet("p", key, "v").ok()) << key;
  }
  ASSERT_TRUE(store_->KvSet("other", "a/3", "v").ok());
  auto list = [&](absl::string_view prefix) {
    auto keys = store_->KvList("p", prefix);
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : std::vector<std::string>{};
  };
  EXPECT_THAT(list(""), ElementsAre("A", "a", "a/", "a/1", "a/10", "a/2", "ab", "b", "é"));
  EXPECT_THAT(list("a/"), ElementsAre("a/", "a/1", "a/10", "a/2"));
  EXPECT_THAT(list("a/1"), ElementsAre("a/1", "a/10"));
  EXPECT_THAT(list("a"), ElementsAre("a", "a/", "a/1", "a/10", "a/2", "ab"));
  EXPECT_THAT(list("c"), IsEmpty());
  EXPECT_THAT(list("\xc3"), ElementsAre("é"));
}

TEST_F(StoreTest, KvListHandlesPrefixesEndingInFfBytes) {
  const std::string ff("x\xff", 2);
  const std::string ffff("x\xff\xff", 3);
  for (const std::string& key : {std::string("x"), ff, ffff, std::string("y")}) {
    ASSERT_TRUE(store_->KvSet("p", key, "v").ok());
  }
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> keys, store_->KvList("p", ff));
  EXPECT_THAT(keys, ElementsAre(ff, ffff));
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> all_ff,
                       store_->KvList("p", std::string("\xff", 1)));
  EXPECT_THAT(all_ff, IsEmpty());
}

TEST_F(StoreTest, KvRefusesBadNamesKeysAndValues) {
  EXPECT_EQ(store_->KvSet("", "k", "v"),
            absl::InvalidArgumentError("plugin name must not be empty"));
  EXPECT_EQ(store_->KvGet("", "k").status(),
            absl::InvalidArgumentError("plugin name must not be empty"));
  EXPECT_EQ(store_->KvList("", "").status(),
            absl::InvalidArgumentError("plugin name must not be empty"));
  EXPECT_EQ(store_->KvSet("p", "", "v"), absl::InvalidArgumentError("key must not be empty"));
  EXPECT_EQ(store_->KvDelete("p", "").status(),
            absl::InvalidArgumentError("key must not be empty"));
  EXPECT_EQ(store_->KvSet("p", std::string(1025, 'k'), "v"),
            absl::InvalidArgumentError("key is longer than 1024 bytes"));
  EXPECT_EQ(store_->KvSet("p", std::string("a\0b", 3), "v"),
            absl::InvalidArgumentError("key must not contain NUL bytes"));
  EXPECT_EQ(store_->KvSet("p", "k", std::string((1 << 20) + 1, 'v')),
            absl::InvalidArgumentError("value is longer than 1048576 bytes"));
  EXPECT_TRUE(store_->KvSet("p", std::string(1024, 'k'), std::string(1 << 20, 'v')).ok());
  ASSERT_OK_AND_ASSIGN(const std::vector<std::string> keys, store_->KvList("p", ""));
  EXPECT_THAT(keys, ElementsAre(std::string(1024, 'k')));
}

// --- Concurrency ---------------------------------------------------------------------

TEST_F(StoreTest, ConcurrentCallersFromSeveralThreadsAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  ASSERT_OK_AND_ASSIGN(const Workspace w, store_->CreateWorkspace({.label = "W"}));
  std::vector<std::thread> threads;
  std::vector<absl::Status> failures[kThreads];
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        NewUser user;
        user.username = absl::StrCat("user_", t, "_", i);
        user.password = "pw";
        auto created = store_->CreateUser(user);
        if (!created.ok()) {
          failures[t].push_back(created.status());
          continue;
        }
        for (absl::Status s :
             {store_->AddMembership(w.workspace_id, created->user_id, WorkspaceRole::kReader)
                  .status(),
              store_->KvSet(absl::StrCat("plugin", t), absl::StrCat(i), "v"),
              store_->VerifyPassword(user.username, "pw").status()}) {
          if (!s.ok()) failures[t].push_back(s);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_THAT(failures[t], IsEmpty()) << "thread " << t;
  ASSERT_OK_AND_ASSIGN(const std::vector<User> users, store_->ListUsers(false));
  EXPECT_THAT(users, SizeIs(kThreads * kPerThread));
  ASSERT_OK_AND_ASSIGN(const std::vector<Membership> members,
                       store_->ListWorkspaceMembers(w.workspace_id));
  EXPECT_THAT(members, SizeIs(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_OK_AND_ASSIGN(const std::vector<std::string> keys,
                         store_->KvList(absl::StrCat("plugin", t), ""));
    EXPECT_THAT(keys, SizeIs(kPerThread));
  }
}

}  // namespace
}  // namespace tracim::broker
