// The SDK's HostApi client against a real gRPC server on a Unix socket
// serving a fake HostApi: the secret metadata and the deadline arrive with
// every call, answers and errors map through, and PluginHarness points a
// plugin's context().host_api() at a fake.
#include "tracim/plugin/host_api.h"

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/testing/plugin_harness.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::PluginHarness;

constexpr char kSecret[] = "s3cret";

// What the fake saw of one call.
struct Seen {
  std::string method;
  std::string secret;
  // The time left before the call's deadline when it arrived.
  absl::Duration time_left;
};

// A HostApi with canned answers: user 1 is bob, anything else NOT_FOUND;
// workspace 999 holds the call until released (deadline tests).
class FakeHostApi final : public v1::HostApi::Service {
 public:
  ~FakeHostApi() override { Release(); }

  std::vector<Seen> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  // Lets held calls finish. Test thread only.
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

  grpc::Status GetCurrentUser(grpc::ServerContext* context, const v1::GetCurrentUserRequest* r,
                              v1::User* response) override {
    Record(context, "GetCurrentUser");
    if (r->request_id() != "req-1") {
      return {grpc::StatusCode::NOT_FOUND,
              absl::StrCat("no request ", r->request_id(),
                           " in flight for this plugin, or it is anonymous")};
    }
    *response = Bob();
    return grpc::Status::OK;
  }
  grpc::Status GetUser(grpc::ServerContext* context, const v1::GetUserRequest* r,
                       v1::User* response) override {
    Record(context, "GetUser");
    if (r->user_id() != 1) {
      return {grpc::StatusCode::NOT_FOUND, absl::StrCat("user ", r->user_id(), " not found")};
    }
    *response = Bob();
    return grpc::Status::OK;
  }
  grpc::Status ListUsers(grpc::ServerContext* context, const v1::ListUsersRequest*,
                         v1::ListUsersResponse* response) override {
    Record(context, "ListUsers");
    *response->add_users() = Bob();
    response->add_users()->set_username("carol");
    return grpc::Status::OK;
  }
  grpc::Status GetWorkspace(grpc::ServerContext* context, const v1::GetWorkspaceRequest* r,
                            v1::Workspace* response) override {
    Record(context, "GetWorkspace");
    if (r->workspace_id() == 999) release_.WaitForNotificationWithTimeout(absl::Seconds(30));
    response->set_workspace_id(r->workspace_id());
    response->set_label("W");
    return grpc::Status::OK;
  }
  grpc::Status ListWorkspaces(grpc::ServerContext* context, const v1::ListWorkspacesRequest*,
                              v1::ListWorkspacesResponse* response) override {
    Record(context, "ListWorkspaces");
    response->add_workspaces()->set_label("A");
    response->add_workspaces()->set_label("B");
    return grpc::Status::OK;
  }
  grpc::Status ListMembers(grpc::ServerContext* context, const v1::ListMembersRequest* r,
                           v1::ListMembersResponse* response) override {
    Record(context, "ListMembers");
    v1::Membership* member = response->add_members();
    member->set_workspace_id(r->workspace_id());
    member->set_user_id(1);
    member->set_role("reader");
    return grpc::Status::OK;
  }
  grpc::Status AddMember(grpc::ServerContext* context, const v1::AddMemberRequest* r,
                         v1::Membership* response) override {
    Record(context, "AddMember");
    if (r->role() == "owner") {
      return {grpc::StatusCode::INVALID_ARGUMENT, "invalid workspace role \"owner\""};
    }
    response->set_workspace_id(r->workspace_id());
    response->set_user_id(r->user_id());
    response->set_role(r->role().empty() ? "reader" : r->role());
    return grpc::Status::OK;
  }
  grpc::Status GetContent(grpc::ServerContext* context, const v1::GetContentRequest* r,
                          v1::Content* response) override {
    Record(context, "GetContent");
    response->set_content_id(r->content_id());
    return grpc::Status::OK;
  }
  grpc::Status ListContents(grpc::ServerContext* context, const v1::ListContentsRequest* r,
                            v1::ListContentsResponse* response) override {
    Record(context, "ListContents");
    response->add_contents()->set_parent_id(r->parent_id());
    response->add_contents()->set_workspace_id(r->workspace_id());
    return grpc::Status::OK;
  }
  grpc::Status CreateComment(grpc::ServerContext* context, const v1::CreateCommentRequest* r,
                             v1::Content* response) override {
    Record(context, "CreateComment");
    if (r->author_id() == 7) {
      return {grpc::StatusCode::PERMISSION_DENIED, "user 7 is not a member of workspace 2"};
    }
    response->set_content_id(100);
    response->set_parent_id(r->content_id());
    response->set_raw_content(r->raw_content());
    response->mutable_author()->set_user_id(r->author_id() == 0 ? 50 : r->author_id());
    return grpc::Status::OK;
  }
  grpc::Status KvGet(grpc::ServerContext* context, const v1::KvGetRequest* r,
                     v1::KvGetResponse* response) override {
    Record(context, "KvGet");
    absl::MutexLock lock(&mu_);
    auto it = kv_.find(r->key());
    response->set_found(it != kv_.end());
    if (it != kv_.end()) response->set_value(it->second);
    return grpc::Status::OK;
  }
  grpc::Status KvSet(grpc::ServerContext* context, const v1::KvSetRequest* r,
                     v1::KvSetResponse*) override {
    Record(context, "KvSet");
    if (r->key().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "key must not be empty"};
    absl::MutexLock lock(&mu_);
    kv_[r->key()] = r->value();
    return grpc::Status::OK;
  }
  grpc::Status KvDelete(grpc::ServerContext* context, const v1::KvDeleteRequest* r,
                        v1::KvDeleteResponse* response) override {
    Record(context, "KvDelete");
    absl::MutexLock lock(&mu_);
    response->set_deleted(kv_.erase(r->key()) > 0);
    return grpc::Status::OK;
  }
  grpc::Status KvList(grpc::ServerContext* context, const v1::KvListRequest* r,
                      v1::KvListResponse* response) override {
    Record(context, "KvList");
    absl::MutexLock lock(&mu_);
    for (const auto& [key, value] : kv_) {
      if (key.compare(0, r->prefix().size(), r->prefix()) == 0) response->add_keys(key);
    }
    return grpc::Status::OK;
  }

