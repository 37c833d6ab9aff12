// HttpServer: the broker's HTTP/1.1 listener (Boost.Beast parser, our own
// connection state machine in http_connection.h). Keep-alive, chunked
// bodies both ways, header/body limits, timeouts, request ids, graceful
// stop, counters.
//
// Threading: construct, Start and Stop from any thread; everything runs on
// the given io_context (each connection on its own strand, the acceptor on
// another) and never blocks it. counters() and port() are safe from any
// thread. Destroy after Stop's callback ran, or once the io_context no
// longer runs; connections never touch the HttpServer object itself.
//
//   HttpRouter router;
//   router.AddPrefix("/api/", HttpHandler::Simple(api_handler));
//   router.AddPrefix("/plugins/", HttpHandler::Streaming(proxy_handler));
//   HttpServer server(io, options, std::move(router));
//   RETURN_IF_ERROR(server.Start());
//   ... server.port() ...
//   server.Stop([] { /* all connections closed */ });
#ifndef TRACIM_BROKER_HTTP_HTTP_SERVER_H_
#define TRACIM_BROKER_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "broker/http/http_router.h"

namespace tracim::broker {

namespace http_internal {
class ServerCore;
}  // namespace http_internal

struct HttpServerOptions {
  // IP address or host name to bind; port 0 picks a free port (see port()).
  std::string host = "127.0.0.1";
  uint16_t port = 8080;

  // Request line + header fields. Larger: 431 headers_too_large.
  uint32_t max_header_bytes = 16 * 1024;
  // Request body limits by handler kind (a route may override its own).
  // Larger, by Content-Length at once or while reading a chunked body: 413
  // body_too_large.
  uint64_t max_simple_body_bytes = 1024 * 1024;
  uint64_t max_streaming_body_bytes = uint64_t{1} << 30;
  // Largest body chunk handed to a streaming handler; also the socket read
  // size. Memory per connection is about max_header_bytes + 2 chunks.
  uint32_t body_chunk_bytes = 64 * 1024;

  // Total time to receive a request's header block, from accept for the
  // first request and from its first byte for the next ones. Exceeded: 408
  // request_timeout, connection closed.
  absl::Duration header_timeout = absl::Seconds(10);
  // Longest wait for any single read of a request (header or body) to make
  // progress. Exceeded: 408 if nothing of the response was sent, then the
  // connection is cut.
  absl::Duration read_idle_timeout = absl::Seconds(30);
  // Longest wait for a single write to complete (client not reading).
  // Exceeded: the connection is cut.
  absl::Duration write_idle_timeout = absl::Seconds(30);
  // Idle keep-alive connection waiting for its next request: closed
  // silently after this.
  absl::Duration keep_alive_timeout = absl::Seconds(60);
  // Before closing, the server stops sending and drains what the client
  // still sends for up to this long, so an early error response (413, 408)
  // is not destroyed by a TCP reset.
  absl::Duration linger_timeout = absl::Seconds(2);
  // Stop(): how long in-flight requests may take before their connections
  // are cut.
  absl::Duration stop_grace = absl::Seconds(10);
};

// A snapshot of monotonic counters (except connections_open).
struct HttpServerCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
  // Requests received, including malformed ones and ones whose head timed
  // out (each of those got a 400/408/431).
  uint64_t requests = 0;
  // Responses started, by status class (100 Continue counts as 1xx).
  uint64_t responses_1xx = 0;
  uint64_t responses_2xx = 0;
  uint64_t responses_3xx = 0;
  uint64_t responses_4xx = 0;
  uint64_t responses_5xx = 0;
  // Raw bytes on the sockets.
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  // Connections cut for a read, header or write timeout.
  uint64_t timeouts = 0;
  // Handler exceptions, handlers dropping a request, invalid responses.
  uint64_t handler_errors = 0;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerOptions options, HttpRouter router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (synchronously), then accepts on the io_context.
  // kInvalidArgument if the host does not resolve, kUnavailable if the
  // address cannot be bound ("cannot listen on 127.0.0.1:8080: Address
  // already in use"), kFailedPrecondition if called twice.
  absl::Status Start();

  // The bound port (useful with port 0); 0 before Start.
  uint16_t port() const;

  // Stops accepting, closes idle connections, lets in-flight requests finish
  // (their responses carry Connection: close) for up to stop_grace, then
  // cuts the rest. `done` runs on the io_context once every connection is
  // closed. Idempotent: each caller's `done` runs.
  void Stop(std::function<void()> done);

  HttpServerCounters counters() const;

 private:
  std::shared_ptr<http_internal::ServerCore> core_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_SERVER_H_
