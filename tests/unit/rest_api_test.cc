// RestApi end to end: a real HttpServer on 127.0.0.1 (port 0) with the API
// bound, a real SQLite store in a per-test folder, a capturing event
// publisher, and a blocking Beast client. Events are published before the
// response is sent, so each check after a response sees its events.
#include "broker/backend/rest_api.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
// See broker/http/http_connection.h: a false -Wmaybe-uninitialized in
// Beast's parser.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#pragma GCC diagnostic pop
#include "broker/backend/api_error.h"
#include "broker/backend/hook_events.h"
#include "broker/http/http_router.h"
#include "broker/http/http_server.h"
#include "broker/store/sqlite_store.h"
#include "broker/store/testing/temp_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace pb = tracim::plugin::v1;
using tcp = asio::ip::tcp;

constexpr char kAdminPassword[] = "admin-secret";
constexpr char kPassword[] = "pass-word";

struct Reply {
  int status = 0;
  std::string body;
  std::string allow;
  std::string www_authenticate;
  std::string content_type;
  json::value json;  // null unless the body is JSON

  std::string Code() const { return std::string(json.at("code").as_string()); }
  std::string Message() const { return std::string(json.at("message").as_string()); }
  int64_t Id(const char* field) const { return json.at(field).as_int64(); }
  std::string Str(const char* field) const { return std::string(json.at(field).as_string()); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

Headers Basic(absl::string_view login, absl::string_view password) {
  return {{"Authorization", "Basic " + absl::Base64Escape(absl::StrCat(login, ":", password))}};
}

class RestApiTest : public ::testing::Test {
 protected:
  RestApiTest() {
    auto opened = SqliteStore::Open(dir_.path() / "db.sqlite3", TestStoreOptions(&clock_));
    EXPECT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    auto admin = store_->EnsureAdmin(kAdminPassword);
    EXPECT_TRUE(admin.ok() && admin->has_value());
    admin_id_ = (*admin)->user_id;

    api_ = std::make_unique<RestApi>(
        *store_,
        [this](pb::Event event) {
          absl::MutexLock lock(&mu_);
          publisher_threads_.push_back(std::this_thread::get_id());
          events_.push_back(std::move(event));
        },
        pool_.get_executor(), RestApiOptions{.now = [this] { return clock_.Now(); }});
    HttpRouter router;
    EXPECT_TRUE(api_->Register(router).ok());
    HttpServerOptions options;
    options.port = 0;
    server_ = std::make_unique<HttpServer>(io_, options, std::move(router));
    EXPECT_TRUE(server_->Start().ok());
    io_thread_ = std::thread([this] { io_.run(); });
  }

  ~RestApiTest() override {
    absl::Notification stopped;
    server_->Stop([&] { stopped.Notify(); });
    EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
    work_.reset();
    io_.stop();
    io_thread_.join();
    pool_.join();
    server_.reset();
  }

  Reply Call(const std::string& method, const std::string& target, const Headers& headers,
             std::optional<std::string> body = std::nullopt) {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, "test");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (body.has_value()) {
      req.set(http::field::content_type, "application/json");
      req.body() = *body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    Reply reply;
    reply.status = res.result_int();
    reply.body = res.body();
    reply.allow = std::string(res[http::field::allow]);
    reply.www_authenticate = std::string(res[http::field::www_authenticate]);
    reply.content_type = std::string(res[http::field::content_type]);
    boost::system::error_code ec;
    json::value parsed = json::parse(res.body(), ec);
    if (!ec) reply.json = parsed;
    return reply;
  }

  Reply AsAdmin(const std::string& method, const std::string& target,
                std::optional<std::string> body = std::nullopt) {
    return Call(method, target, Basic("admin@admin.admin", kAdminPassword), std::move(body));
  }

  // A user created through the store (no event), with kPassword.
  int64_t MakeUser(const std::string& username, Profile profile = Profile::kUsers) {
    auto user = store_->CreateUser({.email = username + "@x.org",
                                    .username = username,
                                    .profile = profile,
                                    .password = kPassword});
    EXPECT_TRUE(user.ok()) << user.status();
    return user->user_id;
  }

  Headers As(const std::string& username) { return Basic(username, kPassword); }

  // A workspace through the store with `members` (no event).
  int64_t MakeWorkspace(const std::vector<std::pair<int64_t, WorkspaceRole>>& members) {
    auto workspace = store_->CreateWorkspace({.label = "W"});
    EXPECT_TRUE(workspace.ok()) << workspace.status();
    for (const auto& [user_id, role] : members) {
      EXPECT_TRUE(store_->AddMembership(workspace->workspace_id, user_id, role).ok());
    }
    return workspace->workspace_id;
  }

  int64_t MakeContent(int64_t workspace_id, int64_t author_id,
                      ContentType type = ContentType::kHtmlDocument) {
    auto content = store_->CreateContent({.workspace_id = workspace_id,
                                          .content_type = type,
                                          .label = "Doc",
                                          .author_id = author_id});
    EXPECT_TRUE(content.ok()) << content.status();
    return content->content_id;
  }

  std::vector<pb::Event> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  std::vector<std::string> EventTypes() {
    std::vector<std::string> out;
    for (const pb::Event& e : Events()) out.push_back(e.event_type());
    return out;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  int64_t admin_id_ = 0;
  asio::thread_pool pool_{2};
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<RestApi> api_;
  std::unique_ptr<HttpServer> server_;
  std::thread io_thread_;
  absl::Mutex mu_;
  std::vector<pb::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> publisher_threads_ ABSL_GUARDED_BY(mu_);
};

void ExpectError(const Reply& reply, int status, const std::string& code,
                 const std::string& message) {
  EXPECT_EQ(reply.status, status) << reply.body;
  ASSERT_TRUE(reply.json.is_object()) << reply.body;
  EXPECT_EQ(reply.Code(), code);
  EXPECT_EQ(reply.Message(), message);
  EXPECT_EQ(reply.content_type, "application/json");
}

// --- Auth ------------------------------------------------------------------

TEST_F(RestApiTest, WhoamiAuthenticatesWithBasicEmail) {
  Reply r = AsAdmin("GET", "/api/auth/whoami");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Id("user_id"), admin_id_);
  EXPECT_EQ(r.Str("email"), "admin@admin.admin");
  EXPECT_EQ(r.Str("username"), "admin");
  EXPECT_EQ(r.Str("public_name"), "Global manager");
  EXPECT_EQ(r.Str("profile"), "administrators");
  EXPECT_EQ(r.Str("created"), "2024-01-02T03:04:05Z");
  EXPECT_EQ(r.content_type, "application/json");
}

TEST_F(RestApiTest, WhoamiAuthenticatesWithBasicUsername) {
  MakeUser("bob");
  Reply r = Call("GET", "/api/auth/whoami", As("bob"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Str("username"), "bob");
}

TEST_F(RestApiTest, WhoamiAuthenticatesWithApiKeyAndLogin) {
  int64_t bob = MakeUser("bob");
  auto key = store_->CreateApiKey(bob, "test");
  ASSERT_TRUE(key.ok());
  Reply r = Call("GET", "/api/auth/whoami",
                 {{"Tracim-Api-Key", key->key}, {"Tracim-Api-Login", "bob@x.org"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Id("user_id"), bob);
}

TEST_F(RestApiTest, RejectsMissingCredentialsWithBasicChallenge) {
  Reply r = Call("GET", "/api/auth/whoami", {});
  ExpectError(r, 401, "authentication_required",
              "authentication required: HTTP Basic or Tracim-Api-Key + Tracim-Api-Login");
  EXPECT_EQ(r.www_authenticate, "Basic realm=\"tracim\"");
}

TEST_F(RestApiTest, RejectsBadCredentials) {
  MakeUser("bob");
  Reply wrong = Call("GET", "/api/auth/whoami", Basic("bob", "nope"));
  ExpectError(wrong, 401, "invalid_credentials", "invalid login or password");
  EXPECT_EQ(wrong.www_authenticate, "Basic realm=\"tracim\"");
  ExpectError(Call("GET", "/api/auth/whoami", Basic("nobody@x.org", kPassword)), 401,
              "invalid_credentials", "invalid login or password");
  ExpectError(Call("GET", "/api/auth/whoami",
                   {{"Tracim-Api-Key", std::string(64, 'a')}, {"Tracim-Api-Login", "bob"}}),
              401, "invalid_credentials", "invalid login or API key");
  ExpectError(Call("GET", "/api/auth/whoami", {{"Tracim-Api-Key", "k"}}), 401,
              "invalid_credentials", "Tracim-Api-Key and Tracim-Api-Login must be sent together");
  ExpectError(Call("GET", "/api/auth/whoami", {{"Authorization", "Basic !!!"}}), 401,
              "invalid_credentials", "malformed Basic credentials");
  ExpectError(Call("GET", "/api/auth/whoami", {{"Authorization", "Bearer x"}}), 401,
              "invalid_credentials", "unsupported authorization scheme: use Basic");
}

// --- Routing ---------------------------------------------------------------

TEST_F(RestApiTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  ExpectError(AsAdmin("GET", "/api/nope"), 404, "not_found", "no endpoint at /api/nope");
  ExpectError(AsAdmin("GET", "/api/users/abc"), 404, "not_found", "no endpoint at /api/users/abc");
  Reply r = AsAdmin("PATCH", "/api/users");
  ExpectError(r, 405, "method_not_allowed", "method PATCH is not allowed on /api/users");
  EXPECT_EQ(r.allow, "GET, POST");
  EXPECT_EQ(AsAdmin("POST", "/api/workspaces/1/members/2").allow, "GET, PUT, DELETE");
}

// --- Users -----------------------------------------------------------------

TEST_F(RestApiTest, AdminCreatesUserAndUserCreatedFires) {
  clock_.Advance(absl::Seconds(10));
  Reply r = AsAdmin("POST", "/api/users",
                    R"({"email":"bob@x.org","username":"bob","public_name":"Bob",
                        "profile":"trusted-users","password":"pw12345","lang":"fr",
                        "timezone":"Europe/Paris"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t id = r.Id("user_id");
  EXPECT_GT(id, admin_id_);
  EXPECT_EQ(r.Str("public_name"), "Bob");
  EXPECT_EQ(r.Str("profile"), "trusted-users");
  EXPECT_EQ(r.Str("lang"), "fr");
  EXPECT_EQ(Call("GET", "/api/auth/whoami", Basic("bob", "pw12345")).status, 200);

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  const pb::Event& e = events[0];
  EXPECT_EQ(e.event_type(), "user.created");
  EXPECT_EQ(e.hook(), "on_user_created");
  EXPECT_EQ(e.event_id(), 0u);
  EXPECT_EQ(e.author().user_id(), admin_id_);
  EXPECT_EQ(e.author().email(), "admin@admin.admin");
  EXPECT_EQ(e.user().user_id(), id);
  EXPECT_EQ(e.user().public_name(), "Bob");
  EXPECT_EQ(e.user().profile(), "trusted-users");
  EXPECT_EQ(e.user().timezone(), "Europe/Paris");
  EXPECT_EQ(e.created().seconds(), absl::ToUnixSeconds(FakeClock::Start() + absl::Seconds(10)));
  EXPECT_FALSE(e.has_workspace());
}

TEST_F(RestApiTest, OnlyAdministratorsCreateAndListUsers) {
  MakeUser("bob", Profile::kTrustedUsers);
  ExpectError(Call("POST", "/api/users", As("bob"), R"({"email":"c@x.org"})"), 403, "forbidden",
              "only administrators may create users");
  ExpectError(Call("GET", "/api/users", As("bob")), 403, "forbidden",
              "only administrators may list users");
  Reply list = AsAdmin("GET", "/api/users");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json.as_array().size(), 2u);
  EXPECT_EQ(list.json.as_array()[1].at("username").as_string(), "bob");
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, InvalidBodiesAre400AndChangeNothing) {
  ExpectError(AsAdmin("POST", "/api/users", "{nope"), 400, "invalid_json",
              "request body is not valid JSON");
  ExpectError(AsAdmin("POST", "/api/users", ""), 400, "invalid_json",
              "request body is not valid JSON");
  ExpectError(AsAdmin("POST", "/api/users", "[1]"), 400, "invalid_json",
              "request body must be a JSON object");
  ExpectError(AsAdmin("POST", "/api/users", R"({"public_name":"x"})"), 400, "invalid_field",
              "missing field \"email\" or \"username\"");
  ExpectError(AsAdmin("POST", "/api/users", R"({"email":5})"), 400, "invalid_field",
              "field \"email\" must be a string");
  ExpectError(AsAdmin("POST", "/api/users", R"({"email":"a@x.org","profile":"root"})"), 400,
              "invalid_field",
              "invalid profile \"root\": expected nobody, users, trusted-users or administrators");
  ExpectError(AsAdmin("POST", "/api/users", R"({"email":"not-an-email"})"), 400, "invalid_field",
              "invalid email \"not-an-email\"");
  auto users = store_->ListUsers(true);
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1u);
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, DuplicateEmailOnCreateIs409) {
  MakeUser("bob");
  ExpectError(AsAdmin("POST", "/api/users", R"({"email":"BOB@x.org"})"), 409, "already_exists",
              "a user with email \"BOB@x.org\" already exists");
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, UsersReadThemselvesOnlyAdminsReadOthers) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  Reply self = Call("GET", absl::StrCat("/api/users/", bob), As("bob"));
  ASSERT_EQ(self.status, 200);
  EXPECT_EQ(self.Str("email"), "bob@x.org");
  ExpectError(Call("GET", absl::StrCat("/api/users/", carol), As("bob")), 403, "forbidden",
              "only administrators may access other users");
  EXPECT_EQ(AsAdmin("GET", absl::StrCat("/api/users/", carol)).status, 200);
  ExpectError(AsAdmin("GET", "/api/users/99"), 404, "not_found", "user 99 not found");
}

TEST_F(RestApiTest, UserUpdatesSelfAndUserModifiedFires) {
  int64_t bob = MakeUser("bob");
  Reply r = Call("PUT", absl::StrCat("/api/users/", bob), As("bob"),
                 R"({"public_name":"Bobby","lang":"de"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Str("public_name"), "Bobby");
  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_type(), "user.modified");
  EXPECT_EQ(events[0].hook(), "on_user_modified");
  EXPECT_EQ(events[0].author().user_id(), bob);
  EXPECT_EQ(events[0].user().public_name(), "Bobby");
  EXPECT_EQ(events[0].user().lang(), "de");

  ExpectError(
      Call("PUT", absl::StrCat("/api/users/", bob), As("bob"), R"({"profile":"administrators"})"),
      403, "forbidden", "only administrators may change profile or is_active");
  Reply promoted =
      AsAdmin("PUT", absl::StrCat("/api/users/", bob), R"({"profile":"trusted-users"})");
  EXPECT_EQ(promoted.Str("profile"), "trusted-users");
  ExpectError(AsAdmin("PUT", "/api/users/99", "{}"), 404, "not_found", "user 99 not found");
}

TEST_F(RestApiTest, DuplicateEmailOnUpdateLeavesUserIntactAndPublishesNothing) {
  int64_t bob = MakeUser("bob");
  MakeUser("carol");
  auto before = store_->GetUser(bob);
  ASSERT_TRUE(before.ok());
  ExpectError(AsAdmin("PUT", absl::StrCat("/api/users/", bob),
                      R"({"public_name":"Changed","email":"carol@x.org"})"),
              409, "already_exists", "a user with email \"carol@x.org\" already exists");
  auto after = store_->GetUser(bob);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, AdminDeletesUserAndUserDeletedFires) {
  int64_t bob = MakeUser("bob");
  ExpectError(Call("DELETE", absl::StrCat("/api/users/", bob), As("bob")), 403, "forbidden",
              "only administrators may delete users");
  ExpectError(AsAdmin("DELETE", absl::StrCat("/api/users/", admin_id_)), 403, "forbidden",
              "administrators cannot delete themselves");
  Reply r = AsAdmin("DELETE", absl::StrCat("/api/users/", bob));
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_type(), "user.deleted");
  EXPECT_EQ(events[0].hook(), "on_user_deleted");
  EXPECT_EQ(events[0].user().user_id(), bob);
  EXPECT_TRUE(events[0].user().is_deleted());
  ExpectError(Call("GET", "/api/auth/whoami", As("bob")), 401, "invalid_credentials",
              "invalid login or password");
  ExpectError(AsAdmin("DELETE", absl::StrCat("/api/users/", bob)), 400, "failed_precondition",
              absl::StrCat("user ", bob, " is already deleted"));
  ExpectError(AsAdmin("DELETE", "/api/users/99"), 404, "not_found", "user 99 not found");
  EXPECT_EQ(Events().size(), 1u);
}

// --- Workspaces ------------------------------------------------------------

TEST_F(RestApiTest, TrustedUserCreatesWorkspaceAndBecomesItsManager) {
  int64_t bob = MakeUser("bob", Profile::kTrustedUsers);
  Reply r = Call("POST", "/api/workspaces", As("bob"),
                 R"({"label":"Team","description":"d","access_type":"open",
                     "default_user_role":"contributor"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t ws = r.Id("workspace_id");
  EXPECT_EQ(r.Str("label"), "Team");
  EXPECT_EQ(r.Str("access_type"), "open");
  EXPECT_EQ(r.Str("default_user_role"), "contributor");
  EXPECT_TRUE(r.json.at("parent_id").is_null());
  EXPECT_EQ(r.Id("owner_id"), bob);

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event_type(), "workspace.created");
  EXPECT_EQ(events[0].hook(), "on_workspace_created");
  EXPECT_EQ(events[0].workspace().workspace_id(), ws);
  EXPECT_EQ(events[0].workspace().access_type(), "open");
  EXPECT_EQ(events[0].author().user_id(), bob);
  EXPECT_EQ(events[1].event_type(), "workspace_member.created");
  EXPECT_EQ(events[1].hook(), "on_user_config_in_workspace_created");
  EXPECT_EQ(events[1].member().role(), "workspace-manager");
  EXPECT_EQ(events[1].member().user().username(), "bob");
  EXPECT_EQ(events[1].user().user_id(), bob);
  EXPECT_EQ(events[1].workspace().workspace_id(), ws);
  auto membership = store_->GetMembership(ws, bob);
  ASSERT_TRUE(membership.ok());
  EXPECT_EQ(membership->role, WorkspaceRole::kWorkspaceManager);
}

TEST_F(RestApiTest, WorkspaceCreationNeedsTrustedUsersAndALabel) {
  MakeUser("bob");
  ExpectError(Call("POST", "/api/workspaces", As("bob"), R"({"label":"x"})"), 403, "forbidden",
              "only trusted-users and administrators may create workspaces");
  ExpectError(AsAdmin("POST", "/api/workspaces", R"({"description":"x"})"), 400, "invalid_field",
              "missing field \"label\"");
  ExpectError(AsAdmin("POST", "/api/workspaces", R"({"label":"x","access_type":"public"})"), 400,
              "invalid_field",
              "invalid access_type \"public\": expected confidential, on_request or open");
  ExpectError(AsAdmin("POST", "/api/workspaces", R"({"label":"x","parent_id":42})"), 404,
              "not_found", "parent workspace 42 not found");
  auto all = store_->ListWorkspaces(true);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, WorkspacesAreVisibleToMembersAndAdministrators) {
  int64_t bob = MakeUser("bob");
  int64_t mine = MakeWorkspace({{bob, WorkspaceRole::kReader}});
  int64_t other = MakeWorkspace({});
  Reply list = Call("GET", "/api/workspaces", As("bob"));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json.as_array().size(), 1u);
  EXPECT_EQ(list.json.as_array()[0].at("workspace_id").as_int64(), mine);
  EXPECT_EQ(AsAdmin("GET", "/api/workspaces").json.as_array().size(), 2u);
  EXPECT_EQ(Call("GET", absl::StrCat("/api/workspaces/", mine), As("bob")).status, 200);
  ExpectError(Call("GET", absl::StrCat("/api/workspaces/", other), As("bob")), 403, "forbidden",
              absl::StrCat("you are not a member of workspace ", other));
  ExpectError(AsAdmin("GET", "/api/workspaces/99"), 404, "not_found", "workspace 99 not found");
}

TEST_F(RestApiTest, WorkspaceManagersUpdateAndDeleteWorkspaces) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  int64_t ws = MakeWorkspace(
      {{bob, WorkspaceRole::kWorkspaceManager}, {carol, WorkspaceRole::kContentManager}});
  const std::string path = absl::StrCat("/api/workspaces/", ws);
  ExpectError(Call("PUT", path, As("carol"), R"({"label":"x"})"), 403, "forbidden",
              absl::StrCat("this requires the workspace-manager role in workspace ", ws));
  Reply r = Call("PUT", path, As("bob"), R"({"label":"Renamed","access_type":"on_request"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Str("label"), "Renamed");
  EXPECT_EQ(r.Str("access_type"), "on_request");
  ExpectError(Call("PUT", path, As("bob"), R"({"label":""})"), 400, "invalid_field",
              "label must not be empty");
  ExpectError(Call("DELETE", path, As("carol")), 403, "forbidden",
              absl::StrCat("this requires the workspace-manager role in workspace ", ws));
  EXPECT_EQ(Call("DELETE", path, As("bob")).status, 204);

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event_type(), "workspace.modified");
  EXPECT_EQ(events[0].hook(), "on_workspace_modified");
  EXPECT_EQ(events[0].workspace().label(), "Renamed");
  EXPECT_EQ(events[1].event_type(), "workspace.deleted");
  EXPECT_EQ(events[1].hook(), "on_workspace_deleted");
  EXPECT_TRUE(events[1].workspace().is_deleted());
  EXPECT_EQ(events[1].author().user_id(), bob);
}

