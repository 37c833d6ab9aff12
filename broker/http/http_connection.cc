#include "broker/http/http_connection.h"

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <mutex>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/http/error.hpp"
#include "broker/http/http_wire.h"
#include "broker/http/server_core.h"
#include "spdlog/spdlog.h"

namespace tracim::broker::http_internal {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

// Clamped so that now() + d cannot overflow (absl::InfiniteDuration() means
// "practically never").
std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::clamp(d, absl::ZeroDuration(), absl::Hours(24 * 365)));
}

absl::Status ClientGone() { return absl::CancelledError("client closed the connection"); }

// How many connections' code this thread is running (0 or 1): TryRunHere
// never runs from inside a strand handler or another TryRunHere.
thread_local int t_inside_connection = 0;

std::string ToString(boost::beast::string_view s) { return std::string(s.data(), s.size()); }

}  // namespace

// The HttpStream handed to streaming handlers: forwards every call to the
// connection's strand, tagged with its exchange so that a stale handle never
// touches a later request of the same keep-alive connection.
class StreamImpl final : public HttpStream {
 public:
  StreamImpl(std::shared_ptr<HttpConnection> connection, uint64_t seq,
             std::shared_ptr<const HttpRequestHead> head)
      : connection_(std::move(connection)), seq_(seq), head_(std::move(head)) {}

  ~StreamImpl() override {
    // Usually the response is complete or queued by now: nothing to do, and
    // no reason to wake the io thread to find that out.
    if (connection_->TryRunHere([&] { return connection_->StreamReleaseIsNoop(seq_); })) return;
    connection_->Post([c = connection_, seq = seq_] { c->OnStreamReleased(seq); });
  }

  const HttpRequestHead& request() const override { return *head_; }

  void ReadBody(ReadCallback on_chunk) override {
    connection_->Post([c = connection_, seq = seq_, cb = std::move(on_chunk)]() mutable {
      c->StreamReadBody(seq, std::move(cb));
    });
  }
  void WriteHead(HttpResponseHead head, WriteCallback on_written) override {
    connection_->Post([c = connection_, seq = seq_, head = std::move(head),
                       cb = std::move(on_written)]() mutable {
      c->StreamWriteHead(seq, std::move(head), std::move(cb));
    });
  }
  void WriteBody(std::string data, WriteCallback on_written) override {
    connection_->Post([c = connection_, seq = seq_, data = std::move(data),
                       cb = std::move(on_written)]() mutable {
      c->StreamWriteBody(seq, std::move(data), std::move(cb));
    });
  }
  void Finish(WriteCallback on_written) override {
    connection_->Post([c = connection_, seq = seq_, cb = std::move(on_written)]() mutable {
      c->StreamFinish(seq, std::move(cb));
    });
  }
  void Respond(HttpResponse response, WriteCallback on_written) override {
    connection_->Post([c = connection_, seq = seq_, r = std::move(response),
                       cb = std::move(on_written)]() mutable {
      c->StreamRespond(seq, std::move(r), std::move(cb));
    });
  }
  void RespondFromHere(HttpResponse response, WriteCallback on_written) override {
    if (connection_->TryRunHere(
            [&] { return connection_->RespondHere(seq_, response, on_written); })) {
      return;
    }
    Respond(std::move(response), std::move(on_written));
  }
  void Abort() override {
    connection_->Post([c = connection_, seq = seq_] { c->StreamAbort(seq); });
  }
  void SetOnCancel(std::function<void(absl::Status)> on_cancel) override {
    connection_->Post([c = connection_, seq = seq_, cb = std::move(on_cancel)]() mutable {
      c->StreamSetOnCancel(seq, std::move(cb));
    });
  }

 private:
  const std::shared_ptr<HttpConnection> connection_;
  const uint64_t seq_;
  const std::shared_ptr<const HttpRequestHead> head_;
};

// Shared by every copy of one HttpResponder: answers once, and answers 500
// when the last copy goes away unused.
struct ResponderState {
  ResponderState(std::shared_ptr<HttpConnection> c, uint64_t s)
      : connection(std::move(c)), seq(s) {}
  ~ResponderState() {
    if (!used.load()) connection->Post([c = connection, s = seq] { c->OnResponderDropped(s); });
  }
  void Respond(HttpResponse response) {
    if (used.exchange(true)) return;
    connection->Post([c = connection, s = seq, r = std::move(response)]() mutable {
      c->OnSimpleResponse(s, std::move(r));
    });
  }

  const std::shared_ptr<HttpConnection> connection;
  const uint64_t seq;
  std::atomic<bool> used{false};
};

