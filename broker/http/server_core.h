// Internal to broker/http: the state HttpServer shares with its connections
// (options, router, counters, acceptor, the set of open connections), kept
// alive by a shared_ptr so that a handler holding a stream past the
// server's lifetime is harmless.
// Threading: the acceptor and timers live on `strand_`; the connection set
// is guarded by `mu_`; counters are atomics. Public methods: any thread.
#ifndef TRACIM_BROKER_HTTP_SERVER_CORE_H_
#define TRACIM_BROKER_HTTP_SERVER_CORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "broker/http/http_router.h"
#include "broker/http/http_server.h"

namespace tracim::broker::http_internal {

class HttpConnection;

class AtomicCounters {
 public:
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> handler_errors{0};

  void CountResponse(int status);
  HttpServerCounters Snapshot() const;

 private:
  // Index = status / 100, 1..5.
  std::atomic<uint64_t> responses_[6] = {};
};

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(boost::asio::io_context& io, HttpServerOptions options, HttpRouter router);

  // Binds and listens synchronously, then starts the accept loop.
  absl::Status Listen();
  uint16_t port() const { return port_.load(); }
  void Stop(std::function<void()> done);
  // The HttpServer went away without a completed Stop: cut everything.
  void Abandon();
  // Called once by each connection when its socket is closed.
  void ConnectionClosed(HttpConnection* connection);

  const HttpServerOptions& options() const { return options_; }
  const HttpRouter& router() const { return router_; }
  AtomicCounters& counters() { return counters_; }

 private:
  void DoAccept();
  void OnAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);
  // On strand_: runs the Stop callbacks once stopping and no connection is left.
  void CheckDrained();
  std::vector<std::shared_ptr<HttpConnection>> Snapshot();

  boost::asio::io_context& io_;
  const HttpServerOptions options_;
  const HttpRouter router_;
  AtomicCounters counters_;
  std::atomic<uint16_t> port_{0};
  std::atomic<bool> listening_{false};

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_timer_;
  boost::asio::steady_timer grace_timer_;

  absl::Mutex mu_;
  std::unordered_map<HttpConnection*, std::weak_ptr<HttpConnection>> connections_
      ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> stop_callbacks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tracim::broker::http_internal

#endif  // TRACIM_BROKER_HTTP_SERVER_CORE_H_
