#include "tracim/plugin/host_api.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin {
namespace {

// Contents carry their HTML: a listing of a large workspace must not be
// refused by gRPC's 4 MiB default.
constexpr int kMaxReceiveMessageBytes = 64 * 1024 * 1024;

}  // namespace

struct HostApi::Shared {
  // Null when not connected; the generated stub is thread-safe.
  std::unique_ptr<v1::HostApi::Stub> stub;
  std::string secret;
  std::string disconnected_reason;

  // One unary call with the secret and the deadline; the broker's status,
  // code and message, as an absl::Status.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Invoke(
      grpc::Status (v1::HostApi::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request, std::chrono::milliseconds deadline) const {
    if (stub == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("the host API is not connected: ", disconnected_reason));
    }
    grpc::ClientContext context;
    context.AddMetadata(v1::kSecretMetadataKey, secret);
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    Response response;
    grpc::Status status = ((*stub).*method)(&context, request, &response);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return response;
  }
};

HostApi HostApi::Disconnected(std::string reason) {
  auto shared = std::make_shared<Shared>();
  shared->disconnected_reason = std::move(reason);
  return HostApi(std::move(shared), kDefaultDeadline);
}

HostApi HostApi::Connect(std::string_view socket_path, std::string secret) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  return FromChannel(grpc::CreateCustomChannel("unix:" + std::string(socket_path),
                                               grpc::InsecureChannelCredentials(), args),
                     std::move(secret));
}

HostApi HostApi::FromChannel(std::shared_ptr<grpc::ChannelInterface> channel, std::string secret) {
  if (channel == nullptr) return Disconnected("no channel");
  auto shared = std::make_shared<Shared>();
  shared->stub = v1::HostApi::NewStub(std::move(channel));
  shared->secret = std::move(secret);
  return HostApi(std::move(shared), kDefaultDeadline);
}

HostApi HostApi::FromEnvironment() {
  const char* socket = std::getenv(v1::kEnvBrokerSocket);
  const char* secret = std::getenv(v1::kEnvPluginSecret);
  if (socket == nullptr || *socket == '\0' || secret == nullptr || *secret == '\0') {
    return Disconnected(absl::StrCat(v1::kEnvBrokerSocket, " or ", v1::kEnvPluginSecret,
                                     " is not set: the plugin was not started by the broker"));
  }
  return Connect(socket, secret);
}

HostApi HostApi::WithDeadline(std::chrono::milliseconds deadline) const {
  return HostApi(shared_, deadline);
}

bool HostApi::connected() const { return shared_->stub != nullptr; }

absl::StatusOr<User> HostApi::GetCurrentUser(std::string_view request_id) const {
  v1::GetCurrentUserRequest request;
  request.set_request_id(std::string(request_id));
  return shared_->Invoke(&v1::HostApi::Stub::GetCurrentUser, request, deadline_);
}

absl::StatusOr<User> HostApi::GetUser(int64_t user_id) const {
  v1::GetUserRequest request;
  request.set_user_id(user_id);
  return shared_->Invoke(&v1::HostApi::Stub::GetUser, request, deadline_);
}

absl::StatusOr<std::vector<User>> HostApi::ListUsers() const {
  auto response = shared_->Invoke(&v1::HostApi::Stub::ListUsers, v1::ListUsersRequest(), deadline_);
  if (!response.ok()) return response.status();
  return std::vector<User>(response->users().begin(), response->users().end());
}

absl::StatusOr<Workspace> HostApi::GetWorkspace(int64_t workspace_id) const {
  v1::GetWorkspaceRequest request;
  request.set_workspace_id(workspace_id);
  return shared_->Invoke(&v1::HostApi::Stub::GetWorkspace, request, deadline_);
}

absl::StatusOr<std::vector<Workspace>> HostApi::ListWorkspaces() const {
  auto response =
      shared_->Invoke(&v1::HostApi::Stub::ListWorkspaces, v1::ListWorkspacesRequest(), deadline_);
  if (!response.ok()) return response.status();
  return std::vector<Workspace>(response->workspaces().begin(), response->workspaces().end());
}

absl::StatusOr<std::vector<Membership>> HostApi::ListMembers(int64_t workspace_id) const {
  v1::ListMembersRequest request;
  request.set_workspace_id(workspace_id);
  auto response = shared_->Invoke(&v1::HostApi::Stub::ListMembers, request, deadline_);
  if (!response.ok()) return response.status();
  return std::vector<Membership>(response->members().begin(), response->members().end());
}

absl::StatusOr<Membership> HostApi::AddMember(int64_t workspace_id, int64_t user_id,
                                              std::string_view role) const {
  v1::AddMemberRequest request;
  request.set_workspace_id(workspace_id);
  request.set_user_id(user_id);
  request.set_role(std::string(role));
  return shared_->Invoke(&v1::HostApi::Stub::AddMember, request, deadline_);
}

absl::StatusOr<Content> HostApi::GetContent(int64_t content_id) const {
  v1::GetContentRequest request;
  request.set_content_id(content_id);
  return shared_->Invoke(&v1::HostApi::Stub::GetContent, request, deadline_);
}

absl::StatusOr<std::vector<Content>> HostApi::ListContents(int64_t workspace_id,
                                                           int64_t parent_id) const {
  v1::ListContentsRequest request;
  request.set_workspace_id(workspace_id);
  request.set_parent_id(parent_id);
  auto response = shared_->Invoke(&v1::HostApi::Stub::ListContents, request, deadline_);
  if (!response.ok()) return response.status();
  return std::vector<Content>(response->contents().begin(), response->contents().end());
}

absl::StatusOr<Content> HostApi::CreateComment(int64_t content_id, std::string_view raw_content,
                                               int64_t author_id) const {
  v1::CreateCommentRequest request;
  request.set_content_id(content_id);
  request.set_raw_content(std::string(raw_content));
  request.set_author_id(author_id);
  return shared_->Invoke(&v1::HostApi::Stub::CreateComment, request, deadline_);
}

absl::StatusOr<std::optional<std::string>> HostApi::KvGet(std::string_view key) const {
  v1::KvGetRequest request;
  request.set_key(std::string(key));
  auto response = shared_->Invoke(&v1::HostApi::Stub::KvGet, request, deadline_);
  if (!response.ok()) return response.status();
  if (!response->found()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(*response->mutable_value()));
}

absl::Status HostApi::KvSet(std::string_view key, std::string_view value) const {
  v1::KvSetRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  return shared_->Invoke(&v1::HostApi::Stub::KvSet, request, deadline_).status();
}

absl::StatusOr<bool> HostApi::KvDelete(std::string_view key) const {
  v1::KvDeleteRequest request;
  request.set_key(std::string(key));
  auto response = shared_->Invoke(&v1::HostApi::Stub::KvDelete, request, deadline_);
  if (!response.ok()) return response.status();
  return response->deleted();
}

absl::StatusOr<std::vector<std::string>> HostApi::KvList(std::string_view prefix) const {
  v1::KvListRequest request;
  request.set_prefix(std::string(prefix));
  auto response = shared_->Invoke(&v1::HostApi::Stub::KvList, request, deadline_);
  if (!response.ok()) return response.status();
  return std::vector<std::string>(response->keys().begin(), response->keys().end());
}

}  // namespace tracim::plugin