// --- Members ---------------------------------------------------------------

TEST_F(RestApiTest, ManagersAddUpdateAndRemoveMembersWithHooks) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kWorkspaceManager}});
  const std::string members = absl::StrCat("/api/workspaces/", ws, "/members");

  Reply added = Call("POST", members, As("bob"),
                     absl::StrCat(R"({"user_id":)", carol, R"(,"role":"contributor"})"));
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(added.Id("user_id"), carol);
  EXPECT_EQ(added.Id("workspace_id"), ws);
  EXPECT_EQ(added.Str("role"), "contributor");
  EXPECT_EQ(added.json.at("user").at("username").as_string(), "carol");

  Reply list = Call("GET", members, As("carol"));
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.json.as_array().size(), 2u);
  Reply one = Call("GET", absl::StrCat(members, "/", carol), As("carol"));
  EXPECT_EQ(one.Str("role"), "contributor");

  Reply updated =
      Call("PUT", absl::StrCat(members, "/", carol), As("bob"), R"({"role":"content-manager"})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.Str("role"), "content-manager");
  EXPECT_EQ(Call("DELETE", absl::StrCat(members, "/", carol), As("bob")).status, 204);
  ExpectError(Call("GET", absl::StrCat(members, "/", carol), As("bob")), 404, "not_found",
              absl::StrCat("user ", carol, " is not a member of workspace ", ws));

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 3u);
  const char* types[] = {"workspace_member.created", "workspace_member.modified",
                         "workspace_member.deleted"};
  const char* hooks[] = {"on_user_config_in_workspace_created",
                         "on_user_config_in_workspace_modified",
                         "on_user_config_in_workspace_deleted"};
  const char* roles[] = {"contributor", "content-manager", "content-manager"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].event_type(), types[i]);
    EXPECT_EQ(events[i].hook(), hooks[i]);
    EXPECT_EQ(events[i].member().user_id(), carol);
    EXPECT_EQ(events[i].member().workspace_id(), ws);
    EXPECT_EQ(events[i].member().role(), roles[i]);
    EXPECT_EQ(events[i].member().user().email(), "carol@x.org");
    EXPECT_EQ(events[i].user().user_id(), carol);
    EXPECT_EQ(events[i].workspace().workspace_id(), ws);
    EXPECT_EQ(events[i].author().user_id(), bob);
  }
}