HttpConnection::HttpConnection(std::shared_ptr<ServerCore> core, tcp::socket socket)
    : core_(std::move(core)),
      executor_(socket.get_executor()),
      socket_(std::move(socket)),
      read_timer_(executor_),
      write_timer_(executor_),
      buffer_(core_->options().max_header_bytes + core_->options().body_chunk_bytes) {}

HttpConnection::~HttpConnection() {
  // Only when the io_context dropped our handlers without running them.
  if (!closed_) core_->ConnectionClosed(this);
}

class HttpConnection::Entered {
 public:
  explicit Entered(HttpConnection& c) : lock_(c.mu_) { ++t_inside_connection; }
  Entered(HttpConnection& c, std::adopt_lock_t) : lock_(c.mu_, std::adopt_lock) {
    ++t_inside_connection;
  }
  ~Entered() { --t_inside_connection; }
  Entered(const Entered&) = delete;
  Entered& operator=(const Entered&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
};

template <typename F>
void HttpConnection::Post(F&& f) {
  posted_.fetch_add(1, std::memory_order_relaxed);
  asio::post(executor_, [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
    const Entered entered(*self);
    self->posted_.fetch_sub(1, std::memory_order_relaxed);
    f();
  });
}

// The socket: besides the strand, only code under mu_ uses it, and that
// code starts a write only when none is pending (QueueWrite). So the steps
// async_write takes on the strand without mu_ (a partial write's
// continuation) never meet it; reads are independent operations.
template <typename F>
bool HttpConnection::TryRunHere(F&& f) {
  if (t_inside_connection > 0 || !mu_.try_lock()) return false;
  const Entered entered(*this, std::adopt_lock);
  // Read under mu_, which every posted handler takes before it counts
  // itself as run: 0 means whatever this thread posted earlier is done.
  if (posted_.load(std::memory_order_relaxed) != 0) return false;
  return std::forward<F>(f)();
}

bool HttpConnection::RespondHere(uint64_t seq, HttpResponse& response, WriteDone& cb) {
  // A failure is left to StreamRespond, on the strand, which reports it.
  if (!CheckResponseStart(seq, response.status, response.headers).ok()) return false;
  {
    writing_here_ = true;
    const absl::Cleanup not_here = [this] { writing_here_ = false; };
    QueueResponse(std::move(response), /*close=*/false, CompleteExchange(seq, std::move(cb)));
  }
  if (const std::optional<size_t> n = std::exchange(written_here_, std::nullopt)) {
    // Completed here only when all that follows is the next request's read
    // (and the caller's own callback). Otherwise it is the strand's: bytes
    // of a pipelined request would be parsed and dispatched; an outstanding
    // ReadBody's callback would run inside the caller's call, where the
    // caller may hold the lock that callback takes (the proxy does); and
    // closing lingers.
    if (buffer_.size() == 0 && !body_consumer_ && !closing_) {
      OnWrite(error_code(), *n);
    } else {
      Post([self = shared_from_this(), n = *n] { self->OnWrite(error_code(), n); });
    }
  }
  return true;
}

bool HttpConnection::StreamReleaseIsNoop(uint64_t seq) const {
  return !Current(seq) || ex_->over() || ex_->finish_queued || closed_;
}

void HttpConnection::Start() {
  Post([self = shared_from_this()] { self->DoStart(); });
}

void HttpConnection::BeginShutdown() {
  Post([self = shared_from_this()] {
    self->shutting_down_ = true;
    if (self->closed_) return;
    // Idle: between requests (or before the first) with nothing received.
    if (self->ex_ == nullptr && !self->closing_ && self->buffer_.size() == 0) {
      self->FinalClose(absl::UnavailableError("server is shutting down"));
    }
  });
}

void HttpConnection::ForceClose(absl::Status reason) {
  Post([self = shared_from_this(), reason = std::move(reason)] { self->FinalClose(reason); });
}

// ---------------------------------------------------------------------------
// Reading requests.

void HttpConnection::DoStart() {
  if (closed_) return;
  error_code ec;
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  if (!ec) {
    client_address_ = peer.address().to_string();
    client_port_ = peer.port();
  }
  socket_.set_option(tcp::no_delay(true), ec);
  // For RespondHere's write at once (WriteNext); Asio's own operations are
  // unaffected.
  socket_.non_blocking(true, ec);
  header_deadline_ = Clock::now() + ToChrono(core_->options().header_timeout);
  StartRequest();
}

void HttpConnection::StartRequest() {
  ex_.reset();
  if (shutting_down_) {
    CloseAfterWrites();
    return;
  }
  parser_.emplace();
  parser_->header_limit(core_->options().max_header_bytes);
  // Body limits depend on the route: enforced by us, not by the parser.
  // (A value rather than boost::none: GCC's -Wmaybe-uninitialized misfires
  // on the empty optional under the sanitizers.)
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  read_for_ = ReadFor::kHead;
  if (!first_request_) {
    awaiting_first_byte_ = buffer_.size() == 0;
    if (!awaiting_first_byte_) {
      header_deadline_ = Clock::now() + ToChrono(core_->options().header_timeout);
    }
  }
  ParseHead();
}

void HttpConnection::ParseHead() {
  if (buffer_.size() > 0) {
    error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec && ec != bhttp::error::need_more) {
      OnHeadError(ec);
      return;
    }
    if (parser_->is_header_done()) {
      OnHead();
      return;
    }
  }
  ReadMore(ReadFor::kHead);
}

