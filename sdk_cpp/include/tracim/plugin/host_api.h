// HostApi: a plugin's client of the broker's host API (tracim.plugin.v1.HostApi
// on $TRACIM_BROKER_SOCKET): users, workspaces, memberships, contents and
// comments, the current HTTP request's user, and a key-value store private to
// the plugin. Every call carries the launch's secret and a deadline (10 s
// unless changed with WithDeadline); errors are the broker's, code and
// message as sent (NOT_FOUND "user 42 not found", PERMISSION_DENIED, ...),
// or gRPC's (UNAVAILABLE, DEADLINE_EXCEEDED) when the broker cannot answer.
//
// Thread-safety: a HostApi is an immutable handle on a shared gRPC channel;
// call it from hook handlers and route handlers concurrently, copy it freely.
//
//   void OnContentCreated(const Event& event, const Content& content) override {
//     const HostApi& host = context().host_api();
//     absl::StatusOr<Content> comment = host.CreateComment(content.content_id(), "<p>Seen</p>");
//     if (!comment.ok()) std::cerr << "comment failed: " << comment.status() << std::endl;
//     (void)host.WithDeadline(std::chrono::seconds(2)).KvSet("last_event", "42");
//   }
#ifndef TRACIM_PLUGIN_HOST_API_H_
#define TRACIM_PLUGIN_HOST_API_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tracim/plugin/entities.h"

namespace grpc {
class ChannelInterface;
}  // namespace grpc

namespace tracim::plugin {

class HostApi {
 public:
  static constexpr std::chrono::milliseconds kDefaultDeadline{10000};

  // A client that is not connected: every call fails with
  // FAILED_PRECONDITION "the host API is not connected: <reason>".
  static HostApi Disconnected(std::string reason);
  // The client of the broker listening on the Unix socket `socket_path`,
  // sending `secret`. Connects lazily, on the first call.
  static HostApi Connect(std::string_view socket_path, std::string secret);
  // A client over `channel` (e.g. an in-process server's channel in tests).
  static HostApi FromChannel(std::shared_ptr<grpc::ChannelInterface> channel, std::string secret);
  // The launch's client: TRACIM_BROKER_SOCKET and TRACIM_PLUGIN_SECRET, read
  // now; Disconnected when either is unset (not started by the broker).
  static HostApi FromEnvironment();

  // The same client, with `deadline` for each call instead.
  HostApi WithDeadline(std::chrono::milliseconds deadline) const;
  std::chrono::milliseconds deadline() const { return deadline_; }
  bool connected() const;

  // --- Users. GetCurrentUser: the user of the HTTP request being served
  // (HttpRequest::request_id); NOT_FOUND once it is answered, or when it is
  // anonymous or another plugin's.
  absl::StatusOr<User> GetCurrentUser(std::string_view request_id) const;
  absl::StatusOr<User> GetUser(int64_t user_id) const;
  // Every user that is not deleted, by user_id.
  absl::StatusOr<std::vector<User>> ListUsers() const;

  // --- Workspaces and memberships.
  absl::StatusOr<Workspace> GetWorkspace(int64_t workspace_id) const;
  // Every workspace that is not deleted, by workspace_id.
  absl::StatusOr<std::vector<Workspace>> ListWorkspaces() const;
  // Each membership with its user, by user_id.
  absl::StatusOr<std::vector<Membership>> ListMembers(int64_t workspace_id) const;
  // Adds the user to the workspace, or changes its role ("reader",
  // "contributor", "content-manager", "workspace-manager"; "" takes the
  // workspace's default role). Fires on_user_config_in_workspace_created or
  // _modified.
  absl::StatusOr<Membership> AddMember(int64_t workspace_id, int64_t user_id,
                                       std::string_view role = "") const;

  // --- Contents and comments.
  absl::StatusOr<Content> GetContent(int64_t content_id) const;
  // parent_id 0: every content of the workspace; else the children of that
  // content. Deleted contents are skipped.
  absl::StatusOr<std::vector<Content>> ListContents(int64_t workspace_id,
                                                    int64_t parent_id = 0) const;
  // Comments the content with HTML `raw_content`. author_id 0 posts as the
  // plugin's bot user; a user id posts as that user, who must be allowed to
  // comment there (PERMISSION_DENIED otherwise). Fires on_content_created.
  absl::StatusOr<Content> CreateComment(int64_t content_id, std::string_view raw_content,
                                        int64_t author_id = 0) const;

  // --- The plugin's key-value store. Keys: 1 to 1024 bytes; values: bytes,
  // at most 1 MiB (INVALID_ARGUMENT otherwise). No other plugin sees them.
  // nullopt when the key is not set.
  absl::StatusOr<std::optional<std::string>> KvGet(std::string_view key) const;
  // Creates or replaces.
  absl::Status KvSet(std::string_view key, std::string_view value) const;
  // Whether the key existed.
  absl::StatusOr<bool> KvDelete(std::string_view key) const;
  // Keys starting with `prefix` ("" for all), in byte order.
  absl::StatusOr<std::vector<std::string>> KvList(std::string_view prefix = "") const;

 private:
  struct Shared;  // the stub and the secret, or why there is none
  HostApi(std::shared_ptr<const Shared> shared, std::chrono::milliseconds deadline)
      : shared_(std::move(shared)), deadline_(deadline) {}

  std::shared_ptr<const Shared> shared_;
  std::chrono::milliseconds deadline_;
};

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_HOST_API_H_
