// HostApiService: tracim.plugin.v1.HostApi on the broker's control socket —
// what plugins call back into, as themselves (docs/protocol.md, "Host API").
// Each call is authenticated by the secret of the caller's current launch;
// mutations fire tracim's hooks through the ChangePublisher shared with the
// REST API, so events leave in commit order whichever API made the change.
//
// Threading: served with the completion-queue API (QueueService) on the
// control server's queue; the queue's thread only copies the caller's
// secret and posts the call to the blocking executor, where the plugin is
// resolved, the store is called and the call answered. Never blocks the
// queue's thread. Thread-safe.
//
//   boost::asio::thread_pool blocking(2);
//   ChangePublisher changes([&](Event e) { host.Publish(std::move(e)); });
//   HostApiService host_api(store, changes, blocking.get_executor(), options);
//   ControlServer::Start(socket, host, token, {&host_api});  // or, by hand:
//   builder.RegisterService(host_api.service()); ... BuildAndStart();
//   host_api.Serve(queue);  // a CompletionQueueThread::ForServer of that builder
//   ... server->Shutdown(); server->Wait();
//   blocking.join();   // calls still answering from the pool, on the queue
//   queue.Shutdown();  // then destroy host_api
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
#include "broker/common/queue_rpc.h"
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

class HostApiService final : public QueueService {
 public:
  // `store`, `changes` and the executor's execution context must outlive
  // every call this service accepted: shut the gRPC server down, then join
  // the executor's pool (calls it still runs answer on the queue), then shut
  // the queue down, and destroy this object last.
  HostApiService(Store& store, ChangePublisher& changes,
                 boost::asio::any_io_executor blocking_executor, HostApiServiceOptions options);
  HostApiService(const HostApiService&) = delete;
  HostApiService& operator=(const HostApiService&) = delete;

  grpc::Service* service() override { return &service_; }
  std::string name() const override;
  void Serve(CompletionQueueThread& queue) override;

 private:
  // One call, on the blocking executor (host_api_service.cc).
  class Call;

  template <typename Request, typename Response>
  using Method = absl::Status (Call::*)(const Request& request, Response& response);

  // The calling plugin's name, or UNAUTHENTICATED naming why not.
  absl::StatusOr<std::string> Authenticate(const std::optional<std::string>& secret) const;

  // Serves the method `request_method` requests with `method`: each call is
  // posted to the blocking executor.
  template <typename RequestMethod, typename Request, typename Response>
  void ServeMethod(CompletionQueueThread& queue, RequestMethod request_method,
                   Method<Request, Response> method);

  // On the blocking executor: authenticates, runs `body` (no exception
  // escapes) and answers the call, clearing `response` on error.
  void Execute(UnaryDone done, const std::optional<std::string>& secret,
               google::protobuf::Message* response, absl::FunctionRef<absl::Status(Call&)> body);

  Store& store_;
  ChangePublisher& changes_;
  boost::asio::any_io_executor blocking_executor_;
  const HostApiServiceOptions options_;
  tracim::plugin::v1::HostApi::AsyncService service_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HOSTAPI_HOST_API_SERVICE_H_
