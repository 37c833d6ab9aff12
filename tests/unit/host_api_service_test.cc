// HostApiService end to end: a real SQLite store in a per-test folder, the
// service on a real gRPC server on a Unix socket in that folder, a real
// client stub, injected plugin secrets and in-flight requests, and a
// capturing event publisher shared with a RestApi (for commit order).
// Events are published before the reactor finishes, so each check after a
// call sees its events.
#include "broker/hostapi/host_api_service.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/thread_pool.hpp"
#include "broker/backend/change_publisher.h"
#include "broker/backend/rest_api.h"
#include "broker/store/sqlite_store.h"
#include "broker/store/testing/temp_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::broker {
namespace {

namespace pb = tracim::plugin::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kPassword[] = "pass-word";
constexpr char kSecretA[] = "secret-of-alpha";
constexpr char kSecretB[] = "secret-of-beta";

// The status of a call as "CODE: message", for exact comparisons.
std::string Describe(const grpc::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}

class HostApiServiceTest : public ::testing::Test {
 protected:
  HostApiServiceTest() {
    auto opened = SqliteStore::Open(dir_.path() / "db.sqlite3", TestStoreOptions(&clock_));
    EXPECT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);

    HostApiServiceOptions options;
    options.resolve_plugin = [this](const std::string& secret) -> std::optional<std::string> {
      absl::MutexLock lock(&mu_);
      for (const auto& [plugin, current] : current_secrets_) {
        if (current == secret) return plugin;
      }
      return std::nullopt;
    };
    options.current_user = [this](const std::string& plugin,
                                  const std::string& request_id) -> std::optional<pb::User> {
      absl::MutexLock lock(&mu_);
      auto it = requests_.find({plugin, request_id});
      if (it == requests_.end()) return std::nullopt;
      return it->second;
    };
    options.plugin_settings = {{"beta", {{"username", "beta-bot"}}}};
    options.now = [this] { return clock_.Now(); };
    service_ = std::make_unique<HostApiService>(*store_, changes_, pool_.get_executor(),
                                                std::move(options));

    const std::string address = absl::StrCat("unix:", (dir_.path() / "host.sock").string());
    grpc::ServerBuilder builder;
    queue_ = CompletionQueueThread::ForServer("host-api-test", builder);
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(service_->service());
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    service_->Serve(*queue_);
    stub_ = pb::HostApi::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  ~HostApiServiceTest() override {
    // Calls are answered from the pool, on the queue: the pool is drained
    // before the queue shuts down.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    pool_.join();
    queue_->Shutdown();
  }

  // Calls `method` as the plugin holding `secret` (nullopt: no metadata).
  template <typename Request, typename Response>
  grpc::Status Invoke(grpc::Status (pb::HostApi::Stub::*method)(grpc::ClientContext*,
                                                                const Request&, Response*),
                      const Request& request, Response* response,
                      std::optional<std::string> secret = kSecretA) {
    grpc::ClientContext context;
    if (secret.has_value()) context.AddMetadata(pb::kSecretMetadataKey, *secret);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ((*stub_).*method)(&context, request, response);
  }

  // A user created through the store (no event).
  User MakeUser(const std::string& username, Profile profile = Profile::kUsers) {
    auto user = store_->CreateUser({.email = username + "@x.org",
                                    .username = username,
                                    .profile = profile,
                                    .password = kPassword});
    EXPECT_TRUE(user.ok()) << user.status();
    return *user;
  }

  // A workspace through the store with `members` (no event).
  Workspace MakeWorkspace(const std::string& label,
                          const std::vector<std::pair<int64_t, WorkspaceRole>>& members = {},
                          WorkspaceRole default_role = WorkspaceRole::kReader) {
    auto workspace = store_->CreateWorkspace({.label = label, .default_user_role = default_role});
    EXPECT_TRUE(workspace.ok()) << workspace.status();
    for (const auto& [user_id, role] : members) {
      EXPECT_TRUE(store_->AddMembership(workspace->workspace_id, user_id, role).ok());
    }
    return *workspace;
  }

