// Internal to broker/http: one accepted TCP connection — reads and parses
// requests (Beast's parser driven by hand, so every socket read has its own
// deadline and the body is read only on demand), dispatches them to the
// router's handlers, writes responses through one ordered queue, enforces
// limits and timeouts, and closes with a lingering drain.
//
// Threading: every member runs on the connection's strand (`executor_`)
// with `mu_` held, or — for HttpStream::RespondFromHere, when the connection
// is free — on the caller's thread with `mu_` held (TryRunHere). (Asio's
// composed write also uses `socket_` on the strand between partial writes,
// without `mu_`: see WriteNext.) The public methods, HttpStream calls and
// HttpResponder calls may come from any thread: they post onto the strand.
#ifndef TRACIM_BROKER_HTTP_HTTP_CONNECTION_H_
#define TRACIM_BROKER_HTTP_HTTP_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
// GCC 12 with -fsanitize=address,undefined reports a false
// -Wmaybe-uninitialized inside Beast's parser (boost::optional content
// length); -Werror would make that fatal.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/parser.hpp"
#pragma GCC diagnostic pop
#include "broker/http/http_handler.h"
#include "broker/http/http_request.h"
#include "broker/http/http_response.h"

namespace tracim::broker::http_internal {

class ServerCore;
class StreamImpl;
struct ResponderState;

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // `socket` must be bound to a strand of its own.
  HttpConnection(std::shared_ptr<ServerCore> core, boost::asio::ip::tcp::socket socket);
  ~HttpConnection();

  void Start();
  // Stop(): no new request; idle now → closed at once.
  void BeginShutdown();
  // Stop() grace expired: cut now; pending handler callbacks get `reason`.
  void ForceClose(absl::Status reason);

 private:
  friend class StreamImpl;
  friend struct ResponderState;
  using Clock = std::chrono::steady_clock;
  using WriteDone = std::function<void(absl::Status)>;
  using BodyConsumer = std::function<void(absl::StatusOr<HttpBodyChunk>)>;
  enum class ReadFor { kHead, kBody, kDrain };

  // One request/response exchange.
  struct Exchange {
    uint64_t seq = 0;
    std::shared_ptr<const HttpRequestHead> head;
    const HttpHandler* handler = nullptr;
    bool keep_alive = false;  // what the client asked for
    bool is_head_method = false;
    uint64_t body_limit = 0;
    uint64_t body_received = 0;
    bool body_done = false;
    bool continue_pending = false;  // Expect: 100-continue not answered yet
    std::string simple_body;

    bool response_started = false;  // a head is queued
    bool finish_queued = false;     // the last write of the response is queued
    bool response_done = false;     // ... and written
    bool close_after = false;       // the head said Connection: close
    bool response_has_body = true;  // false for HEAD, 204, 304: bytes dropped
    bool chunked = false;
    std::optional<uint64_t> declared_length;
    uint64_t body_written = 0;

    // Ended abnormally: the handler's further calls fail with cancel_reason.
    bool cancelled = false;
    absl::Status cancel_reason;
    std::function<void(absl::Status)> on_cancel;

    bool over() const { return response_done || cancelled; }
  };

  struct WriteOp {
    std::string head;
    std::string body;
    std::string tail;
    WriteDone done;
  };

  // Holds `mu_` for code running as the strand: every strand handler and
  // TryRunHere. Marks the thread as inside a connection meanwhile.
  class Entered;

  // Runs `f` on the strand (with `mu_` held).
  template <typename F>
  void Post(F&& f);
  // Runs `f()` on this thread, as if on the strand, when it can be done at
  // once: no handler posted to the connection is waiting (so nothing this
  // thread asked for earlier runs after it), `mu_` is free, and this thread
  // is not running connection code already (no re-entry from a callback).
  // `f` returns whether it did the work; when it cannot (say, the exchange
  // ended), it must change nothing, and the caller posts instead. `f` calls
  // no handler callback, except RespondHere's own (see there).
  // Returns false when `f` did not run or did not do the work.
  template <typename F>
  bool TryRunHere(F&& f);
  // StreamRespond for TryRunHere: the response is queued (and its write
  // started on this thread) if StreamRespond would accept it; otherwise
  // nothing changes and false is returned. When the socket takes the whole
  // response at once and all that follows is the next request's read (no
  // request bytes buffered, no ReadBody outstanding, no close), the write
  // completes here too (`cb` runs, the next read starts), so the io thread
  // is not woken for it.
  bool RespondHere(uint64_t seq, HttpResponse& response, WriteDone& cb);
  // Whether OnStreamReleased(seq) would do nothing.
  bool StreamReleaseIsNoop(uint64_t seq) const;