 private:
  static v1::User Bob() {
    v1::User user;
    user.set_user_id(1);
    user.set_username("bob");
    return user;
  }

  void Record(grpc::ServerContext* context, const char* method) {
    std::string secret;
    auto it = context->client_metadata().find(v1::kSecretMetadataKey);
    if (it != context->client_metadata().end()) secret.assign(it->second.data(), it->second.size());
    absl::MutexLock lock(&mu_);
    seen_.push_back({method, secret, absl::FromChrono(context->deadline()) - absl::Now()});
  }

  absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> kv_ ABSL_GUARDED_BY(mu_);
  absl::Notification release_;
};

class HostApiTest : public ::testing::Test {
 protected:
  HostApiTest() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
  }
  ~HostApiTest() override {
    fake_.Release();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  std::vector<std::string> Methods() {
    std::vector<std::string> out;
    for (const Seen& s : fake_.seen()) out.push_back(s.method);
    return out;
  }
  std::vector<std::string> Secrets() {
    std::vector<std::string> out;
    for (const Seen& s : fake_.seen()) out.push_back(s.secret);
    return out;
  }

  ::tracim::testing::TempDir dir_;
  const std::string socket_ = (dir_.path() / "broker.sock").string();
  FakeHostApi fake_;
  std::unique_ptr<grpc::Server> server_;
  HostApi host_ = HostApi::Connect(socket_, kSecret);
};