  Content MakeContent(int64_t workspace_id, int64_t author_id,
                      ContentType type = ContentType::kHtmlDocument, int64_t parent_id = 0,
                      const std::string& label = "Doc") {
    auto content = store_->CreateContent({.workspace_id = workspace_id,
                                          .parent_id = parent_id,
                                          .content_type = type,
                                          .label = label,
                                          .author_id = author_id});
    EXPECT_TRUE(content.ok()) << content.status();
    return *content;
  }

  void StartRequest(const std::string& plugin, const std::string& request_id, const User& user) {
    absl::MutexLock lock(&mu_);
    pb::User proto;
    proto.set_user_id(user.user_id);
    proto.set_username(user.username);
    requests_[{plugin, request_id}] = proto;
  }

  // A new launch of `plugin`: its previous secret becomes stale.
  void Relaunch(const std::string& plugin, const std::string& secret) {
    absl::MutexLock lock(&mu_);
    current_secrets_[plugin] = secret;
  }

  std::vector<pb::Event> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  // "hook event_type" of each event, in publication order.
  std::vector<std::string> EventNames() {
    std::vector<std::string> out;
    for (const pb::Event& e : Events()) out.push_back(absl::StrCat(e.hook(), " ", e.event_type()));
    return out;
  }

  pb::Content Comment(int64_t content_id, const std::string& raw, int64_t author_id,
                      std::optional<std::string> secret = kSecretA) {
    pb::CreateCommentRequest request;
    request.set_content_id(content_id);
    request.set_raw_content(raw);
    request.set_author_id(author_id);
    pb::Content response;
    grpc::Status status =
        Invoke(&pb::HostApi::Stub::CreateComment, request, &response, std::move(secret));
    EXPECT_EQ(Describe(status), "OK");
    return response;
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<SqliteStore> store_;
  absl::Mutex mu_;
  std::map<std::string, std::string> current_secrets_ ABSL_GUARDED_BY(mu_) = {{"alpha", kSecretA},
                                                                              {"beta", kSecretB}};
  std::map<std::pair<std::string, std::string>, pb::User> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<pb::Event> events_ ABSL_GUARDED_BY(mu_);
  ChangePublisher changes_{[this](pb::Event event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }};
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<HostApiService> service_;
  std::unique_ptr<CompletionQueueThread> queue_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::HostApi::Stub> stub_;
};

// --- Authentication ----------------------------------------------------------

TEST_F(HostApiServiceTest, CallWithoutSecretIsUnauthenticated) {
  pb::ListUsersResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListUsers, pb::ListUsersRequest(), &response,
                            std::nullopt)),
            "UNAUTHENTICATED: missing tracim-plugin-secret metadata");
}

TEST_F(HostApiServiceTest, CallWithUnknownSecretIsUnauthenticated) {
  pb::ListUsersResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListUsers, pb::ListUsersRequest(), &response,
                            "not-a-secret")),
            "UNAUTHENTICATED: the tracim-plugin-secret is not the secret of a running plugin "
            "launch (unknown, or of a launch that ended)");
}

TEST_F(HostApiServiceTest, SecretOfAPreviousLaunchIsUnauthenticated) {
  pb::KvSetRequest set;
  set.set_key("k");
  set.set_value("v");
  pb::KvSetResponse set_response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &set_response)), "OK");

  Relaunch("alpha", "secret-of-alpha-launch-2");
  pb::KvGetRequest get;
  get.set_key("k");
  pb::KvGetResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &response, kSecretA)),
            "UNAUTHENTICATED: the tracim-plugin-secret is not the secret of a running plugin "
            "launch (unknown, or of a launch that ended)");
  // The new launch is the same plugin: it sees its keys.
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &response, "secret-of-alpha-launch-2")),
            "OK");
  EXPECT_TRUE(response.found());
  EXPECT_EQ(response.value(), "v");
}