void HttpConnection::OnHeadError(error_code ec) {
  core_->counters().requests++;
  if (ec == bhttp::error::header_limit) {
    FailRequest(
        431, "headers_too_large",
        absl::StrCat("request header block exceeds ", core_->options().max_header_bytes, " bytes"),
        absl::ResourceExhaustedError("request header block too large"));
    return;
  }
  FailRequest(400, "bad_request", absl::StrCat("malformed request: ", ec.message()),
              absl::InvalidArgumentError("malformed request"));
}

void HttpConnection::OnHead() {
  first_request_ = false;
  core_->counters().requests++;
  const auto& msg = parser_->get();
  auto head = std::make_shared<HttpRequestHead>();
  head->method = ToString(msg.method_string());
  head->http_version = static_cast<int>(msg.version());
  for (const auto& field : msg) {
    head->headers.Add(ToString(field.name_string()), ToString(field.value()));
  }
  head->client_address = client_address_;
  head->client_port = client_port_;
  const std::optional<absl::string_view> client_id = head->headers.Get("X-Request-Id");
  head->request_id =
      client_id && IsSaneRequestId(*client_id) ? std::string(*client_id) : NewRequestId();
  if (const auto length = parser_->content_length()) head->content_length = *length;
  head->chunked = parser_->chunked();

  ex_ = std::make_unique<Exchange>();
  ex_->seq = ++next_seq_;
  ex_->keep_alive = msg.keep_alive();
  ex_->is_head_method = msg.method() == bhttp::verb::head;
  ex_->body_done = parser_->is_done();
  parser_->eager(true);

  absl::StatusOr<SplitTargetResult> target =
      SplitTarget(absl::string_view(msg.target().data(), msg.target().size()));
  if (!target.ok()) {
    head->target = ToString(msg.target());
    ex_->head = std::move(head);
    FailRequest(400, "bad_request", absl::StrCat("malformed request: ", target.status().message()),
                target.status());
    return;
  }
  head->target = std::move(target->target);
  head->path = std::move(target->path);
  head->query = std::move(target->query);
  ex_->head = head;

  const HttpHandler* handler = core_->router().Find(head->path);
  if (handler == nullptr) {
    QueueResponse(JsonErrorResponse(404, "not_found", absl::StrCat("no route for ", head->path)),
                  /*close=*/false, CompleteExchange(ex_->seq, nullptr));
    return;
  }
  ex_->handler = handler;
  const bool streaming = std::holds_alternative<StreamingHandler>(handler->fn);
  ex_->body_limit =
      handler->max_body_bytes.value_or(streaming ? core_->options().max_streaming_body_bytes
                                                 : core_->options().max_simple_body_bytes);
  if (head->content_length && *head->content_length > ex_->body_limit) {
    FailRequest(413, "body_too_large",
                absl::StrCat("request body exceeds ", ex_->body_limit, " bytes"),
                absl::ResourceExhaustedError("request body too large"));
    return;
  }
  if (const auto expect = head->headers.Get("Expect");
      expect && head->http_version >= 11 && absl::EqualsIgnoreCase(*expect, "100-continue")) {
    ex_->continue_pending = !ex_->body_done;
  }
  if (streaming) {
    InvokeStreaming();
  } else {
    ReadSimpleBody();
  }
}