TEST_F(RestApiTest, MemberErrorsChangeNothing) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  int64_t ws = MakeWorkspace(
      {{bob, WorkspaceRole::kWorkspaceManager}, {carol, WorkspaceRole::kContentManager}});
  const std::string members = absl::StrCat("/api/workspaces/", ws, "/members");
  ExpectError(Call("POST", members, As("bob"),
                   absl::StrCat(R"({"user_id":)", carol, R"(,"role":"reader"})")),
              409, "already_exists",
              absl::StrCat("user ", carol, " is already a member of workspace ", ws));
  ExpectError(Call("POST", members, As("carol"),
                   absl::StrCat(R"({"user_id":)", bob, R"(,"role":"reader"})")),
              403, "forbidden",
              absl::StrCat("this requires the workspace-manager role in workspace ", ws));
  ExpectError(Call("POST", members, As("bob"), R"({"user_id":99,"role":"reader"})"), 404,
              "not_found", "user 99 not found");
  ExpectError(Call("POST", members, As("bob"), R"({"role":"reader"})"), 400, "invalid_field",
              "missing field \"user_id\"");
  ExpectError(
      Call("PUT", absl::StrCat(members, "/", carol), As("bob"), R"({"role":"owner"})"), 400,
      "invalid_field",
      "invalid role \"owner\": expected reader, contributor, content-manager or workspace-manager");
  auto role = store_->GetMembership(ws, carol);
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->role, WorkspaceRole::kContentManager);
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, MembersMayLeaveAndUsersAddedByEmail) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kWorkspaceManager}});
  const std::string members = absl::StrCat("/api/workspaces/", ws, "/members");
  Reply added = Call("POST", members, As("bob"), R"({"user_email":"carol@x.org","role":"reader"})");
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(added.Id("user_id"), carol);
  EXPECT_EQ(Call("DELETE", absl::StrCat(members, "/", carol), As("carol")).status, 204);
  EXPECT_EQ(EventTypes(),
            (std::vector<std::string>{"workspace_member.created", "workspace_member.deleted"}));
}