TEST_F(HostApiServiceTest, EmptySecretIsUnauthenticated) {
  pb::ListUsersResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListUsers, pb::ListUsersRequest(), &response, "")),
            "UNAUTHENTICATED: missing tracim-plugin-secret metadata");
}

// --- Current user ------------------------------------------------------------

TEST_F(HostApiServiceTest, GetCurrentUserReturnsTheUserOfTheCallersRequest) {
  User bob = MakeUser("bob");
  StartRequest("alpha", "req-1", bob);
  pb::GetCurrentUserRequest request;
  request.set_request_id("req-1");
  pb::User response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetCurrentUser, request, &response)), "OK");
  EXPECT_EQ(response.user_id(), bob.user_id);
  EXPECT_EQ(response.username(), "bob");
}

TEST_F(HostApiServiceTest, GetCurrentUserDoesNotSeeAnotherPluginsRequest) {
  StartRequest("alpha", "req-1", MakeUser("bob"));
  pb::GetCurrentUserRequest request;
  request.set_request_id("req-1");
  pb::User response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetCurrentUser, request, &response, kSecretB)),
            "NOT_FOUND: no request req-1 in flight for this plugin, or it is anonymous");
}

TEST_F(HostApiServiceTest, GetCurrentUserOfAnUnknownRequestIsNotFound) {
  pb::GetCurrentUserRequest request;
  request.set_request_id("nope");
  pb::User response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetCurrentUser, request, &response)),
            "NOT_FOUND: no request nope in flight for this plugin, or it is anonymous");
}

TEST_F(HostApiServiceTest, GetCurrentUserWithoutRequestIdIsInvalid) {
  pb::User response;
  EXPECT_EQ(
      Describe(Invoke(&pb::HostApi::Stub::GetCurrentUser, pb::GetCurrentUserRequest(), &response)),
      "INVALID_ARGUMENT: request_id must not be empty");
}

// --- Users ---------------------------------------------------------------------

TEST_F(HostApiServiceTest, GetUserReturnsTheUser) {
  User bob = MakeUser("bob", Profile::kTrustedUsers);
  pb::GetUserRequest request;
  request.set_user_id(bob.user_id);
  pb::User response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetUser, request, &response)), "OK");
  EXPECT_EQ(response.user_id(), bob.user_id);
  EXPECT_EQ(response.email(), "bob@x.org");
  EXPECT_EQ(response.username(), "bob");
  EXPECT_EQ(response.profile(), "trusted-users");
  EXPECT_TRUE(response.is_active());
}

TEST_F(HostApiServiceTest, GetUnknownUserIsNotFound) {
  pb::GetUserRequest request;
  request.set_user_id(42);
  pb::User response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetUser, request, &response)),
            "NOT_FOUND: user 42 not found");
}

TEST_F(HostApiServiceTest, GetUserWithoutIdIsInvalid) {
  pb::User response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetUser, pb::GetUserRequest(), &response)),
            "INVALID_ARGUMENT: user_id must be a positive id, got 0");
}

TEST_F(HostApiServiceTest, ListUsersSkipsDeletedUsers) {
  User bob = MakeUser("bob");
  User carol = MakeUser("carol");
  User dave = MakeUser("dave");
  ASSERT_TRUE(store_->DeleteUser(carol.user_id).ok());
  pb::ListUsersResponse response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListUsers, pb::ListUsersRequest(), &response)),
            "OK");
  ASSERT_EQ(response.users_size(), 2);
  EXPECT_EQ(response.users(0).user_id(), bob.user_id);
  EXPECT_EQ(response.users(1).user_id(), dave.user_id);
}

// --- Workspaces and members ----------------------------------------------------

