// HttpCallReactor: serves one Plugin.HandleHttp call (the gRPC callback
// API's bidi reactor) for PluginService. Reactions only move bytes; route
// handlers never run on gRPC's threads:
// - buffered routes: the reactor collects the body, the handler runs on the
//   HTTP WorkQueue once the body is complete, and the reactor streams the
//   response it returned in kResponseChunkBytes messages: no thread is held
//   while a slow client uploads or downloads.
// - streaming routes: the handler runs on a thread of an ElasticThreadPool
//   for the whole exchange (it blocks on the client by design) and moves
//   the bodies through this reactor, which holds at most one request chunk
//   and one response chunk at a time (one read and one write outstanding).
// - no route: the reactor answers 404 / 405 itself.
//
// Thread-safety: reactions come from gRPC's threads, the HttpTransport calls
// from the handler's thread; all state is guarded by one mutex.
#ifndef TRACIM_SDK_CPP_SRC_HTTP_CALL_REACTOR_H_
#define TRACIM_SDK_CPP_SRC_HTTP_CALL_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "sdk_cpp/src/elastic_thread_pool.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/work_queue.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin::internal {

// Streaming route handlers running at once; further requests wait for a
// thread (bounded by their route's deadline). Each thread is created on
// demand and kept for reuse.
inline constexpr int kMaxStreamingHandlerThreads = 32;

// Counters shared by the calls of one PluginService, for tests and
// diagnostics. Monotonic except the two gauges.
struct HttpCallStats {
  std::atomic<int64_t> live_calls{0};                  // gauge: reactors not yet destroyed
  std::atomic<int64_t> running_streaming_handlers{0};  // gauge
  // The most body bytes one streaming call's reactor held at once (its
  // pending request chunk plus the response chunk being written).
  std::atomic<size_t> peak_streaming_bytes_held{0};
};

// What every call of one service shares (copied into each call): the
// referenced objects must outlive every call and every running handler.
struct HttpCallEnv {
  const PluginRegistry& registry;
  WorkQueue& http_queue;  // buffered handlers, and the start of streaming ones
  ElasticThreadPool& streaming_threads;
  HttpCallStats& stats;
  LogSink log;
};

// Starts serving one call; the returned reactor owns itself (until OnDone
// and until its handler returned).
grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>* StartHttpCall(
    grpc::CallbackServerContext* context, const HttpCallEnv& env);

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_HTTP_CALL_REACTOR_H_