// --- Contents and comments ---------------------------------------------------

TEST_F(RestApiTest, ContributorCreatesFileAndContentCreatedFileFires) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kContributor}});
  Reply r = Call("POST", absl::StrCat("/api/workspaces/", ws, "/contents"), As("bob"),
                 R"({"content_type":"file","file_name":"clip.mp4","file_mimetype":"video/mp4"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const int64_t id = r.Id("content_id");
  EXPECT_EQ(r.Str("content_type"), "file");
  EXPECT_EQ(r.Str("label"), "clip");
  EXPECT_EQ(r.Str("file_extension"), ".mp4");
  EXPECT_EQ(r.Id("workspace_id"), ws);
  EXPECT_EQ(r.Id("author_id"), bob);

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_type(), "content.created.file");
  EXPECT_EQ(events[0].hook(), "on_content_created");
  EXPECT_EQ(events[0].content().content_id(), id);
  EXPECT_EQ(events[0].content().file_name(), "clip.mp4");
  EXPECT_EQ(events[0].content().file_mimetype(), "video/mp4");
  EXPECT_EQ(events[0].content().author().username(), "bob");
  EXPECT_EQ(events[0].content().revision_type(), "creation");
  EXPECT_EQ(events[0].workspace().workspace_id(), ws);
  EXPECT_EQ(events[0].author().user_id(), bob);
}

