// HostApiService: tracim.plugin.v1.HostApi on the broker's control socket —
// what plugins call back into, as themselves (docs/protocol.md, "Host API").
// Each call is authenticated by the secret of the caller's current launch;
// mutations fire tracim's hooks through the ChangePublisher shared with the
// REST API, so events leave in commit order whichever API made the change.
//
// Threading: gRPC runs the reactions on its threads; they only copy the
// caller's secret and post the call to the blocking executor, where the
// plugin is resolved, the store is called and the reactor finished. Never
// blocks a gRPC thread. Thread-safe.
//
//   boost::asio::thread_pool blocking(2);
//   ChangePublisher changes([&](Event e) { host.Publish(std::move(e)); });
//   HostApiService host_api(store, changes, blocking.get_executor(), options);
//   builder.RegisterService(&host_api);
//   ... server->Shutdown(); server->Wait(); blocking.join();  // then destroy host_api
#ifndef TRACIM_BROKER_HOSTAPI_HOST_API_SERVICE_H_
#define TRACIM_BROKER_HOSTAPI_HOST_API_SERVICE_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/any_io_executor.hpp"
#include "broker/backend/change_publisher.h"
#include "broker/store/store.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"

namespace tracim::broker {

// The user CreateComment posts as when author_id is 0 and the plugin has no
// setting "username": created on demand (profile "users", no password, so
// it cannot log in).
inline constexpr absl::string_view kBrokerBotUsername = "tracim-plugin-broker";
inline constexpr absl::string_view kBrokerBotPublicName = "Plugin broker";

struct HostApiServiceOptions {
  // The name of the plugin whose CURRENT launch has `secret`, or nullopt
  // (unknown secret, or one of a launch that ended). Called on the blocking
  // executor for every call: thread-safe and quick.
  std::function<std::optional<std::string>(const std::string& secret)> resolve_plugin;
  // The authenticated user of `plugin`'s HTTP request `request_id` while it
  // is in flight; nullopt when there is no such request of THIS plugin or it
  // is anonymous. Called on the blocking executor: thread-safe and quick.
  // Unset: GetCurrentUser always answers NOT_FOUND.
  std::function<std::optional<tracim::plugin::v1::User>(const std::string& plugin,
                                                        const std::string& request_id)>
      current_user;
  // plugin name → its settings ("plugin.<name>.<setting>" keys), read for
  // "username" (the plugin's bot user).
  std::map<std::string, std::map<std::string, std::string>> plugin_settings;
  // The time stamped on events (Event.created); tests pin it.
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class HostApiService final : public tracim::plugin::v1::HostApi::CallbackService {
 public:
  // `store`, `changes` and the executor's execution context must outlive
  // every call this service accepted: shut the gRPC server down (it waits
  // for reactors to finish) before joining the executor's pool, and destroy
  // this object last.
  HostApiService(Store& store, ChangePublisher& changes,
                 boost::asio::any_io_executor blocking_executor, HostApiServiceOptions options);
  HostApiService(const HostApiService&) = delete;
  HostApiService& operator=(const HostApiService&) = delete;

  grpc::ServerUnaryReactor* GetCurrentUser(grpc::CallbackServerContext* context,
                                           const tracim::plugin::v1::GetCurrentUserRequest* request,
                                           tracim::plugin::v1::User* response) override;
  grpc::ServerUnaryReactor* GetUser(grpc::CallbackServerContext* context,
                                    const tracim::plugin::v1::GetUserRequest* request,
                                    tracim::plugin::v1::User* response) override;
  grpc::ServerUnaryReactor* ListUsers(grpc::CallbackServerContext* context,
                                      const tracim::plugin::v1::ListUsersRequest* request,
                                      tracim::plugin::v1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* GetWorkspace(grpc::CallbackServerContext* context,
                                         const tracim::plugin::v1::GetWorkspaceRequest* request,
                                         tracim::plugin::v1::Workspace* response) override;
  grpc::ServerUnaryReactor* ListWorkspaces(
      grpc::CallbackServerContext* context,
      const tracim::plugin::v1::ListWorkspacesRequest* request,
      tracim::plugin::v1::ListWorkspacesResponse* response) override;
  grpc::ServerUnaryReactor* ListMembers(grpc::CallbackServerContext* context,
                                        const tracim::plugin::v1::ListMembersRequest* request,
                                        tracim::plugin::v1::ListMembersResponse* response) override;
  grpc::ServerUnaryReactor* AddMember(grpc::CallbackServerContext* context,
                                      const tracim::plugin::v1::AddMemberRequest* request,
                                      tracim::plugin::v1::Membership* response) override;
  grpc::ServerUnaryReactor* GetContent(grpc::CallbackServerContext* context,
                                       const tracim::plugin::v1::GetContentRequest* request,
                                       tracim::plugin::v1::Content* response) override;
  grpc::ServerUnaryReactor* ListContents(
      grpc::CallbackServerContext* context, const tracim::plugin::v1::ListContentsRequest* request,
      tracim::plugin::v1::ListContentsResponse* response) override;
  grpc::ServerUnaryReactor* CreateComment(grpc::CallbackServerContext* context,
                                          const tracim::plugin::v1::CreateCommentRequest* request,
                                          tracim::plugin::v1::Content* response) override;
  grpc::ServerUnaryReactor* KvGet(grpc::CallbackServerContext* context,
                                  const tracim::plugin::v1::KvGetRequest* request,
                                  tracim::plugin::v1::KvGetResponse* response) override;
  grpc::ServerUnaryReactor* KvSet(grpc::CallbackServerContext* context,
                                  const tracim::plugin::v1::KvSetRequest* request,
                                  tracim::plugin::v1::KvSetResponse* response) override;
  grpc::ServerUnaryReactor* KvDelete(grpc::CallbackServerContext* context,
                                     const tracim::plugin::v1::KvDeleteRequest* request,
                                     tracim::plugin::v1::KvDeleteResponse* response) override;
  grpc::ServerUnaryReactor* KvList(grpc::CallbackServerContext* context,
                                   const tracim::plugin::v1::KvListRequest* request,
                                   tracim::plugin::v1::KvListResponse* response) override;

 private:
  // One call, on the blocking executor (host_api_service.cc).
  class Call;

  template <typename Request, typename Response>
  using Method = absl::Status (Call::*)(const Request& request, Response& response);

  // The calling plugin's name, or UNAUTHENTICATED naming why not.
  absl::StatusOr<std::string> Authenticate(const std::optional<std::string>& secret) const;

  // Posts `method` to the blocking executor and returns the reactor it will
  // finish.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, const Request* request,
                                  Response* response, Method<Request, Response> method);

  // On the blocking executor: authenticates, runs `body` (no exception
  // escapes) and finishes `reactor`, clearing `response` on error.
  void Execute(grpc::ServerUnaryReactor* reactor, const std::optional<std::string>& secret,
               google::protobuf::Message* response, absl::FunctionRef<absl::Status(Call&)> body);

  Store& store_;
  ChangePublisher& changes_;
  boost::asio::any_io_executor blocking_executor_;
  const HostApiServiceOptions options_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HOSTAPI_HOST_API_SERVICE_H_
