#include "broker/hostapi/host_api_service.h"

#include <grpcpp/grpcpp.h>

#include <exception>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "broker/backend/hook_events.h"
#include "broker/common/grpc_status.h"
#include "broker/common/status_macros.h"
#include "spdlog/spdlog.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::broker {
namespace {

namespace pb = tracim::plugin::v1;

// Ids of the wire are int64 with 0 for "unset": a missing id is the
// caller's mistake, not an unknown entity.
absl::Status RequirePositiveId(absl::string_view field, int64_t id) {
  if (id > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, " must be a positive id, got ", id));
}

// The secret's value in the metadata, or nullopt when absent.
std::optional<std::string> SecretOf(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(pb::kSecretMetadataKey);
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

// One authenticated call on the blocking executor: the plugin's name, the
// store calls, the events.
class HostApiService::Call {
 public:
  Call(HostApiService& service, std::string plugin)
      : service_(service), store_(service.store_), plugin_(std::move(plugin)) {}

  // --- Users ----------------------------------------------------------------

  absl::Status GetCurrentUser(const pb::GetCurrentUserRequest& request, pb::User& response) {
    if (request.request_id().empty()) {
      return absl::InvalidArgumentError("request_id must not be empty");
    }
    std::optional<pb::User> user;
    if (service_.options_.current_user) {
      user = service_.options_.current_user(plugin_, request.request_id());
    }
    if (!user.has_value()) {
      return absl::NotFoundError(absl::StrCat("no request ", request.request_id(),
                                              " in flight for this plugin, or it is anonymous"));
    }
    response = *std::move(user);
    return absl::OkStatus();
  }

  absl::Status GetUser(const pb::GetUserRequest& request, pb::User& response) {
    RETURN_IF_ERROR(RequirePositiveId("user_id", request.user_id()));
    ASSIGN_OR_RETURN(User user, store_.GetUser(request.user_id()));
    response = ToProto(user);
    return absl::OkStatus();
  }

  absl::Status ListUsers(const pb::ListUsersRequest&, pb::ListUsersResponse& response) {
    ASSIGN_OR_RETURN(std::vector<User> users, store_.ListUsers(/*include_deleted=*/false));
    for (const User& user : users) *response.add_users() = ToProto(user);
    return absl::OkStatus();
  }

  // --- Workspaces and members -----------------------------------------------

  absl::Status GetWorkspace(const pb::GetWorkspaceRequest& request, pb::Workspace& response) {
    RETURN_IF_ERROR(RequirePositiveId("workspace_id", request.workspace_id()));
    ASSIGN_OR_RETURN(Workspace workspace, store_.GetWorkspace(request.workspace_id()));
    response = ToProto(workspace);
    return absl::OkStatus();
  }

  absl::Status ListWorkspaces(const pb::ListWorkspacesRequest&,
                              pb::ListWorkspacesResponse& response) {
    ASSIGN_OR_RETURN(std::vector<Workspace> workspaces,
                     store_.ListWorkspaces(/*include_deleted=*/false));
    for (const Workspace& workspace : workspaces) *response.add_workspaces() = ToProto(workspace);
    return absl::OkStatus();
  }

  absl::Status ListMembers(const pb::ListMembersRequest& request,
                           pb::ListMembersResponse& response) {
    RETURN_IF_ERROR(RequirePositiveId("workspace_id", request.workspace_id()));
    ASSIGN_OR_RETURN(std::vector<Membership> members,
                     store_.ListWorkspaceMembers(request.workspace_id()));
    for (const Membership& membership : members) {
      ASSIGN_OR_RETURN(User user, store_.GetUser(membership.user_id));
      *response.add_members() = ToProto(membership, &user);
    }
    return absl::OkStatus();
  }

  // Adds the member or changes its role. A plugin is a trusted part of the
  // backend (as tracim's in-process plugins are): no acting user, no role
  // check; the event has no author (a system change).
  absl::Status AddMember(const pb::AddMemberRequest& request, pb::Membership& response) {
    RETURN_IF_ERROR(RequirePositiveId("workspace_id", request.workspace_id()));
    RETURN_IF_ERROR(RequirePositiveId("user_id", request.user_id()));
    std::optional<WorkspaceRole> role;
    if (!request.role().empty()) {
      ASSIGN_OR_RETURN(role, ParseWorkspaceRole(request.role()));
    }
    absl::MutexLock lock(&service_.changes_.mutex());
    ASSIGN_OR_RETURN(Workspace workspace, store_.GetWorkspace(request.workspace_id()));
    ASSIGN_OR_RETURN(User user, store_.GetUser(request.user_id()));
    absl::StatusOr<Membership> before =
        store_.GetMembership(request.workspace_id(), request.user_id());
    if (!before.ok() && !absl::IsNotFound(before.status())) return before.status();
    ASSIGN_OR_RETURN(MembershipChange change,
                     store_.SetMembership(request.workspace_id(), request.user_id(),
                                          role.value_or(workspace.default_user_role)));
    if (change.created) {
      PublishMember("on_user_config_in_workspace_created", change.membership, user, workspace);
    } else if (before.ok() && before->role != change.membership.role) {
      PublishMember("on_user_config_in_workspace_modified", change.membership, user, workspace);
    }
    response = ToProto(change.membership, &user);
    return absl::OkStatus();
  }

  // --- Contents and comments ------------------------------------------------

  absl::Status GetContent(const pb::GetContentRequest& request, pb::Content& response) {
    RETURN_IF_ERROR(RequirePositiveId("content_id", request.content_id()));
    ASSIGN_OR_RETURN(Content content, store_.GetContent(request.content_id()));
    response = ContentProto(content);
    return absl::OkStatus();
  }

  absl::Status ListContents(const pb::ListContentsRequest& request,
                            pb::ListContentsResponse& response) {
    RETURN_IF_ERROR(RequirePositiveId("workspace_id", request.workspace_id()));
    ContentFilter filter;
    if (request.parent_id() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parent_id must be 0 (every content) or a content id, got ", request.parent_id()));
    }
    if (request.parent_id() > 0) {
      ASSIGN_OR_RETURN(Content parent, store_.GetContent(request.parent_id()));
      if (parent.workspace_id != request.workspace_id()) {
        return absl::NotFoundError(absl::StrCat(
            "content ", request.parent_id(), " not found in workspace ", request.workspace_id()));
      }
      filter.parent_id = request.parent_id();
    }
    ASSIGN_OR_RETURN(std::vector<Content> contents,
                     store_.ListContents(request.workspace_id(), filter));
    for (const Content& content : contents) *response.add_contents() = ContentProto(content);
    return absl::OkStatus();
  }

  // author_id 0: the plugin's bot user, which may comment anywhere (it is
  // the plugin). A named author must be allowed to comment there itself:
  // active, and an administrator or a member with at least the contributor
  // role (PERMISSION_DENIED otherwise), so that a plugin never makes a user
  // say something where that user could not.
  absl::Status CreateComment(const pb::CreateCommentRequest& request, pb::Content& response) {
    RETURN_IF_ERROR(RequirePositiveId("content_id", request.content_id()));
    if (request.author_id() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "author_id must be 0 (the plugin's bot user) or a user id, got ", request.author_id()));
    }
    if (absl::StripAsciiWhitespace(request.raw_content()).empty()) {
      return absl::InvalidArgumentError("raw_content must not be empty");
    }
    absl::MutexLock lock(&service_.changes_.mutex());
    ASSIGN_OR_RETURN(Content parent, store_.GetContent(request.content_id()));
    ASSIGN_OR_RETURN(Workspace workspace, store_.GetWorkspace(parent.workspace_id));
    User author;
    if (request.author_id() == 0) {
      ASSIGN_OR_RETURN(author, BotUser());
    } else {
      ASSIGN_OR_RETURN(author, store_.GetUser(request.author_id()));
      RETURN_IF_ERROR(RequireCommenter(author, workspace));
    }
    NewContent comment;
    comment.workspace_id = parent.workspace_id;
    comment.parent_id = parent.content_id;
    comment.content_type = ContentType::kComment;
    comment.raw_content = request.raw_content();
    comment.author_id = author.user_id;
    ASSIGN_OR_RETURN(Content created, store_.CreateContent(comment));
    pb::Event event =
        MakeEvent("on_content_created", created.content_type, service_.options_.now(), author);
    *event.mutable_content() = ToProto(created, &author);
    *event.mutable_workspace() = ToProto(workspace);
    service_.changes_.Publish(std::move(event));
    response = ToProto(created, &author);
    return absl::OkStatus();
  }

  // --- Key-value store (the store validates keys and values) ----------------

  absl::Status KvGet(const pb::KvGetRequest& request, pb::KvGetResponse& response) {
    ASSIGN_OR_RETURN(std::optional<std::string> value, store_.KvGet(plugin_, request.key()));
    response.set_found(value.has_value());
    if (value.has_value()) response.set_value(*std::move(value));
    return absl::OkStatus();
  }

  absl::Status KvSet(const pb::KvSetRequest& request, pb::KvSetResponse&) {
    return store_.KvSet(plugin_, request.key(), request.value());
  }

  absl::Status KvDelete(const pb::KvDeleteRequest& request, pb::KvDeleteResponse& response) {
    ASSIGN_OR_RETURN(bool deleted, store_.KvDelete(plugin_, request.key()));
    response.set_deleted(deleted);
    return absl::OkStatus();
  }

  absl::Status KvList(const pb::KvListRequest& request, pb::KvListResponse& response) {
    ASSIGN_OR_RETURN(std::vector<std::string> keys, store_.KvList(plugin_, request.prefix()));
    for (std::string& key : keys) response.add_keys(std::move(key));
    return absl::OkStatus();
  }

 private:
  // The content with its author filled in when the author can be read (one
  // read per distinct author of a call).
  pb::Content ContentProto(const Content& content) {
    auto it = authors_.find(content.author_id);
    if (it == authors_.end()) {
      absl::StatusOr<User> author = store_.GetUser(content.author_id);
      it = authors_
               .emplace(content.author_id,
                        author.ok() ? std::optional<User>(*std::move(author)) : std::nullopt)
               .first;
    }
    return ToProto(content, it->second.has_value() ? &*it->second : nullptr);
  }

  absl::Status RequireCommenter(const User& author, const Workspace& workspace) {
    if (!author.is_active) {
      return absl::PermissionDeniedError(
          absl::StrCat("user ", author.user_id, " is not active: it cannot comment"));
    }
    if (author.profile == Profile::kAdministrators) return absl::OkStatus();
    absl::StatusOr<Membership> membership =
        store_.GetMembership(workspace.workspace_id, author.user_id);
    if (absl::IsNotFound(membership.status())) {
      return absl::PermissionDeniedError(absl::StrCat(
          "user ", author.user_id, " is not a member of workspace ", workspace.workspace_id));
    }
    if (!membership.ok()) return membership.status();
    if (membership->role < WorkspaceRole::kContributor) {
      return absl::PermissionDeniedError(absl::StrCat(
          "user ", author.user_id, " is a ", ToString(membership->role), " in workspace ",
          workspace.workspace_id, ": commenting requires the contributor role"));
    }
    return absl::OkStatus();
  }

  // The plugin's bot user: setting "username" of the plugin, else the
  // broker's bot; created on demand (firing on_user_created) when no user
  // has that username. Call with the change mutex held.
  absl::StatusOr<User> BotUser() {
    std::optional<std::string> configured;
    if (auto settings = service_.options_.plugin_settings.find(plugin_);
        settings != service_.options_.plugin_settings.end()) {
      if (auto it = settings->second.find("username");
          it != settings->second.end() && !it->second.empty()) {
        configured = it->second;
      }
    }
    const std::string username = configured.value_or(std::string(kBrokerBotUsername));
    absl::StatusOr<User> found = store_.GetUserByUsername(username);
    if (!absl::IsNotFound(found.status())) return found;
    NewUser bot;
    bot.username = username;
    bot.public_name = configured.has_value() ? username : std::string(kBrokerBotPublicName);
    bot.profile = Profile::kUsers;
    bot.password = std::nullopt;  // no password login
    absl::StatusOr<User> created = store_.CreateUser(bot);
    if (!created.ok()) {
      if (configured.has_value() && absl::IsInvalidArgument(created.status())) {
        // The operator's setting, not the caller's request, is wrong.
        return absl::FailedPreconditionError(
            absl::StrCat("setting plugin.", plugin_, ".username: ", created.status().message()));
      }
      return created.status();
    }
    spdlog::info("host API: created the bot user '{}' (user {}) for plugin '{}'", username,
                 created->user_id, plugin_);
    pb::Event event = SystemEvent("on_user_created");
    *event.mutable_user() = ToProto(*created);
    service_.changes_.Publish(std::move(event));
    return created;
  }

  // An event of a change no user made (author unset).
  pb::Event SystemEvent(absl::string_view hook) {
    pb::Event event = MakeEvent(hook, std::nullopt, service_.options_.now(), User{});
    event.clear_author();
    return event;
  }

  void PublishMember(absl::string_view hook, const Membership& membership, const User& user,
                     const Workspace& workspace) {
    pb::Event event = SystemEvent(hook);
    *event.mutable_member() = ToProto(membership, &user);
    *event.mutable_user() = ToProto(user);
    *event.mutable_workspace() = ToProto(workspace);
    service_.changes_.Publish(std::move(event));
  }

  HostApiService& service_;
  Store& store_;
  const std::string plugin_;
  // Authors read by ContentProto; nullopt when the read failed.
  std::map<int64_t, std::optional<User>> authors_;
};