TEST_F(RestApiTest, ContentCreationValidatesAndNeedsContributor) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kReader}});
  const std::string contents = absl::StrCat("/api/workspaces/", ws, "/contents");
  ExpectError(Call("POST", contents, As("bob"), R"({"content_type":"folder","label":"F"})"), 403,
              "forbidden", absl::StrCat("this requires the contributor role in workspace ", ws));
  ExpectError(AsAdmin("POST", contents, R"({"label":"F"})"), 400, "invalid_field",
              "missing field \"content_type\"");
  ExpectError(AsAdmin("POST", contents, R"({"content_type":"file"})"), 400, "invalid_field",
              "a file needs a file_name");
  ExpectError(AsAdmin("POST", contents, R"({"content_type":"comment","raw_content":"x"})"), 400,
              "invalid_field",
              "comments are created with POST "
              "/api/workspaces/{workspace_id}/contents/{content_id}/comments");
  ExpectError(AsAdmin("POST", "/api/workspaces/99/contents", R"({"content_type":"folder"})"), 404,
              "not_found", "workspace 99 not found");
  auto list = store_->ListContents(ws, {});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, ContentsAreReadListedUpdatedAndDeletedWithHooks) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kContributor}});
  const std::string contents = absl::StrCat("/api/workspaces/", ws, "/contents");
  Reply folder = Call("POST", contents, As("bob"), R"({"content_type":"folder","label":"F"})");
  ASSERT_EQ(folder.status, 200) << folder.body;
  Reply doc = Call("POST", contents, As("bob"),
                   absl::StrCat(R"({"content_type":"html-document","label":"D","parent_id":)",
                                folder.Id("content_id"), R"(,"raw_content":"<p>x</p>"})"));
  ASSERT_EQ(doc.status, 200) << doc.body;
  const std::string doc_path = absl::StrCat(contents, "/", doc.Id("content_id"));

  Reply got = Call("GET", doc_path, As("bob"));
  EXPECT_EQ(got.Str("raw_content"), "<p>x</p>");
  EXPECT_EQ(got.Id("parent_id"), folder.Id("content_id"));
  EXPECT_EQ(Call("GET", contents, As("bob")).json.as_array().size(), 2u);
  Reply root = Call("GET", contents + "?parent_id=0", As("bob"));
  ASSERT_EQ(root.json.as_array().size(), 1u);
  EXPECT_EQ(root.json.as_array()[0].at("content_type").as_string(), "folder");
  EXPECT_EQ(Call("GET", contents + "?content_type=html-document", As("bob")).json.as_array().size(),
            1u);
  ExpectError(Call("GET", contents + "?parent_id=x", As("bob")), 400, "invalid_field",
              "query parameter \"parent_id\" must be a non-negative integer");

  Reply updated = Call("PUT", doc_path, As("bob"), R"({"label":"D2","raw_content":"<p>y</p>"})");
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(updated.Str("label"), "D2");
  EXPECT_EQ(updated.Str("revision_type"), "edition");
  EXPECT_EQ(Call("DELETE", doc_path, As("bob")).status, 204);
  EXPECT_TRUE(Call("GET", doc_path, As("bob")).json.at("is_deleted").as_bool());

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].event_type(), "content.created.folder");
  EXPECT_EQ(events[1].event_type(), "content.created.html-document");
  EXPECT_EQ(events[2].event_type(), "content.modified.html-document");
  EXPECT_EQ(events[2].hook(), "on_content_modified");
  EXPECT_EQ(events[2].content().label(), "D2");
  EXPECT_EQ(events[3].event_type(), "content.deleted.html-document");
  EXPECT_EQ(events[3].hook(), "on_content_deleted");
  EXPECT_TRUE(events[3].content().is_deleted());
  EXPECT_EQ(events[3].content().revision_type(), "deletion");
  EXPECT_EQ(events[3].workspace().workspace_id(), ws);
}