void HttpConnection::ReadMore(ReadFor what) {
  read_for_ = what;
  if (read_pending_) {
    ArmReadTimer();
    return;
  }
  if (what == ReadFor::kDrain) buffer_.consume(buffer_.size());
  const size_t room = buffer_.max_size() - buffer_.size();
  if (room == 0) {
    // Unparseable bytes filled the buffer. For a head the parser reports
    // header_limit first (kept as a backstop); for a body it is a chunk
    // header line longer than the whole buffer.
    if (what == ReadFor::kHead) {
      OnHeadError(bhttp::error::header_limit);
    } else {
      FailRequest(400, "bad_request", "malformed request body: chunk header too long",
                  absl::InvalidArgumentError("malformed request body: chunk header too long"));
    }
    return;
  }
  const auto space = buffer_.prepare(std::min<size_t>(room, core_->options().body_chunk_bytes));
  read_pending_ = true;
  ArmReadTimer();
  socket_.async_read_some(space, [self = shared_from_this()](error_code ec, size_t n) {
    const Entered entered(*self);
    self->OnRead(ec, n);
  });
}

void HttpConnection::ArmReadTimer() {
  const HttpServerOptions& o = core_->options();
  const Clock::time_point now = Clock::now();
  Clock::time_point deadline;
  if (lingering_) {
    deadline = linger_deadline_;
  } else if (read_for_ == ReadFor::kHead && awaiting_first_byte_) {
    deadline = now + ToChrono(o.keep_alive_timeout);
  } else if (read_for_ == ReadFor::kHead) {
    deadline = std::min(now + ToChrono(o.read_idle_timeout), header_deadline_);
  } else {
    deadline = now + ToChrono(o.read_idle_timeout);
  }
  const uint64_t gen = ++read_timer_gen_;
  read_timer_.expires_at(deadline);
  read_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    const Entered entered(*self);
    if (ec || gen != self->read_timer_gen_) return;
    self->OnReadTimeout();
  });
}

void HttpConnection::OnRead(error_code ec, size_t n) {
  read_pending_ = false;
  ++read_timer_gen_;
  read_timer_.cancel();
  if (closed_) return;
  buffer_.commit(n);
  core_->counters().bytes_received += n;
  if (closing_) {
    // Nothing more is parsed: an error response is on its way, or we drain.
    buffer_.consume(buffer_.size());
    if (lingering_) {
      if (ec) {
        FinalClose(absl::CancelledError("connection closed"));
      } else {
        ReadMore(ReadFor::kDrain);
      }
    }
    return;
  }
  if (ec) {
    FinalClose(ClientGone());
    return;
  }
  if (read_for_ == ReadFor::kHead) {
    if (awaiting_first_byte_) {
      awaiting_first_byte_ = false;
      header_deadline_ = Clock::now() + ToChrono(core_->options().header_timeout);
    }
    ParseHead();
  } else {
    ContinueBodyRead();
  }
}

void HttpConnection::OnReadTimeout() {
  if (closed_) return;
  if (lingering_) {
    FinalClose(absl::CancelledError("connection closed"));
    return;
  }
  if (closing_) return;  // the write timer covers the response on its way
  if (read_for_ == ReadFor::kHead && awaiting_first_byte_) {
    FinalClose(absl::CancelledError("idle keep-alive connection closed"));
    return;
  }
  const bool head = read_for_ == ReadFor::kHead;
  if (head) core_->counters().requests++;
  const std::string message = head ? "client too slow sending the request headers"
                                   : "client too slow sending the request body";
  FailRequest(408, "request_timeout", message, absl::DeadlineExceededError(message));
}

void HttpConnection::StartBodyRead(BodyConsumer consumer) {
  if (ex_->body_done) {
    consumer(HttpBodyChunk{"", true});
    return;
  }
  if (ex_->continue_pending) {
    ex_->continue_pending = false;
    if (!ex_->response_started) {
      core_->counters().CountResponse(100);
      QueueWrite("HTTP/1.1 100 Continue\r\n\r\n", "", "", nullptr);
    }
  }
  body_consumer_ = std::move(consumer);
  chunk_.resize(core_->options().body_chunk_bytes);
  ContinueBodyRead();
}

void HttpConnection::ContinueBodyRead() {
  // Nobody waits for the body any more (the exchange ended): leave the bytes.
  if (!body_consumer_ || ex_ == nullptr) return;
  auto& body = parser_->get().body();
  size_t filled = 0;
  while (buffer_.size() > 0 && !parser_->is_done() && filled < chunk_.size()) {
    body.data = chunk_.data() + filled;
    body.size = chunk_.size() - filled;
    error_code ec;
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    filled = chunk_.size() - body.size;
    if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) break;
    if (ec) {
      body.data = nullptr;
      FailRequest(
          400, "bad_request", absl::StrCat("malformed request body: ", ec.message()),
          absl::InvalidArgumentError(absl::StrCat("malformed request body: ", ec.message())));
      return;
    }
    if (used == 0) break;
  }
  body.data = nullptr;
  body.size = 0;
  if (filled == 0 && !parser_->is_done()) {
    ReadMore(ReadFor::kBody);
    return;
  }
  ex_->body_received += filled;
  if (ex_->body_received > ex_->body_limit) {
    FailRequest(413, "body_too_large",
                absl::StrCat("request body exceeds ", ex_->body_limit, " bytes"),
                absl::ResourceExhaustedError("request body too large"));
    return;
  }
  chunk_.resize(filled);
  const bool last = parser_->is_done();
  ex_->body_done = last;
  BodyConsumer consumer = std::move(body_consumer_);
  body_consumer_ = nullptr;
  HttpBodyChunk chunk{std::move(chunk_), last};
  chunk_ = std::string();
  consumer(std::move(chunk));
}