HostApiService::HostApiService(Store& store, ChangePublisher& changes,
                               boost::asio::any_io_executor blocking_executor,
                               HostApiServiceOptions options)
    : store_(store),
      changes_(changes),
      blocking_executor_(std::move(blocking_executor)),
      options_(std::move(options)) {}

absl::StatusOr<std::string> HostApiService::Authenticate(
    const std::optional<std::string>& secret) const {
  if (!secret.has_value() || secret->empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("missing ", pb::kSecretMetadataKey, " metadata"));
  }
  std::optional<std::string> plugin;
  if (options_.resolve_plugin) plugin = options_.resolve_plugin(*secret);
  if (!plugin.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the ", pb::kSecretMetadataKey,
                     " is not the secret of a running plugin launch (unknown, or of a launch "
                     "that ended)"));
  }
  return *std::move(plugin);
}

std::string HostApiService::name() const { return pb::HostApi::service_full_name(); }

template <typename RequestMethod, typename Request, typename Response>
void HostApiService::ServeMethod(CompletionQueueThread& queue, RequestMethod request_method,
                                 Method<Request, Response> method) {
  ServeUnary(queue, service_, request_method,
             [this, method](grpc::ServerContext& context, const Request& request,
                            Response& response, UnaryDone done) {
               // The request and response live until the call is answered;
               // the metadata is copied here, on the queue's thread.
               boost::asio::post(blocking_executor_, [this, &request, &response, method, done,
                                                      secret = SecretOf(context)] {
                 Execute(done, secret, &response,
                         [&](Call& call) { return (call.*method)(request, response); });
               });
             });
}