TEST_F(RestApiTest, OthersContentsNeedContentManager) {
  int64_t bob = MakeUser("bob");
  int64_t carol = MakeUser("carol");
  int64_t dave = MakeUser("dave");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kContributor},
                              {carol, WorkspaceRole::kContributor},
                              {dave, WorkspaceRole::kContentManager}});
  int64_t doc = MakeContent(ws, bob);
  const std::string path = absl::StrCat("/api/workspaces/", ws, "/contents/", doc);
  ExpectError(Call("PUT", path, As("carol"), R"({"label":"x"})"), 403, "forbidden",
              absl::StrCat("this requires the content-manager role in workspace ", ws));
  ExpectError(Call("DELETE", path, As("carol")), 403, "forbidden",
              absl::StrCat("this requires the content-manager role in workspace ", ws));
  Reply r = Call("PUT", path, As("dave"), R"({"label":"By Dave"})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].author().user_id(), dave);
  EXPECT_EQ(events[0].content().author().user_id(), bob);
  EXPECT_EQ(events[0].content().author().username(), "bob");
}

TEST_F(RestApiTest, ContentOfAnotherWorkspaceIsNotFound) {
  int64_t ws1 = MakeWorkspace({});
  int64_t ws2 = MakeWorkspace({});
  int64_t doc = MakeContent(ws1, admin_id_);
  ExpectError(AsAdmin("GET", absl::StrCat("/api/workspaces/", ws2, "/contents/", doc)), 404,
              "not_found", absl::StrCat("content ", doc, " not found in workspace ", ws2));
  ExpectError(AsAdmin("GET", absl::StrCat("/api/workspaces/", ws1, "/contents/99")), 404,
              "not_found", "content 99 not found");
}

