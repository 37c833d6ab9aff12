// PluginService: tracim.plugin.v1.Plugin served with gRPC's callback API for
// one plugin process. Reactions never run plugin code: events go to a
// one-thread WorkQueue (delivery order, acks after the handler returns),
// HTTP requests to a pool, and the reactors only move bytes.
//
// Thread-safety: gRPC calls it from its own threads; the registry it
// dispatches to must be fully registered before the queues are started.
#ifndef TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_
#define TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/work_queue.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin::internal {

// Size of the response body chunks sent to the broker.
inline constexpr size_t kResponseChunkBytes = 64 * 1024;
// Events received but not yet acknowledged on one stream before the SDK
// stops reading (flow control pushes back to the broker), and the level
// under which it reads again.
inline constexpr int kMaxUnackedEvents = 1024;
inline constexpr int kResumeUnackedEvents = 256;

class EventsReactor;

class PluginService final : public v1::Plugin::CallbackService {
 public:
  // Called (from a reaction, must not block) when the broker asks the plugin
  // to stop.
  using ShutdownCallback = std::function<void(std::string reason, std::chrono::milliseconds grace)>;

  // Every argument must outlive the server. `secret` is the per-launch
  // secret every call must carry in the "tracim-plugin-secret" metadata.
  PluginService(const PluginRegistry& registry, std::string secret, WorkQueue& event_queue,
                WorkQueue& http_queue, ShutdownCallback on_shutdown, LogSink log);

  grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck>* Events(
      grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>* HandleHttp(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context,
                                     const v1::ShutdownRequest* request,
                                     v1::ShutdownResponse* response) override;

  // Ends every open Events stream with OK once the acks already due are
  // written, and refuses new ones (UNAVAILABLE). Called when stopping, after
  // the event queue stopped: otherwise the broker's long-lived stream would
  // hold the server's Shutdown until its deadline. Events not acknowledged
  // are redelivered to the next launch.
  void CloseEventStreams();

 private:
  // OK when the call carries the secret; otherwise logs one line and returns
  // UNAUTHENTICATED.
  grpc::Status Authenticate(grpc::CallbackServerContext* context, std::string_view method) const;

  const PluginRegistry& registry_;
  const std::string secret_;
  WorkQueue& event_queue_;
  WorkQueue& http_queue_;
  const ShutdownCallback on_shutdown_;
  const LogSink log_;

  absl::Mutex streams_mu_;
  std::vector<std::weak_ptr<EventsReactor>> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool streams_closed_ ABSL_GUARDED_BY(streams_mu_) = false;
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_