TEST_F(HostApiServiceTest, GetAndListWorkspaces) {
  Workspace a = MakeWorkspace("A");
  Workspace b = MakeWorkspace("B");
  Workspace gone = MakeWorkspace("Gone");
  ASSERT_TRUE(store_->DeleteWorkspace(gone.workspace_id).ok());

  pb::GetWorkspaceRequest get;
  get.set_workspace_id(b.workspace_id);
  pb::Workspace workspace;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetWorkspace, get, &workspace)), "OK");
  EXPECT_EQ(workspace.label(), "B");

  pb::ListWorkspacesResponse list;
  ASSERT_EQ(
      Describe(Invoke(&pb::HostApi::Stub::ListWorkspaces, pb::ListWorkspacesRequest(), &list)),
      "OK");
  ASSERT_EQ(list.workspaces_size(), 2);
  EXPECT_EQ(list.workspaces(0).workspace_id(), a.workspace_id);
  EXPECT_EQ(list.workspaces(1).workspace_id(), b.workspace_id);
}

TEST_F(HostApiServiceTest, GetUnknownWorkspaceIsNotFound) {
  pb::GetWorkspaceRequest request;
  request.set_workspace_id(9);
  pb::Workspace response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetWorkspace, request, &response)),
            "NOT_FOUND: workspace 9 not found");
}

TEST_F(HostApiServiceTest, ListMembersFillsEachMembersUser) {
  User bob = MakeUser("bob");
  User carol = MakeUser("carol");
  Workspace w = MakeWorkspace(
      "W", {{bob.user_id, WorkspaceRole::kContributor}, {carol.user_id, WorkspaceRole::kReader}});
  pb::ListMembersRequest request;
  request.set_workspace_id(w.workspace_id);
  pb::ListMembersResponse response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListMembers, request, &response)), "OK");
  ASSERT_EQ(response.members_size(), 2);
  EXPECT_EQ(response.members(0).user_id(), bob.user_id);
  EXPECT_EQ(response.members(0).role(), "contributor");
  EXPECT_EQ(response.members(0).user().username(), "bob");
  EXPECT_EQ(response.members(1).user().username(), "carol");
  EXPECT_EQ(response.members(1).role(), "reader");
}

TEST_F(HostApiServiceTest, ListMembersOfUnknownWorkspaceIsNotFound) {
  pb::ListMembersRequest request;
  request.set_workspace_id(7);
  pb::ListMembersResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListMembers, request, &response)),
            "NOT_FOUND: workspace 7 not found");
}

TEST_F(HostApiServiceTest, AddMemberWithoutRoleTakesTheWorkspaceDefaultAndFiresCreated) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {}, WorkspaceRole::kContributor);
  pb::AddMemberRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_user_id(bob.user_id);
  pb::Membership response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)), "OK");
  EXPECT_EQ(response.role(), "contributor");
  EXPECT_EQ(response.user().username(), "bob");
  EXPECT_TRUE(store_->GetMembership(w.workspace_id, bob.user_id).ok());

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].hook(), "on_user_config_in_workspace_created");
  EXPECT_EQ(events[0].event_type(), "workspace_member.created");
  EXPECT_EQ(events[0].member().role(), "contributor");
  EXPECT_EQ(events[0].user().user_id(), bob.user_id);
  EXPECT_EQ(events[0].workspace().workspace_id(), w.workspace_id);
  EXPECT_FALSE(events[0].has_author());  // a plugin's change: no acting user
  EXPECT_EQ(events[0].created().seconds(), absl::ToUnixSeconds(FakeClock::Start()));
}

TEST_F(HostApiServiceTest, AddMemberChangesTheRoleOfAMemberAndFiresModifiedOnlyOnChange) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kReader}});
  pb::AddMemberRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_user_id(bob.user_id);
  request.set_role("content-manager");
  pb::Membership response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)), "OK");
  EXPECT_EQ(response.role(), "content-manager");
  // The same role again: nothing changed, nothing fired.
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)), "OK");
  EXPECT_THAT(EventNames(),
              ElementsAre("on_user_config_in_workspace_modified workspace_member.modified"));
  EXPECT_EQ(Events()[0].member().role(), "content-manager");
}