TEST_F(RestApiTest, CommentsAreCreatedAndListedAsContents) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kContributor}});
  int64_t doc = MakeContent(ws, admin_id_);
  const std::string comments = absl::StrCat("/api/workspaces/", ws, "/contents/", doc, "/comments");
  Reply r = Call("POST", comments, As("bob"), R"({"raw_content":"<p>nice</p>"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Str("content_type"), "comment");
  EXPECT_EQ(r.Id("parent_id"), doc);
  ExpectError(Call("POST", comments, As("bob"), "{}"), 400, "invalid_field",
              "missing field \"raw_content\"");
  Reply list = Call("GET", comments, As("bob"));
  ASSERT_EQ(list.json.as_array().size(), 1u);
  EXPECT_EQ(list.json.as_array()[0].at("raw_content").as_string(), "<p>nice</p>");

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_type(), "content.created.comment");
  EXPECT_EQ(events[0].hook(), "on_content_created");
  EXPECT_EQ(events[0].content().parent_id(), doc);
  EXPECT_EQ(events[0].content().raw_content(), "<p>nice</p>");
  EXPECT_EQ(events[0].workspace().workspace_id(), ws);
}

TEST_F(RestApiTest, ReadsPublishNoEvents) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kReader}});
  int64_t doc = MakeContent(ws, admin_id_);
  const std::string w = absl::StrCat("/api/workspaces/", ws);
  for (const std::string& path :
       {std::string("/api/auth/whoami"), std::string("/api/users"),
        absl::StrCat("/api/users/", bob), std::string("/api/workspaces"), w, w + "/members",
        absl::StrCat(w, "/members/", bob), w + "/contents", absl::StrCat(w, "/contents/", doc),
        absl::StrCat(w, "/contents/", doc, "/comments")}) {
    EXPECT_EQ(AsAdmin("GET", path).status, 200) << path;
  }
  EXPECT_TRUE(Events().empty());
}