  // Request reading.
  void DoStart();
  void StartRequest();
  void ParseHead();
  void OnHeadError(boost::system::error_code ec);
  void OnHead();
  void ReadMore(ReadFor what);
  void ArmReadTimer();
  void OnRead(boost::system::error_code ec, size_t n);
  void OnReadTimeout();
  void StartBodyRead(BodyConsumer consumer);
  void ContinueBodyRead();

  // Dispatch.
  void ReadSimpleBody();
  void InvokeSimple();
  void InvokeStreaming();
  void OnSimpleResponse(uint64_t seq, HttpResponse response);
  void OnResponderDropped(uint64_t seq);
  // A handler threw or broke its contract: 500 if nothing was sent, else cut.
  void HandlerFailed(absl::string_view why);
  template <typename F, typename... Args>
  void CallHandler(F& f, Args&&... args);

  // HttpStream, on the strand.
  absl::Status StreamUsable(uint64_t seq) const;
  // StreamUsable, no response started yet, and a head valid on the wire.
  absl::Status CheckResponseStart(uint64_t seq, int status, const HttpHeaders& headers) const;
  void StreamReadBody(uint64_t seq, HttpStream::ReadCallback cb);
  void StreamWriteHead(uint64_t seq, HttpResponseHead head, WriteDone cb);
  void StreamWriteBody(uint64_t seq, std::string data, WriteDone cb);
  void StreamFinish(uint64_t seq, WriteDone cb);
  void StreamRespond(uint64_t seq, HttpResponse response, WriteDone cb);
  void StreamAbort(uint64_t seq);
  void StreamSetOnCancel(uint64_t seq, std::function<void(absl::Status)> on_cancel);
  void OnStreamReleased(uint64_t seq);

  // Response writing.
  bool Current(uint64_t seq) const { return ex_ != nullptr && ex_->seq == seq; }
  // Queues a whole response for the current exchange (or for a request
  // whose head could not be parsed when ex_ is null). `close` forces
  // Connection: close; it is also forced when keep-alive is not possible.
  void QueueResponse(HttpResponse response, bool close, WriteDone done);
  // The done-callback of the current exchange's last write: marks it done,
  // tells the handler, then serves the next request or closes.
  WriteDone CompleteExchange(uint64_t seq, WriteDone handler_cb);
  void AfterExchange();
  // Protocol error, limit or timeout: ends the exchange for the handler
  // (`reason`) and answers `status` with Connection: close, or cuts the
  // connection if a response was already started.
  void FailRequest(int status, absl::string_view code, absl::string_view message,
                   absl::Status reason);
  // Ends the exchange abnormally: further stream calls fail with `reason`,
  // an outstanding ReadBody gets it, and so does on_cancel if
  // `tell_on_cancel` (causes outside the handler).
  void CancelExchange(absl::Status reason, bool tell_on_cancel);
  void QueueWrite(std::string head, std::string body, std::string tail, WriteDone done);
  void WriteNext();
  void OnWrite(boost::system::error_code ec, size_t n);

  // Closing.
  void CloseAfterWrites();
  void BeginLinger();
  void FinalClose(absl::Status reason);

  const std::shared_ptr<ServerCore> core_;
  const boost::asio::any_io_executor executor_;
  // Held by whatever runs connection code (see Threading above). A strand
  // handler may wait for it while a TryRunHere runs (briefly: a response is
  // queued and its first send made); TryRunHere never waits for it.
  std::mutex mu_;
  // Handlers posted by Post() that have not run yet.
  std::atomic<uint32_t> posted_{0};
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer read_timer_;
  boost::asio::steady_timer write_timer_;
  uint64_t read_timer_gen_ = 0;
  uint64_t write_timer_gen_ = 0;
  std::string client_address_;
  uint16_t client_port_ = 0;

  // Bytes read from the socket, not parsed yet.
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body>> parser_;
  ReadFor read_for_ = ReadFor::kHead;
  bool read_pending_ = false;
  bool first_request_ = true;
  bool awaiting_first_byte_ = false;  // idle keep-alive
  Clock::time_point header_deadline_;
  // Body reading: the consumer of the outstanding read and its chunk.
  BodyConsumer body_consumer_;
  std::string chunk_;

  std::deque<WriteOp> writes_;
  bool write_pending_ = false;
  // Set by RespondHere around its QueueResponse: WriteNext first tries the
  // write at once, and when it is whole leaves its completion to RespondHere
  // (written_here_ holds the byte count) instead of to the io thread.
  bool writing_here_ = false;
  std::optional<size_t> written_here_;

  uint64_t next_seq_ = 0;
  std::unique_ptr<Exchange> ex_;

  bool shutting_down_ = false;
  bool closing_ = false;  // no further request; close once writes drain
  bool lingering_ = false;
  Clock::time_point linger_deadline_;
  bool closed_ = false;
  absl::Status close_reason_;
};

}  // namespace tracim::broker::http_internal

#endif  // TRACIM_BROKER_HTTP_HTTP_CONNECTION_H_