TEST_F(HostApiServiceTest, AddMemberWithUnknownRoleIsInvalid) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  pb::AddMemberRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_user_id(bob.user_id);
  request.set_role("owner");
  pb::Membership response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)),
            "INVALID_ARGUMENT: " + std::string(ParseWorkspaceRole("owner").status().message()));
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(HostApiServiceTest, AddMemberOfUnknownUserOrWorkspaceIsNotFound) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  pb::AddMemberRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_user_id(42);
  pb::Membership response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)),
            "NOT_FOUND: user 42 not found");
  request.set_workspace_id(43);
  request.set_user_id(bob.user_id);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)),
            "NOT_FOUND: workspace 43 not found");
  request.set_workspace_id(0);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)),
            "INVALID_ARGUMENT: workspace_id must be a positive id, got 0");
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(HostApiServiceTest, AddMemberToDeletedWorkspaceFailsPrecondition) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  ASSERT_TRUE(store_->DeleteWorkspace(w.workspace_id).ok());
  pb::AddMemberRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_user_id(bob.user_id);
  pb::Membership response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::AddMember, request, &response)),
            absl::StrCat("FAILED_PRECONDITION: workspace ", w.workspace_id, " is deleted"));
}

// --- Contents --------------------------------------------------------------------

TEST_F(HostApiServiceTest, GetContentFillsItsAuthor) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kContributor}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  pb::GetContentRequest request;
  request.set_content_id(doc.content_id);
  pb::Content response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetContent, request, &response)), "OK");
  EXPECT_EQ(response.label(), "Doc");
  EXPECT_EQ(response.content_type(), "html-document");
  EXPECT_EQ(response.workspace_id(), w.workspace_id);
  EXPECT_EQ(response.author().username(), "bob");
}

TEST_F(HostApiServiceTest, GetUnknownContentIsNotFound) {
  pb::GetContentRequest request;
  request.set_content_id(5);
  pb::Content response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::GetContent, request, &response)),
            "NOT_FOUND: content 5 not found");
}

TEST_F(HostApiServiceTest, ListContentsListsTheWholeWorkspaceOrTheChildrenOfAParent) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  Workspace other = MakeWorkspace("Other");
  Content folder = MakeContent(w.workspace_id, bob.user_id, ContentType::kFolder, 0, "F");
  Content inside =
      MakeContent(w.workspace_id, bob.user_id, ContentType::kThread, folder.content_id, "T");
  Content root_doc = MakeContent(w.workspace_id, bob.user_id);
  MakeContent(other.workspace_id, bob.user_id);

  pb::ListContentsRequest request;
  request.set_workspace_id(w.workspace_id);
  pb::ListContentsResponse response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListContents, request, &response)), "OK");
  ASSERT_EQ(response.contents_size(), 3);
  EXPECT_EQ(response.contents(0).content_id(), folder.content_id);
  EXPECT_EQ(response.contents(1).content_id(), inside.content_id);
  EXPECT_EQ(response.contents(2).content_id(), root_doc.content_id);
  EXPECT_EQ(response.contents(2).author().username(), "bob");

  request.set_parent_id(folder.content_id);
  response.Clear();
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListContents, request, &response)), "OK");
  ASSERT_EQ(response.contents_size(), 1);
  EXPECT_EQ(response.contents(0).content_id(), inside.content_id);
}

TEST_F(HostApiServiceTest, ListContentsUnderAParentOfAnotherWorkspaceIsNotFound) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  Workspace other = MakeWorkspace("Other");
  Content folder = MakeContent(other.workspace_id, bob.user_id, ContentType::kFolder, 0, "F");
  pb::ListContentsRequest request;
  request.set_workspace_id(w.workspace_id);
  request.set_parent_id(folder.content_id);
  pb::ListContentsResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListContents, request, &response)),
            absl::StrCat("NOT_FOUND: content ", folder.content_id, " not found in workspace ",
                         w.workspace_id));
  request.set_parent_id(-1);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::ListContents, request, &response)),
            "INVALID_ARGUMENT: parent_id must be 0 (every content) or a content id, got -1");
}

