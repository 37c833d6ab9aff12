// PluginRouteProxy: serves /plugins/<name>/... on the broker's HTTP listener
// by forwarding each request to the route the plugin registered, over one
// Plugin.HandleHttp gRPC stream, bodies streamed both ways with flow
// control (one chunk in flight each way: memory stays flat whatever the
// size). Authenticates the caller like the REST API, withholds credentials,
// records the request for HostApi.GetCurrentUser, and answers JSON errors
// when the plugin cannot (404, 405, 401, 503, 502, 504; the HTTP server
// itself answers 413 and 431).
//
// Threading: Handle runs on the connection's strand and never blocks;
// authentication runs on the blocking executor; the calls' gRPC completions
// all run on the proxy's own completion-queue thread. Each request's state
// is guarded by its own mutex. counters() and WaitIdle() are safe from any
// thread.
//
//   PluginRouteProxy proxy(host, authenticate, blocking.get_executor(), in_flight, options);
//   RETURN_IF_ERROR(proxy.Register(router));   // binds the prefix "/plugins/"
//   ... io.run() returns after the HTTP server stopped ...
//   proxy.WaitIdle(absl::Seconds(5));          // then destroy it
#ifndef TRACIM_BROKER_PROXY_PLUGIN_ROUTE_PROXY_H_
#define TRACIM_BROKER_PROXY_PLUGIN_ROUTE_PROXY_H_

#include <grpcpp/alarm.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/any_io_executor.hpp"
#include "broker/common/completion_queue_thread.h"
#include "broker/http/http_handler.h"
#include "broker/http/http_headers.h"
#include "broker/http/http_router.h"
#include "broker/proxy/in_flight_requests.h"
#include "tracim/plugin/v1/entities.pb.h"

namespace tracim::broker {

class PluginHost;

// Authenticates a request that carries credentials (HasCredentials in
// broker/backend/authenticator.h). Runs on the blocking executor, may block.
// Errors are answered with ErrorResponse (UNAUTHENTICATED → 401 JSON).
using RequestAuthenticator =
    std::function<absl::StatusOr<tracim::plugin::v1::User>(const HttpHeaders& headers)>;

struct PluginRouteProxyOptions {
  // broker.max_body_bytes: larger request bodies get 413 from the server.
  uint64_t max_body_bytes = uint64_t{1} << 30;
  // broker.route_timeout_ms: deadline of a route registered with
  // timeout_ms 0, for the whole exchange.
  absl::Duration default_timeout = absl::Seconds(30);
  // Retry-After of a 503 while the plugin is starting or registering, and
  // while it is failed, stopping or stopped.
  absl::Duration retry_after_starting = absl::Seconds(1);
  absl::Duration retry_after_down = absl::Seconds(5);
  // The completion queue the HandleHttp calls run on: the control server's
  // (ControlServer::queue()), so that the broker's gRPC has one polling
  // thread; it must outlive the proxy. Unset: the proxy makes its own.
  CompletionQueueThread* calls = nullptr;
};

// Monotonic, except in_flight.
struct PluginRouteProxyCounters {
  uint64_t requests = 0;            // every request under /plugins/
  uint64_t forwarded = 0;           // HandleHttp calls started
  uint64_t completed = 0;           // responses relayed completely
  uint64_t not_found = 0;           // 404: no plugin, no route
  uint64_t method_not_allowed = 0;  // 405
  uint64_t unauthenticated = 0;     // 401
  uint64_t unavailable = 0;         // 503: plugin not ready
  uint64_t failed = 0;              // 502, or cut after the head: the plugin failed the call
  uint64_t timed_out = 0;           // 504, or cut after the head: the route's deadline passed
  uint64_t cancelled = 0;           // the client went away or was cut off first
  int64_t in_flight = 0;
};

class PluginRouteProxy {
 public:
  // `host`, the executor's context and `in_flight` must outlive this object,
  // which must outlive every request it accepted (see WaitIdle).
  PluginRouteProxy(PluginHost& host, RequestAuthenticator authenticate,
                   boost::asio::any_io_executor blocking_executor, InFlightRequests& in_flight,
                   PluginRouteProxyOptions options = {});
  PluginRouteProxy(const PluginRouteProxy&) = delete;
  PluginRouteProxy& operator=(const PluginRouteProxy&) = delete;
  // Waits for the gRPC operations still outstanding (none once WaitIdle
  // returned true).
  ~PluginRouteProxy();

  // Binds the prefix "/plugins/" (a streaming handler limited to
  // max_body_bytes). Fails as HttpRouter::AddPrefix does.
  absl::Status Register(HttpRouter& router);

  // The handler Register binds. On the connection's strand; never blocks.
  void Handle(std::shared_ptr<HttpStream> stream);

  // Waits until no accepted request is left (each ends promptly once the
  // HTTP server stopped: its client side is cancelled). False at the
  // timeout.
  bool WaitIdle(absl::Duration timeout);

  PluginRouteProxyCounters counters() const;

 private:
  class Exchange;  // one request (plugin_route_proxy.cc)
  friend class Exchange;

  void Begin() ABSL_LOCKS_EXCLUDED(mu_);
  void End() ABSL_LOCKS_EXCLUDED(mu_);

  PluginHost& host_;
  const RequestAuthenticator authenticate_;
  const boost::asio::any_io_executor blocking_executor_;
  InFlightRequests& in_flight_;
  const PluginRouteProxyOptions options_;

  struct AtomicCounters {
    std::atomic<uint64_t> requests{0}, forwarded{0}, completed{0}, not_found{0},
        method_not_allowed{0}, unauthenticated{0}, unavailable{0}, failed{0}, timed_out{0},
        cancelled{0};
  };
  AtomicCounters counters_;

  mutable absl::Mutex mu_;
  // Accepted requests whose exchange has not ended.
  int64_t active_ ABSL_GUARDED_BY(mu_) = 0;
  // Calls start on the queue's thread, not on the io thread or the blocking
  // executor: a call started from another thread than the one draining its
  // queue hands the poller role back and forth (measured: 0.9 context
  // switches per request more, ~13 % more broker CPU per request). Requests
  // accepted meanwhile are started together when the alarm fires. When no
  // call is in flight, a call starts at once on the caller's thread.
  struct StartQueued final : CompletionQueueThread::Completion {
    explicit StartQueued(PluginRouteProxy* proxy) : proxy(proxy) {}
    void OnComplete(bool ok) override;
    PluginRouteProxy* const proxy;
  };
  void QueueStart(std::shared_ptr<Exchange> exchange, std::optional<tracim::plugin::v1::User> user)
      ABSL_LOCKS_EXCLUDED(start_mu_);

  // Calls started and not yet released.
  std::atomic<int64_t> calls_in_flight_{0};
  absl::Mutex start_mu_;
  std::vector<std::pair<std::shared_ptr<Exchange>, std::optional<tracim::plugin::v1::User>>>
      to_start_ ABSL_GUARDED_BY(start_mu_);
  bool start_alarm_set_ ABSL_GUARDED_BY(start_mu_) = false;
  grpc::Alarm start_alarm_ ABSL_GUARDED_BY(start_mu_);
  StartQueued start_queued_{this};

  // Options::calls when none was given. Declared last, so destroyed first:
  // its thread is joined (and its queue drained, the alarm's event
  // included) while the members above still exist.
  std::unique_ptr<CompletionQueueThread> own_calls_;
  // Where every HandleHttp call starts and completes.
  CompletionQueueThread* const calls_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROXY_PLUGIN_ROUTE_PROXY_H_