// ---------------------------------------------------------------------------
// Dispatch.

template <typename F, typename... Args>
void HttpConnection::CallHandler(F& f, Args&&... args) {
  if (!f) return;
  try {
    f(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    HandlerFailed(absl::StrCat("exception: ", e.what()));
  } catch (...) {
    HandlerFailed("unknown exception");
  }
}

void HttpConnection::ReadSimpleBody() {
  if (ex_->simple_body.empty()) {
    ex_->simple_body.reserve(std::min(ex_->head->content_length.value_or(0), ex_->body_limit));
  }
  StartBodyRead([this](absl::StatusOr<HttpBodyChunk> chunk) {
    // On error the server already answered (413/400/408) or the client left.
    if (!chunk.ok()) return;
    ex_->simple_body += chunk->data;
    if (chunk->last) {
      InvokeSimple();
    } else {
      ReadSimpleBody();
    }
  });
}

void HttpConnection::InvokeSimple() {
  HttpRequest request{*ex_->head, std::move(ex_->simple_body)};
  auto state = std::make_shared<ResponderState>(shared_from_this(), ex_->seq);
  HttpResponder respond = [state](HttpResponse response) { state->Respond(std::move(response)); };
  const SimpleHandler& fn = std::get<SimpleHandler>(ex_->handler->fn);
  auto failed = [&](absl::string_view why) {
    if (!state->used.exchange(true)) {
      HandlerFailed(why);
      return;
    }
    // It answered before throwing: the answer stands.
    core_->counters().handler_errors++;
    spdlog::warn("http: handler for {} {} (request {}) threw after answering: {}",
                 ex_->head->method, ex_->head->path, ex_->head->request_id, std::string(why));
  };
  try {
    fn(std::move(request), std::move(respond));
  } catch (const std::exception& e) {
    failed(absl::StrCat("exception: ", e.what()));
  } catch (...) {
    failed("unknown exception");
  }
}

void HttpConnection::InvokeStreaming() {
  auto stream = std::make_shared<StreamImpl>(shared_from_this(), ex_->seq, ex_->head);
  const StreamingHandler& fn = std::get<StreamingHandler>(ex_->handler->fn);
  CallHandler(fn, std::move(stream));
}

void HttpConnection::OnSimpleResponse(uint64_t seq, HttpResponse response) {
  if (!Current(seq) || ex_->over() || ex_->response_started || closed_) return;
  if (absl::Status valid = ValidateResponseHead(response.status, response.headers); !valid.ok()) {
    HandlerFailed(absl::StrCat("invalid response: ", valid.message()));
    return;
  }
  QueueResponse(std::move(response), /*close=*/false, CompleteExchange(seq, nullptr));
}

void HttpConnection::OnResponderDropped(uint64_t seq) {
  if (!Current(seq) || ex_->over() || ex_->response_started || closed_) return;
  HandlerFailed("released the request without responding");
}

void HttpConnection::HandlerFailed(absl::string_view why) {
  core_->counters().handler_errors++;
  if (ex_ == nullptr || closed_) return;
  spdlog::warn("http: handler for {} {} (request {}) failed: {}", ex_->head->method,
               ex_->head->path, ex_->head->request_id, std::string(why));
  if (ex_->over()) return;
  const bool started = ex_->response_started;
  CancelExchange(absl::InternalError("the request handler failed"), /*tell_on_cancel=*/false);
  if (started) {
    FinalClose(absl::InternalError("the request handler failed"));
    return;
  }
  QueueResponse(JsonErrorResponse(500, "internal_error", "the request handler failed"),
                /*close=*/false, [this](absl::Status s) {
                  if (s.ok()) AfterExchange();
                });
}

// ---------------------------------------------------------------------------
// HttpStream operations, on the strand.

absl::Status HttpConnection::StreamUsable(uint64_t seq) const {
  if (!Current(seq)) return absl::FailedPreconditionError("the exchange is over");
  if (ex_->cancelled) return ex_->cancel_reason;
  if (ex_->response_done) return absl::FailedPreconditionError("the response is complete");
  if (closed_) return close_reason_;
  return absl::OkStatus();
}

void HttpConnection::StreamReadBody(uint64_t seq, HttpStream::ReadCallback cb) {
  if (absl::Status s = StreamUsable(seq); !s.ok()) {
    CallHandler(cb, s);
    return;
  }
  if (body_consumer_) {
    CallHandler(cb, absl::FailedPreconditionError("a ReadBody is already outstanding"));
    return;
  }
  StartBodyRead([this, cb = std::move(cb)](absl::StatusOr<HttpBodyChunk> chunk) mutable {
    CallHandler(cb, std::move(chunk));
  });
}

absl::Status HttpConnection::CheckResponseStart(uint64_t seq, int status,
                                                const HttpHeaders& headers) const {
  if (absl::Status s = StreamUsable(seq); !s.ok()) return s;
  if (ex_->response_started) {
    return absl::FailedPreconditionError("the response was already started");
  }
  return ValidateResponseHead(status, headers);
}

void HttpConnection::StreamWriteHead(uint64_t seq, HttpResponseHead head, WriteDone cb) {
  if (absl::Status s = CheckResponseStart(seq, head.status, head.headers); !s.ok()) {
    CallHandler(cb, s);
    return;
  }
  const bool bodiless_status = head.status == 204 || head.status == 304;
  HeadFraming framing;
  if (!bodiless_status) framing.content_length = head.content_length;
  ex_->response_has_body = !bodiless_status && !ex_->is_head_method;
  bool until_close = false;
  if (ex_->response_has_body) {
    ex_->declared_length = head.content_length;
    if (!head.content_length) {
      if (ex_->head->http_version >= 11) {
        framing.chunked = true;
      } else {
        until_close = true;
      }
    }
  }
  ex_->chunked = framing.chunked;
  const bool close = until_close || !ex_->keep_alive || shutting_down_;
  framing.close = close;
  framing.keep_alive = !close && ex_->head->http_version == 10;
  ex_->close_after = close;
  ex_->response_started = true;
  core_->counters().CountResponse(head.status);
  QueueWrite(SerializeResponseHead(head.status, head.headers, ex_->head->request_id, framing), "",
             "", [this, cb = std::move(cb)](absl::Status s) mutable { CallHandler(cb, s); });
}

void HttpConnection::StreamWriteBody(uint64_t seq, std::string data, WriteDone cb) {
  if (absl::Status s = StreamUsable(seq); !s.ok()) {
    CallHandler(cb, s);
    return;
  }
  if (!ex_->response_started) {
    CallHandler(cb, absl::FailedPreconditionError("WriteBody before WriteHead"));
    return;
  }
  if (ex_->finish_queued) {
    CallHandler(cb, absl::FailedPreconditionError("WriteBody after Finish"));
    return;
  }
  WriteDone done = [this, cb = std::move(cb)](absl::Status s) mutable { CallHandler(cb, s); };
  if (data.empty() || !ex_->response_has_body) {
    // Completes in order with the writes queued before it.
    QueueWrite("", "", "", std::move(done));
    return;
  }
  if (ex_->declared_length && ex_->body_written + data.size() > *ex_->declared_length) {
    CallHandler(done, absl::InvalidArgumentError(
                          absl::StrCat("the body exceeds the declared Content-Length of ",
                                       *ex_->declared_length, " bytes")));
    return;
  }
  ex_->body_written += data.size();
  if (ex_->chunked) {
    std::string prefix = absl::StrCat(absl::Hex(data.size()), "\r\n");
    QueueWrite(std::move(prefix), std::move(data), "\r\n", std::move(done));
  } else {
    QueueWrite("", std::move(data), "", std::move(done));
  }
}

void HttpConnection::StreamFinish(uint64_t seq, WriteDone cb) {
  if (absl::Status s = StreamUsable(seq); !s.ok()) {
    CallHandler(cb, s);
    return;
  }
  if (!ex_->response_started) {
    CallHandler(cb, absl::FailedPreconditionError("Finish before WriteHead"));
    return;
  }
  if (ex_->finish_queued) {
    CallHandler(cb, absl::FailedPreconditionError("Finish was already called"));
    return;
  }
  ex_->finish_queued = true;
  if (ex_->response_has_body && ex_->declared_length && ex_->body_written < *ex_->declared_length) {
    const absl::Status short_body = absl::FailedPreconditionError(
        absl::StrCat("the body is shorter than the declared Content-Length of ",
                     *ex_->declared_length, " bytes"));
    CancelExchange(short_body, /*tell_on_cancel=*/false);
    FinalClose(short_body);
    CallHandler(cb, short_body);
    return;
  }
  QueueWrite("", "", ex_->chunked ? "0\r\n\r\n" : "", CompleteExchange(seq, std::move(cb)));
}

void HttpConnection::StreamRespond(uint64_t seq, HttpResponse response, WriteDone cb) {
  if (absl::Status s = CheckResponseStart(seq, response.status, response.headers); !s.ok()) {
    CallHandler(cb, s);
    return;
  }
  QueueResponse(std::move(response), /*close=*/false, CompleteExchange(seq, std::move(cb)));
}

void HttpConnection::StreamAbort(uint64_t seq) {
  if (!Current(seq) || ex_->over() || closed_) return;
  const absl::Status reason = absl::CancelledError("aborted by the handler");
  CancelExchange(reason, /*tell_on_cancel=*/false);
  FinalClose(reason);
}

void HttpConnection::StreamSetOnCancel(uint64_t seq, std::function<void(absl::Status)> on_cancel) {
  if (!Current(seq) || ex_->response_done) return;
  if (ex_->cancelled) {
    // Too late to wait for it: tell at once.
    CallHandler(on_cancel, ex_->cancel_reason);
    return;
  }
  ex_->on_cancel = std::move(on_cancel);
}

void HttpConnection::OnStreamReleased(uint64_t seq) {
  if (StreamReleaseIsNoop(seq)) return;
  HandlerFailed("released the stream before completing the response");
}

// ---------------------------------------------------------------------------
// Writing responses.

void HttpConnection::QueueResponse(HttpResponse response, bool close, WriteDone done) {
  const int status = response.status;
  const bool bodiless_status = status == 204 || status == 304;
  const bool send_body = !bodiless_status && !(ex_ != nullptr && ex_->is_head_method);
  HeadFraming framing;
  if (!bodiless_status) framing.content_length = response.body.size();
  close = close || ex_ == nullptr || !ex_->keep_alive || !ex_->body_done || shutting_down_;
  framing.close = close;
  framing.keep_alive = !close && ex_->head->http_version == 10;
  std::string head = SerializeResponseHead(
      status, response.headers, ex_ != nullptr ? ex_->head->request_id : NewRequestId(), framing);
  core_->counters().CountResponse(status);
  if (ex_ != nullptr) {
    ex_->response_started = true;
    ex_->finish_queued = true;
    ex_->close_after = close;
  }
  // No request follows: what the client still sends is drained, not parsed.
  if (close) closing_ = true;
  QueueWrite(std::move(head), send_body ? std::move(response.body) : std::string(), "",
             std::move(done));
}

HttpConnection::WriteDone HttpConnection::CompleteExchange(uint64_t seq, WriteDone handler_cb) {
  return [this, seq, handler_cb = std::move(handler_cb)](absl::Status s) mutable {
    if (s.ok() && Current(seq)) {
      ex_->response_done = true;
      ex_->on_cancel = nullptr;
    }
    CallHandler(handler_cb, s);
    if (s.ok() && Current(seq)) AfterExchange();
  };
}

void HttpConnection::AfterExchange() {
  if (closed_) return;
  if (body_consumer_) {
    // A streaming handler's ReadBody still outstanding: the body is abandoned.
    BodyConsumer consumer = std::move(body_consumer_);
    body_consumer_ = nullptr;
    consumer(absl::CancelledError("the response is complete"));
  }
  if (closing_ || ex_ == nullptr || ex_->close_after || !ex_->body_done) {
    CloseAfterWrites();
    return;
  }
  StartRequest();
}

void HttpConnection::FailRequest(int status, absl::string_view code, absl::string_view message,
                                 absl::Status reason) {
  if (status == 408) core_->counters().timeouts++;
  const bool started = ex_ != nullptr && ex_->response_started;
  CancelExchange(reason, /*tell_on_cancel=*/true);
  if (closed_) return;
  if (started) {
    FinalClose(reason);
    return;
  }
  QueueResponse(JsonErrorResponse(status, code, message), /*close=*/true, nullptr);
}

void HttpConnection::CancelExchange(absl::Status reason, bool tell_on_cancel) {
  if (ex_ == nullptr || ex_->over()) return;
  ex_->cancelled = true;
  ex_->cancel_reason = reason;
  BodyConsumer consumer = std::move(body_consumer_);
  body_consumer_ = nullptr;
  std::function<void(absl::Status)> on_cancel = std::move(ex_->on_cancel);
  ex_->on_cancel = nullptr;
  if (consumer) consumer(reason);
  if (tell_on_cancel) CallHandler(on_cancel, reason);
}

void HttpConnection::QueueWrite(std::string head, std::string body, std::string tail,
                                WriteDone done) {
  if (closed_) {
    if (done) done(close_reason_);
    return;
  }
  writes_.push_back(WriteOp{std::move(head), std::move(body), std::move(tail), std::move(done)});
  if (!write_pending_) WriteNext();
}

// Under mu_ (see TryRunHere): until OnWrite, the composed write below may
// use socket_ on the strand without it, so nothing else may start a write.
void HttpConnection::WriteNext() {
  WriteOp& op = writes_.front();
  write_pending_ = true;
  if (writing_here_) {
    // Off the strand (RespondHere): the socket usually takes a whole small
    // response at once. The socket is non-blocking (DoStart).
    const std::array<asio::const_buffer, 3> all = {asio::buffer(op.head), asio::buffer(op.body),
                                                   asio::buffer(op.tail)};
    error_code ec;
    const size_t n = socket_.write_some(all, ec);
    if (!ec && n == asio::buffer_size(all)) {
      written_here_ = n;
      return;
    }
    // The rest (or all: would_block, an error) the usual way; an error
    // comes back from async_write, on the strand.
    size_t sent = ec ? 0 : n;
    core_->counters().bytes_sent += sent;
    for (std::string* part : {&op.head, &op.body, &op.tail}) {
      const size_t k = std::min(sent, part->size());
      part->erase(0, k);
      sent -= k;
    }
  }
  const std::array<asio::const_buffer, 3> buffers = {asio::buffer(op.head), asio::buffer(op.body),
                                                     asio::buffer(op.tail)};
  const uint64_t gen = ++write_timer_gen_;
  write_timer_.expires_after(ToChrono(core_->options().write_idle_timeout));
  write_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    const Entered entered(*self);
    if (ec || gen != self->write_timer_gen_ || self->closed_) return;
    self->core_->counters().timeouts++;
    self->FinalClose(absl::DeadlineExceededError("client too slow reading the response"));
  });
  asio::async_write(socket_, buffers, [self = shared_from_this()](error_code ec, size_t n) {
    const Entered entered(*self);
    self->OnWrite(ec, n);
  });
}