// --- Comments ----------------------------------------------------------------------

TEST_F(HostApiServiceTest, CreateCommentAsAContributorFiresContentCreated) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kContributor}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  pb::Content comment = Comment(doc.content_id, "<p>Hi</p>", bob.user_id);
  EXPECT_EQ(comment.content_type(), "comment");
  EXPECT_EQ(comment.raw_content(), "<p>Hi</p>");
  EXPECT_EQ(comment.parent_id(), doc.content_id);
  EXPECT_EQ(comment.workspace_id(), w.workspace_id);
  EXPECT_EQ(comment.author().username(), "bob");

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].hook(), "on_content_created");
  EXPECT_EQ(events[0].event_type(), "content.created.comment");
  EXPECT_EQ(events[0].author().user_id(), bob.user_id);
  EXPECT_EQ(events[0].content().content_id(), comment.content_id());
  EXPECT_EQ(events[0].workspace().workspace_id(), w.workspace_id);
}

TEST_F(HostApiServiceTest, CreateCommentAsAnAdministratorNeedsNoMembership) {
  User root = MakeUser("root", Profile::kAdministrators);
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  EXPECT_EQ(Comment(doc.content_id, "ok", root.user_id).author().user_id(), root.user_id);
}

TEST_F(HostApiServiceTest, CreateCommentAsAReaderOrANonMemberIsPermissionDenied) {
  User bob = MakeUser("bob");
  User reader = MakeUser("reader");
  User stranger = MakeUser("stranger");
  Workspace w = MakeWorkspace("W", {{reader.user_id, WorkspaceRole::kReader}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  pb::CreateCommentRequest request;
  request.set_content_id(doc.content_id);
  request.set_raw_content("hi");
  request.set_author_id(reader.user_id);
  pb::Content response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            absl::StrCat("PERMISSION_DENIED: user ", reader.user_id, " is a reader in workspace ",
                         w.workspace_id, ": commenting requires the contributor role"));
  request.set_author_id(stranger.user_id);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            absl::StrCat("PERMISSION_DENIED: user ", stranger.user_id,
                         " is not a member of workspace ", w.workspace_id));
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(HostApiServiceTest, CreateCommentAsAnInactiveUserIsPermissionDenied) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kContributor}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  ASSERT_TRUE(store_->UpdateUser(bob.user_id, {.is_active = false}).ok());
  pb::CreateCommentRequest request;
  request.set_content_id(doc.content_id);
  request.set_raw_content("hi");
  request.set_author_id(bob.user_id);
  pb::Content response;
  EXPECT_EQ(
      Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
      absl::StrCat("PERMISSION_DENIED: user ", bob.user_id, " is not active: it cannot comment"));
}

