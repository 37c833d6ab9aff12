// The two kinds of request handler HttpServer dispatches to, and HttpStream,
// the server side of one streamed exchange.
//
// Threading: handlers are invoked on the connection's strand (the io
// thread) and must not block. HttpResponder and every HttpStream method may
// be called from any thread (they post onto the connection's strand); every
// callback they take runs later on that strand, never inline, and must not
// block either. Release streams and responders before the io_context is
// destroyed (they post to it when released).
#ifndef TRACIM_BROKER_HTTP_HTTP_HANDLER_H_
#define TRACIM_BROKER_HTTP_HTTP_HANDLER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broker/http/http_request.h"
#include "broker/http/http_response.h"

namespace tracim::broker {

// Sends the response of a simple handler. Call it once, from any thread,
// now or later (e.g. after a database query on a worker thread); later calls
// are ignored. Dropping every copy without calling it answers 500
// {"code":"internal_error"}. A no-op once the client has gone.
using HttpResponder = std::function<void(HttpResponse response)>;

// (1) Simple handler, for the REST API: gets the fully read request (body
// bounded by the route's limit) and answers through `respond`. An exception
// thrown by the handler answers 500 JSON.
//
//   HttpHandler::Simple([](HttpRequest req, HttpResponder respond) {
//     respond(HttpResponse{200, {{"Content-Type", "text/plain"}}, "ok"});
//   });
using SimpleHandler = std::function<void(HttpRequest request, HttpResponder respond)>;

struct HttpBodyChunk {
  std::string data;   // 0..body_chunk_bytes bytes
  bool last = false;  // the request body ends with this chunk
};

// The server side of one streamed request/response exchange. Flow control
// is explicit in both directions:
//  - the request body is read from the socket only while a ReadBody is
//    outstanding: at most one chunk of it is in the server's memory;
//  - each Write* completes (its callback runs) once its bytes are handed to
//    the kernel: issue the next write from that callback to keep memory
//    flat. Writes issued earlier are queued, in order, unbounded.
// Reading and writing may overlap (full duplex: answer before the whole
// body has arrived). If the response completes before the request body was
// fully read, the connection is closed after the response.
//
// Errors reported to callbacks (the exchange is then over unless noted):
//  - kCancelled: the client went away, or a write was rejected because the
//    exchange was already over;
//  - kDeadlineExceeded: client too slow sending the body or reading the
//    response (the server answered 408 if nothing was sent yet);
//  - kResourceExhausted: body over the route's limit (server answered 413);
//  - kInvalidArgument: malformed body framing (server answered 400), or a
//    bad argument to a Write* (then the exchange goes on);
//  - kUnavailable: the server stopped and the stop grace expired;
//  - kFailedPrecondition: API misuse (the exchange goes on).
class HttpStream {
 public:
  using WriteCallback = std::function<void(absl::Status status)>;
  using ReadCallback = std::function<void(absl::StatusOr<HttpBodyChunk> chunk)>;

  virtual ~HttpStream() = default;

  // Immutable: safe from any thread, valid as long as this object.
  virtual const HttpRequestHead& request() const = 0;

  // Reads the next piece of the body: data available on the socket, up to
  // body_chunk_bytes; `last` marks the end (possibly with empty data), after
  // which further calls return {"", last=true} at once. One read at a time
  // (a second concurrent one fails with kFailedPrecondition). Sends
  // "100 Continue" first if the client asked for it and no response was
  // started.
  virtual void ReadBody(ReadCallback on_chunk) = 0;

  // Starts the response. kFailedPrecondition if already started;
  // kInvalidArgument for a status outside 200-599 or a header name/value that
  // is not valid on the wire.
  virtual void WriteHead(HttpResponseHead head, WriteCallback on_written) = 0;
  // Appends body bytes (empty data completes at once). For HEAD requests and
  // 204/304 the bytes are discarded. kInvalidArgument past the declared
  // Content-Length.
  virtual void WriteBody(std::string data, WriteCallback on_written) = 0;
  // Ends the response (the chunked terminator, or nothing more). Finishing
  // short of the declared Content-Length cuts the connection and reports
  // kFailedPrecondition.
  virtual void Finish(WriteCallback on_written) = 0;

  // The whole response at once, instead of WriteHead/WriteBody/Finish, e.g.
  // a 502 JSON error. kFailedPrecondition if a response was started.
  virtual void Respond(HttpResponse response, WriteCallback on_written) = 0;
  // Respond, with the write started on the calling thread (before this
  // returns) when the connection is free at that moment; else exactly
  // Respond. It spares the response a hand-over to the io thread — less
  // latency for a caller with nothing else to do, more work on its thread.
  // When the socket takes the whole response at once and nothing but the
  // next request's read follows, the write completes here too: `on_written`
  // runs on the calling thread before this returns (so it must not wait for
  // anything the caller holds); otherwise it runs on the strand, later, as
  // do all other callbacks (an outstanding ReadBody's, say) in every case.
  virtual void RespondFromHere(HttpResponse response, WriteCallback on_written) = 0;

  // Cuts the connection now, for failures after the head went out (the
  // client sees a truncated response). Pending callbacks get kCancelled.
  virtual void Abort() = 0;

  // `on_cancel` runs once (on the strand) if the exchange ends abnormally for
  // a reason outside the handler: client gone, timeout, limit, server stop.
  // Not after a normal Finish/Respond, not after Abort(). Set it before
  // waiting on anything that only the client's progress would end (e.g. a
  // plugin response that will never be read).
  virtual void SetOnCancel(std::function<void(absl::Status reason)> on_cancel) = 0;
};

// (2) Streaming handler, for the plugin proxy: gets the request head at once
// and drives the exchange through the stream; it owns the stream as long as
// it needs it. Releasing the last reference before the response is complete
// answers 500 JSON if nothing was sent, else cuts the connection. An
// exception thrown by the handler is treated the same way.
using StreamingHandler = std::function<void(std::shared_ptr<HttpStream> stream)>;

// A handler bound in HttpRouter.
struct HttpHandler {
  static HttpHandler Simple(SimpleHandler fn, std::optional<uint64_t> max_body_bytes = {}) {
    return HttpHandler{std::move(fn), max_body_bytes};
  }
  static HttpHandler Streaming(StreamingHandler fn, std::optional<uint64_t> max_body_bytes = {}) {
    return HttpHandler{std::move(fn), max_body_bytes};
  }

  std::variant<SimpleHandler, StreamingHandler> fn;
  // Overrides HttpServerOptions::max_simple_body_bytes or
  // max_streaming_body_bytes for this route. A larger body gets 413.
  std::optional<uint64_t> max_body_bytes;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_HANDLER_H_