void HostApiService::Execute(UnaryDone done, const std::optional<std::string>& secret,
                             google::protobuf::Message* response,
                             absl::FunctionRef<absl::Status(Call&)> body) {
  absl::Status status;
  try {
    absl::StatusOr<std::string> plugin = Authenticate(secret);
    if (plugin.ok()) {
      Call call(*this, *std::move(plugin));
      status = body(call);
    } else {
      status = plugin.status();
      spdlog::warn("host API: call refused: {}", std::string(status.message()));
    }
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("host API: ", e.what()));
  } catch (...) {
    status = absl::InternalError("host API: unknown exception");
  }
  if (!status.ok()) response->Clear();
  done(ToGrpcStatus(status));
}

void HostApiService::Serve(CompletionQueueThread& queue) {
  using Service = pb::HostApi::AsyncService;
  ServeMethod(queue, &Service::RequestGetCurrentUser, &Call::GetCurrentUser);
  ServeMethod(queue, &Service::RequestGetUser, &Call::GetUser);
  ServeMethod(queue, &Service::RequestListUsers, &Call::ListUsers);
  ServeMethod(queue, &Service::RequestGetWorkspace, &Call::GetWorkspace);
  ServeMethod(queue, &Service::RequestListWorkspaces, &Call::ListWorkspaces);
  ServeMethod(queue, &Service::RequestListMembers, &Call::ListMembers);
  ServeMethod(queue, &Service::RequestAddMember, &Call::AddMember);
  ServeMethod(queue, &Service::RequestGetContent, &Call::GetContent);
  ServeMethod(queue, &Service::RequestListContents, &Call::ListContents);
  ServeMethod(queue, &Service::RequestCreateComment, &Call::CreateComment);
  ServeMethod(queue, &Service::RequestKvGet, &Call::KvGet);
  ServeMethod(queue, &Service::RequestKvSet, &Call::KvSet);
  ServeMethod(queue, &Service::RequestKvDelete, &Call::KvDelete);
  ServeMethod(queue, &Service::RequestKvList, &Call::KvList);
}

}  // namespace tracim::broker