TEST_F(HostApiServiceTest, CreateCommentErrorsNameTheirCause) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kContributor}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  pb::CreateCommentRequest request;
  request.set_content_id(99);
  request.set_raw_content("hi");
  request.set_author_id(bob.user_id);
  pb::Content response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            "NOT_FOUND: content 99 not found");
  request.set_content_id(doc.content_id);
  request.set_author_id(42);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            "NOT_FOUND: user 42 not found");
  request.set_author_id(-3);
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            "INVALID_ARGUMENT: author_id must be 0 (the plugin's bot user) or a user id, got -3");
  request.set_author_id(bob.user_id);
  request.set_raw_content("  ");
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::CreateComment, request, &response)),
            "INVALID_ARGUMENT: raw_content must not be empty");
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(HostApiServiceTest, CreateCommentWithoutAuthorPostsAsTheBrokerBotCreatedOnce) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");  // the bot needs no membership
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  pb::Content first = Comment(doc.content_id, "one", 0);
  pb::Content second = Comment(doc.content_id, "two", 0);
  EXPECT_EQ(first.author().username(), kBrokerBotUsername);
  EXPECT_EQ(first.author().public_name(), kBrokerBotPublicName);
  EXPECT_EQ(first.author().profile(), "users");
  EXPECT_EQ(second.author().user_id(), first.author().user_id());

  auto bot = store_->GetUserByUsername(kBrokerBotUsername);
  ASSERT_TRUE(bot.ok()) << bot.status();
  EXPECT_FALSE(bot->has_password);  // cannot log in
  EXPECT_THAT(EventNames(), ElementsAre("on_user_created user.created",
                                        "on_content_created content.created.comment",
                                        "on_content_created content.created.comment"));
  EXPECT_EQ(Events()[0].user().username(), kBrokerBotUsername);
  EXPECT_FALSE(Events()[0].has_author());
  EXPECT_EQ(Events()[1].author().user_id(), bot->user_id);
}

TEST_F(HostApiServiceTest, CreateCommentWithoutAuthorPostsAsThePluginsConfiguredBot) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W");
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  // beta has plugin.beta.username = beta-bot.
  EXPECT_EQ(Comment(doc.content_id, "hi", 0, kSecretB).author().username(), "beta-bot");
  // An existing user of that name is used as is.
  EXPECT_EQ(Comment(doc.content_id, "hi", 0, kSecretB).author().username(), "beta-bot");
  EXPECT_EQ(Comment(doc.content_id, "hi", 0, kSecretA).author().username(), kBrokerBotUsername);
  EXPECT_THAT(
      EventNames(),
      ElementsAre("on_user_created user.created", "on_content_created content.created.comment",
                  "on_content_created content.created.comment", "on_user_created user.created",
                  "on_content_created content.created.comment"));
}

// --- Key-value store -----------------------------------------------------------------

TEST_F(HostApiServiceTest, KvSetGetListDelete) {
  for (const char* key : {"b", "a/1", "a/2"}) {
    pb::KvSetRequest set;
    set.set_key(key);
    set.set_value(std::string("v\0") + key);
    pb::KvSetResponse response;
    ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &response)), "OK");
  }
  pb::KvGetRequest get;
  get.set_key("a/2");
  pb::KvGetResponse got;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got)), "OK");
  EXPECT_TRUE(got.found());
  EXPECT_EQ(got.value(), std::string("v\0") + "a/2");

  pb::KvListRequest list;
  pb::KvListResponse listed;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvList, list, &listed)), "OK");
  EXPECT_THAT(listed.keys(), ElementsAre("a/1", "a/2", "b"));
  list.set_prefix("a/");
  listed.Clear();
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvList, list, &listed)), "OK");
  EXPECT_THAT(listed.keys(), ElementsAre("a/1", "a/2"));

  pb::KvDeleteRequest del;
  del.set_key("a/2");
  pb::KvDeleteResponse deleted;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvDelete, del, &deleted)), "OK");
  EXPECT_TRUE(deleted.deleted());
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvDelete, del, &deleted)), "OK");
  EXPECT_FALSE(deleted.deleted());
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got)), "OK");
  EXPECT_FALSE(got.found());
  EXPECT_EQ(got.value(), "");
}