TEST_F(HostApiTest, EveryMethodReachesTheBrokerWithTheSecretAndMapsTheAnswer) {
  EXPECT_EQ(host_.GetCurrentUser("req-1")->username(), "bob");
  EXPECT_EQ(host_.GetUser(1)->username(), "bob");
  auto users = host_.ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[1].username(), "carol");
  EXPECT_EQ(host_.GetWorkspace(3)->workspace_id(), 3);
  auto workspaces = host_.ListWorkspaces();
  ASSERT_TRUE(workspaces.ok()) << workspaces.status();
  ASSERT_EQ(workspaces->size(), 2u);
  EXPECT_EQ((*workspaces)[0].label(), "A");
  auto members = host_.ListMembers(3);
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].workspace_id(), 3);
  EXPECT_EQ(host_.AddMember(3, 4)->role(), "reader");
  EXPECT_EQ(host_.AddMember(3, 4, "contributor")->role(), "contributor");
  EXPECT_EQ(host_.GetContent(8)->content_id(), 8);
  auto contents = host_.ListContents(3, 8);
  ASSERT_TRUE(contents.ok()) << contents.status();
  ASSERT_EQ(contents->size(), 2u);
  EXPECT_EQ((*contents)[0].parent_id(), 8);
  EXPECT_EQ((*contents)[1].workspace_id(), 3);
  auto comment = host_.CreateComment(8, "<p>hi</p>");
  ASSERT_TRUE(comment.ok()) << comment.status();
  EXPECT_EQ(comment->parent_id(), 8);
  EXPECT_EQ(comment->raw_content(), "<p>hi</p>");
  EXPECT_EQ(comment->author().user_id(), 50);  // author 0: the bot
  EXPECT_EQ(host_.CreateComment(8, "x", 9)->author().user_id(), 9);

  EXPECT_EQ(host_.KvGet("k").value(), std::nullopt);
  EXPECT_TRUE(host_.KvSet("k", std::string("v\0w", 3)).ok());
  EXPECT_TRUE(host_.KvSet("j", "1").ok());
  EXPECT_EQ(host_.KvGet("k").value(), std::string("v\0w", 3));
  EXPECT_THAT(host_.KvList().value(), ElementsAre("j", "k"));
  EXPECT_THAT(host_.KvList("k").value(), ElementsAre("k"));
  EXPECT_EQ(host_.KvDelete("k").value(), true);
  EXPECT_EQ(host_.KvDelete("k").value(), false);

  EXPECT_THAT(Methods(),
              ElementsAre("GetCurrentUser", "GetUser", "ListUsers", "GetWorkspace",
                          "ListWorkspaces", "ListMembers", "AddMember", "AddMember", "GetContent",
                          "ListContents", "CreateComment", "CreateComment", "KvGet", "KvSet",
                          "KvSet", "KvGet", "KvList", "KvList", "KvDelete", "KvDelete"));
  EXPECT_THAT(Secrets(), Each(std::string(kSecret)));
}

TEST_F(HostApiTest, ErrorsKeepTheBrokersCodeAndMessage) {
  absl::StatusOr<User> user = host_.GetUser(42);
  EXPECT_EQ(user.status(), absl::NotFoundError("user 42 not found"));
  EXPECT_EQ(host_.GetCurrentUser("gone").status(),
            absl::NotFoundError("no request gone in flight for this plugin, or it is anonymous"));
  EXPECT_EQ(host_.CreateComment(8, "x", 7).status(),
            absl::PermissionDeniedError("user 7 is not a member of workspace 2"));
  EXPECT_EQ(host_.AddMember(3, 4, "owner").status(),
            absl::InvalidArgumentError("invalid workspace role \"owner\""));
  EXPECT_EQ(host_.KvSet("", "v"), absl::InvalidArgumentError("key must not be empty"));
}

TEST_F(HostApiTest, EachCallHasTheDefaultDeadline) {
  EXPECT_EQ(host_.deadline(), std::chrono::seconds(10));
  ASSERT_TRUE(host_.GetUser(1).ok());
  std::vector<Seen> seen = fake_.seen();
  ASSERT_EQ(seen.size(), 1u);
  // gRPC rounds the timeout it sends up, to a few significant digits.
  EXPECT_LT(seen[0].time_left, absl::Seconds(11));
  EXPECT_GT(seen[0].time_left, absl::Seconds(5));
}