TEST_F(RestApiTest, UpdatesThatChangeNothingPublishNothing) {
  int64_t bob = MakeUser("bob");
  int64_t ws = MakeWorkspace({{bob, WorkspaceRole::kReader}});
  EXPECT_EQ(AsAdmin("PUT", absl::StrCat("/api/users/", bob), R"({"username":"bob"})").status, 200);
  EXPECT_EQ(AsAdmin("PUT", absl::StrCat("/api/workspaces/", ws), R"({"label":"W"})").status, 200);
  EXPECT_EQ(
      AsAdmin("PUT", absl::StrCat("/api/workspaces/", ws, "/members/", bob), R"({"role":"reader"})")
          .status,
      200);
  EXPECT_TRUE(Events().empty());
  // A new password is a change, though the user looks the same.
  EXPECT_EQ(AsAdmin("PUT", absl::StrCat("/api/users/", bob), R"({"password":"new-pass"})").status,
            200);
  EXPECT_EQ(EventTypes(), std::vector<std::string>{"user.modified"});
  EXPECT_EQ(Call("GET", "/api/auth/whoami", Basic("bob", "new-pass")).status, 200);
}

TEST_F(RestApiTest, ConcurrentWritesPublishInCommitOrderOffTheIoThread) {
  constexpr int kClients = 4;
  constexpr int kUsersPerClient = 5;
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kUsersPerClient; ++i) {
        Reply r =
            AsAdmin("POST", "/api/users", absl::StrCat(R"({"username":"u)", c, "_", i, R"("})"));
        if (r.status != 200) ++failures;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), static_cast<size_t>(kClients * kUsersPerClient));
  // Ids are assigned at commit: publication order must follow them.
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LT(events[i - 1].user().user_id(), events[i].user().user_id());
  }
  absl::MutexLock lock(&mu_);
  for (std::thread::id id : publisher_threads_) EXPECT_NE(id, io_thread_.get_id());
}

TEST_F(RestApiTest, ApiKeyAuthorsEventsLikeBasic) {
  int64_t bob = MakeUser("bob", Profile::kTrustedUsers);
  auto key = store_->CreateApiKey(bob, "ci");
  ASSERT_TRUE(key.ok());
  Reply r = Call("POST", "/api/workspaces",
                 {{"Tracim-Api-Key", key->key}, {"Tracim-Api-Login", "bob"}}, R"({"label":"K"})");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<pb::Event> events = Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].author().user_id(), bob);
  EXPECT_EQ(events[0].author().username(), "bob");
}

TEST(RestApiErrorResponse, MapsEveryStoreCodeToItsHttpStatusAndStableCode) {
  struct Case {
    absl::Status status;
    int http;
    const char* code;
    const char* message;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("m"), 400, "invalid_field", "m"},
      {WithErrorCode(absl::InvalidArgumentError("m"), kInvalidJson), 400, "invalid_json", "m"},
      {absl::FailedPreconditionError("m"), 400, "failed_precondition", "m"},
      {absl::UnauthenticatedError("m"), 401, "invalid_credentials", "m"},
      {absl::PermissionDeniedError("m"), 403, "forbidden", "m"},
      {absl::NotFoundError("m"), 404, "not_found", "m"},
      {absl::AlreadyExistsError("m"), 409, "already_exists", "m"},
      {absl::UnavailableError("database is locked"), 503, "unavailable", "database is locked"},
      {absl::InternalError("sqlite: disk I/O error"), 500, "internal_error", "internal error"},
      {absl::UnknownError("x"), 500, "internal_error", "internal error"},
  };
  for (const Case& c : cases) {
    HttpResponse response = ErrorResponse(c.status);
    EXPECT_EQ(response.status, c.http) << c.status;
    EXPECT_EQ(response.body, JsonErrorBody(c.code, c.message)) << c.status;
    EXPECT_EQ(response.headers.Get("Content-Type").value_or(""), "application/json");
    EXPECT_EQ(response.headers.Has("WWW-Authenticate"), c.http == 401) << c.status;
  }
}

}  // namespace
}  // namespace tracim::broker