void HttpConnection::OnWrite(error_code ec, size_t n) {
  write_pending_ = false;
  ++write_timer_gen_;
  write_timer_.cancel();
  core_->counters().bytes_sent += n;
  WriteOp op = std::move(writes_.front());
  writes_.pop_front();
  absl::Status status;
  if (closed_) {
    status = close_reason_;
  } else if (ec) {
    status = ClientGone();
    FinalClose(status);
  }
  if (op.done) op.done(status);
  if (closed_) return;
  if (!writes_.empty()) {
    if (!write_pending_) WriteNext();
    return;
  }
  if (closing_ && !write_pending_) BeginLinger();
}

// ---------------------------------------------------------------------------
// Closing.

void HttpConnection::CloseAfterWrites() {
  closing_ = true;
  if (!write_pending_ && writes_.empty()) BeginLinger();
}

void HttpConnection::BeginLinger() {
  if (closed_ || lingering_) return;
  lingering_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    FinalClose(absl::CancelledError("connection closed"));
    return;
  }
  linger_deadline_ = Clock::now() + ToChrono(core_->options().linger_timeout);
  ReadMore(ReadFor::kDrain);
}

void HttpConnection::FinalClose(absl::Status reason) {
  if (closed_) return;
  if (reason.ok()) reason = absl::CancelledError("connection closed");
  closed_ = true;
  close_reason_ = reason;
  ++read_timer_gen_;
  ++write_timer_gen_;
  read_timer_.cancel();
  write_timer_.cancel();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  CancelExchange(reason, /*tell_on_cancel=*/true);
  // Break reference cycles through handler callbacks that hold the stream.
  body_consumer_ = nullptr;
  if (ex_ != nullptr) ex_->on_cancel = nullptr;
  // Queued writes never start now; the one in flight fails in OnWrite.
  std::deque<WriteOp> dropped;
  while (writes_.size() > (write_pending_ ? 1u : 0u)) {
    dropped.push_back(std::move(writes_.back()));
    writes_.pop_back();
  }
  for (auto it = dropped.rbegin(); it != dropped.rend(); ++it) {
    if (it->done) it->done(reason);
  }
  core_->ConnectionClosed(this);
}

}  // namespace tracim::broker::http_internal