TEST_F(HostApiTest, WithDeadlineShortensEachCallAndLeavesTheOriginalAlone) {
  HostApi quick = host_.WithDeadline(std::chrono::milliseconds(200));
  EXPECT_EQ(quick.deadline(), std::chrono::milliseconds(200));
  EXPECT_EQ(host_.deadline(), HostApi::kDefaultDeadline);
  absl::StatusOr<Workspace> held = quick.GetWorkspace(999);  // the fake holds it
  EXPECT_EQ(held.status().code(), absl::StatusCode::kDeadlineExceeded);
  fake_.Release();
  EXPECT_TRUE(host_.GetWorkspace(999).ok());
}

TEST_F(HostApiTest, ConcurrentCallsFromManyThreadsAllSucceed) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 20; ++i) {
        EXPECT_TRUE(host_.KvSet(absl::StrCat("t", t, "/", i), "v").ok());
        EXPECT_EQ(host_.GetUser(1)->username(), "bob");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(host_.KvList().value().size(), 8u * 20u);
}

TEST_F(HostApiTest, FromEnvironmentUsesTheLaunchsSocketAndSecret) {
  ASSERT_EQ(setenv(v1::kEnvBrokerSocket, socket_.c_str(), 1), 0);
  ASSERT_EQ(setenv(v1::kEnvPluginSecret, "env-secret", 1), 0);
  HostApi host = HostApi::FromEnvironment();
  unsetenv(v1::kEnvBrokerSocket);
  unsetenv(v1::kEnvPluginSecret);
  EXPECT_TRUE(host.connected());
  EXPECT_TRUE(host.GetUser(1).ok());
  EXPECT_THAT(Secrets(), ElementsAre("env-secret"));
}

TEST(HostApi, WithoutTheLaunchEnvironmentEveryCallFailsPrecondition) {
  unsetenv(v1::kEnvBrokerSocket);
  HostApi host = HostApi::FromEnvironment();
  EXPECT_FALSE(host.connected());
  EXPECT_EQ(host.GetUser(1).status(),
            absl::FailedPreconditionError(
                "the host API is not connected: TRACIM_BROKER_SOCKET or TRACIM_PLUGIN_SECRET is "
                "not set: the plugin was not started by the broker"));
}

TEST(HostApi, NoBrokerListeningIsUnavailable) {
  ::tracim::testing::TempDir dir;
  HostApi host = HostApi::Connect((dir.path() / "nobody.sock").string(), kSecret);
  EXPECT_EQ(host.KvGet("k").status().code(), absl::StatusCode::kUnavailable);
}

// --- PluginHarness -----------------------------------------------------------

void RegisterWhoAmI(PluginManager& manager) {
  const PluginContext& context = manager.context();
  manager.AddRoute("GET", "/plugins/who/me", [&context](const HttpRequest& request) {
    absl::StatusOr<User> user = context.host_api().GetCurrentUser(request.request_id);
    if (!user.ok()) return HttpResponse::Text(502, std::string(user.status().ToString()));
    return HttpResponse::Text(200, user->username());
  });
}

TEST(HostApiHarness, APluginsHostApiCallsReachTheHarnessFakeWithTheHarnessSecret) {
  FakeHostApi fake;
  PluginHarness harness(&RegisterWhoAmI, {.plugin_name = "who", .host_api = &fake});
  ASSERT_TRUE(harness.status().ok()) << harness.status();
  HttpRequest request{.method = "GET", .path = "/plugins/who/me", .request_id = "req-1"};
  HttpResponse response = harness.Call(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "bob");
  ASSERT_EQ(fake.seen().size(), 1u);
  EXPECT_EQ(fake.seen()[0].secret, PluginHarness::kSecret);
  EXPECT_TRUE(harness.context().host_api().connected());
}

TEST(HostApiHarness, WithoutAFakeTheHostApiFailsPrecondition) {
  PluginHarness harness(&RegisterWhoAmI, {.plugin_name = "who"});
  HttpRequest request{.method = "GET", .path = "/plugins/who/me", .request_id = "req-1"};
  EXPECT_EQ(harness.Call(request).body,
            "FAILED_PRECONDITION: the host API is not connected: no HarnessOptions::host_api in "
            "this PluginHarness");
}

}  // namespace
}  // namespace tracim::plugin