TEST_F(HostApiServiceTest, KvIsPrivateToEachPlugin) {
  pb::KvSetRequest set;
  set.set_key("shared-name");
  set.set_value("alpha's");
  pb::KvSetResponse set_response;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &set_response, kSecretA)), "OK");

  pb::KvGetRequest get;
  get.set_key("shared-name");
  pb::KvGetResponse got;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got, kSecretB)), "OK");
  EXPECT_FALSE(got.found());
  pb::KvListResponse listed;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvList, pb::KvListRequest(), &listed, kSecretB)),
            "OK");
  EXPECT_THAT(listed.keys(), IsEmpty());
  pb::KvDeleteRequest del;
  del.set_key("shared-name");
  pb::KvDeleteResponse deleted;
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvDelete, del, &deleted, kSecretB)), "OK");
  EXPECT_FALSE(deleted.deleted());

  // beta's own value under the same key leaves alpha's alone.
  set.set_value("beta's");
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &set_response, kSecretB)), "OK");
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got, kSecretA)), "OK");
  EXPECT_EQ(got.value(), "alpha's");
  ASSERT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got, kSecretB)), "OK");
  EXPECT_EQ(got.value(), "beta's");
}

TEST_F(HostApiServiceTest, KvRefusesEmptyOrLongKeysAndLargeValues) {
  pb::KvSetRequest set;
  pb::KvSetResponse response;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &response)),
            "INVALID_ARGUMENT: key must not be empty");
  set.set_key(std::string(kMaxKvKeyBytes + 1, 'k'));
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &response)),
            "INVALID_ARGUMENT: key is longer than 1024 bytes");
  set.set_key(std::string(kMaxKvKeyBytes, 'k'));
  set.set_value(std::string(kMaxKvValueBytes + 1, 'v'));
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &response)),
            "INVALID_ARGUMENT: value is longer than 1048576 bytes");
  // The limits themselves are allowed.
  set.set_value(std::string(kMaxKvValueBytes, 'v'));
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvSet, set, &response)), "OK");

  pb::KvGetRequest get;
  pb::KvGetResponse got;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvGet, get, &got)),
            "INVALID_ARGUMENT: key must not be empty");
  pb::KvDeleteRequest del;
  pb::KvDeleteResponse deleted;
  EXPECT_EQ(Describe(Invoke(&pb::HostApi::Stub::KvDelete, del, &deleted)),
            "INVALID_ARGUMENT: key must not be empty");
}

// --- Commit order, shared with the REST API -------------------------------------------

TEST_F(HostApiServiceTest, EventsOfHostApiAndRestApiWritersLeaveInCommitOrder) {
  User bob = MakeUser("bob");
  Workspace w = MakeWorkspace("W", {{bob.user_id, WorkspaceRole::kContributor}});
  Content doc = MakeContent(w.workspace_id, bob.user_id);
  RestApi rest(*store_, changes_, pool_.get_executor(),
               RestApiOptions{.now = [this] { return clock_.Now(); }});

  constexpr int kPerWriter = 15;
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kPerWriter; ++i) Comment(doc.content_id, "host", bob.user_id);
    });
  }
  writers.emplace_back([&] {
    for (int i = 0; i < kPerWriter; ++i) {
      HttpRequest request;
      request.head.method = "POST";
      request.head.path = absl::StrCat("/api/workspaces/", w.workspace_id, "/contents/",
                                       doc.content_id, "/comments");
      request.head.target = request.head.path;
      request.head.headers.Set("Authorization",
                               "Basic " + absl::Base64Escape(absl::StrCat("bob:", kPassword)));
      request.body = R"({"raw_content": "rest"})";
      absl::Notification answered;
      int status = 0;
      rest.Handle(std::move(request), [&](HttpResponse response) {
        status = response.status;
        answered.Notify();
      });
      ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
      EXPECT_EQ(status, 200);
    }
  });
  for (std::thread& writer : writers) writer.join();

  std::vector<pb::Event> events = Events();
  ASSERT_EQ(events.size(), 3u * kPerWriter);
  int rest_events = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].event_type(), "content.created.comment");
    if (events[i].content().raw_content() == "rest") ++rest_events;
    // Ids are given at commit: publication order is commit order.
    if (i > 0) {
      EXPECT_LT(events[i - 1].content().content_id(), events[i].content().content_id());
    }
  }
  EXPECT_EQ(rest_events, kPerWriter);
}

}  // namespace
}  // namespace tracim::broker
