// PluginService: tracim.plugin.v1.Plugin served with gRPC's callback API for
// one plugin process. Reactions never run plugin code: events go to a
// one-thread WorkQueue (delivery order, acks after the handler returns),
// buffered route handlers to the HTTP WorkQueue, streaming route handlers to
// threads of their own (http_call_reactor.h), and the reactors only move
// bytes.
//
// Thread-safety: gRPC calls it from its own threads; the registry it
// dispatches to must be fully registered before the queues are started.
// Destroy it after the server: its destructor waits for the streaming route
// handlers still running (the server's shutdown cancelled their calls).
#ifndef TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_
#define TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sdk_cpp/src/elastic_thread_pool.h"
#include "sdk_cpp/src/http_call_reactor.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/work_queue.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin::internal {

// Events received but not yet acknowledged on one stream before the SDK
// stops reading (flow control pushes back to the broker), and the level
// under which it reads again.
inline constexpr int kMaxUnackedEvents = 1024;
inline constexpr int kResumeUnackedEvents = 256;
// Events of one batch are acknowledged together once their handlers
// returned, and at the latest this long after the group's first handler
// started: fast handlers give one ack message per batch, slow ones do not
// hold acks back for a whole batch.
inline constexpr std::chrono::milliseconds kAckGroupDelay{2};

// Runs `handle` on each event of `batch`, in order, and passes the ids of
// the events whose handler returned to `ack`, in order: all together at the
// end of the batch, or earlier once `max_delay` has passed since the current
// group's first handler started, so that slow handlers do not hold the first
// acks back for the whole batch. `now` is the clock (a parameter for tests).
void HandleInAckGroups(const v1::EventBatch& batch,
                       absl::FunctionRef<void(const v1::Event&)> handle,
                       absl::FunctionRef<void(const std::vector<uint64_t>&)> ack,
                       absl::FunctionRef<std::chrono::steady_clock::time_point()> now,
                       std::chrono::steady_clock::duration max_delay);

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

  // Waits until the streaming route handlers still running return (the
  // server's shutdown cancels their calls: their Read and Write fail), at
  // most until `deadline`, and refuses new ones. False when one still runs
  // then: end the process instead of destroying this object. Without this
  // call, the destructor waits for them without deadline.
  bool StopStreamingHandlers(absl::Time deadline) { return streaming_threads_.Stop(deadline); }

  // HandleHttp's counters (tests, diagnostics).
  const HttpCallStats& http_stats() const { return http_stats_; }

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

  // Declared before the pool: its threads' handlers update the counters
  // until the pool is destroyed.
  HttpCallStats http_stats_;
  ElasticThreadPool streaming_threads_{kMaxStreamingHandlerThreads};

  absl::Mutex streams_mu_;
  std::vector<std::weak_ptr<EventsReactor>> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool streams_closed_ ABSL_GUARDED_BY(streams_mu_) = false;
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_PLUGIN_SERVICE_H_
