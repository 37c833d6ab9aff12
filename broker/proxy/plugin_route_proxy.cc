#include "broker/proxy/plugin_route_proxy.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "boost/asio/post.hpp"
#include "broker/backend/api_error.h"
#include "broker/backend/authenticator.h"
#include "broker/common/grpc_status.h"
#include "broker/proxy/forwarding.h"
#include "broker/proxy/route_lookup.h"
#include "broker/supervisor/plugin_host.h"
#include "spdlog/spdlog.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;

constexpr absl::string_view kPrefix = "/plugins/";

// Whole seconds, at least 1.
std::string RetryAfter(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))));
}

std::string DurationText(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d), " ms");
}

}  // namespace

// One request: the HandleHttp call and the HTTP exchange it serves.
//
// The call uses gRPC's completion-queue API on the proxy's queue: every gRPC
// completion runs on the queue's one thread (CompletionQueueThread), HTTP
// callbacks run on the connection's strand, and the call starts on the
// strand or on the blocking executor (after authentication). Every piece of
// state is under mu_; operations are started under it too (with this API a
// completion never runs inline).
//
// Flow control: the request side has at most one operation outstanding —
// a gRPC write, or a ReadBody on the stream, the next one started from the
// completion of the previous — and so has the response side (a gRPC read,
// or a write to the HTTP client). The response side holds the plugin's
// head (and a first chunk that completes its declared Content-Length) until
// the next part shows whether the response is whole: then it leaves in one
// Respond, else the head and the chunk go out together and the rest
// streams. When the reads end (or the response side gives up), Finish
// collects the call's status and the outcome is decided; the exchange is
// released once no gRPC operation of it is outstanding.
class PluginRouteProxy::Exchange final
    : public std::enable_shared_from_this<PluginRouteProxy::Exchange> {
 public:
  Exchange(PluginRouteProxy& proxy, std::shared_ptr<HttpStream> stream, PluginSupervisor* plugin,
           PluginSupervisor::RouteTarget target, RouteLookup lookup)
      : proxy_(proxy),
        stream_(std::move(stream)),
        plugin_(plugin),
        stub_(std::move(target.stub)),
        secret_(std::move(target.secret)),
        routes_(std::move(target.routes)),
        route_(*lookup.route),
        params_(std::move(lookup.params)),
        timeout_(route_.timeout > absl::ZeroDuration() ? route_.timeout
                                                       : proxy.options_.default_timeout) {
    proxy_.Begin();
  }

  const HttpRequestHead& request() const { return stream_->request(); }

  // On the strand, first: a client that goes away cancels the call.
  void WatchCancel() {
    std::weak_ptr<Exchange> weak = shared_from_this();
    stream_->SetOnCancel([weak](absl::Status reason) {
      if (std::shared_ptr<Exchange> self = weak.lock()) self->OnClientCancel(std::move(reason));
    });
  }

  // Answers before any call (authentication failed). Any thread.
  void Reject(HttpResponse response) {
    bool send = false;
    {
      absl::MutexLock lock(&mu_);
      send = !http_over_;
      http_over_ = true;
    }
    if (send) stream_->Respond(std::move(response), nullptr);
    stream_.reset();
    End();
  }

  // Starts the call on behalf of `user` (nullopt: anonymous). On the
  // queue's thread, or on the caller's when no call is in flight
  // (QueueStart).
  void Start(std::optional<v1::User> user) {
    const HttpRequestHead& http = request();
    const bool has_body = http.has_body();
    absl::MutexLock lock(&mu_);
    if (http_over_) {
      // The client went away while it was being authenticated.
      proxy_.counters_.cancelled++;
      stream_.reset();
      End();
      return;
    }
    v1::HttpRequestPart head;
    *head.mutable_head() = BuildPluginRequestHead(http, route_, params_, user);
    entry_ = proxy_.in_flight_.Add(plugin_->name(), http.request_id, std::move(user));
    plugin_->RequestStarted();
    proxy_.counters_.forwarded++;
    proxy_.calls_in_flight_.fetch_add(1, std::memory_order_relaxed);

    context_.AddMetadata(v1::kSecretMetadataKey, secret_);
    // The metadata leaves with the head: one frame less per request (and
    // StartCall completes no tag).
    context_.set_initial_metadata_corked(true);
    context_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_));
    self_ = shared_from_this();
    call_ = stub_->PrepareAsyncHandleHttp(&context_, proxy_.calls_->cq());
    call_->StartCall(nullptr);
    if (has_body) {
      write_state_ = WriteState::kWriting;
      call_->Write(head, Tag(&write_done_));
    } else {
      write_state_ = WriteState::kLastWriting;
      call_->Write(head, grpc::WriteOptions().set_last_message(), Tag(&write_done_));
    }
    ++outstanding_;
    ReadLocked();
  }

 private:
  using Counters = PluginRouteProxy::AtomicCounters;
  enum class WriteState {
    kWriting,      // a gRPC write is outstanding; a body chunk follows
    kWaitingBody,  // a ReadBody is outstanding
    kLastWriting,  // the last write (or WritesDone) is outstanding
    kDone,         // nothing more to write, or writing was abandoned
  };

  // A gRPC operation's tag: runs `on` on the queue's thread.
  using Op = CompletionQueueThread::Bound<Exchange>;
  static void* Tag(Op* op) { return CompletionQueueThread::Tag(op); }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_->Read(&in_, Tag(&read_done_));
    ++outstanding_;
  }

  // Nothing more will be read: collects the call's status. Once.
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (std::exchange(finishing_, true)) return;
    call_->Finish(&status_, Tag(&finished_));
    ++outstanding_;
  }

  // Stops the call and collects its status: the response side gives up.
  void AbandonLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    context_.TryCancel();
    FinishLocked();
  }

  // Queue thread.
  void OnWriteDone(bool ok) {
    bool read_body = false;
    std::shared_ptr<Exchange> release;
    {
      absl::MutexLock lock(&mu_);
      --outstanding_;
      if (write_state_ == WriteState::kWriting && ok && !response_ended_ && !http_over_) {
        write_state_ = WriteState::kWaitingBody;
        read_body = true;
      } else {
        // The last write, or the call broke (the read side finds out).
        write_state_ = WriteState::kDone;
      }
      if (!read_body) release = ReleaseIfOverLocked();
    }
    if (read_body) ReadBody();
  }

  // Queue thread.
  void OnReadDone(bool ok) {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    if (!ok) {
      // The plugin finished (or the call broke): nothing more to read, and
      // the rest of the request body is not wanted any more.
      response_ended_ = true;
      if (write_state_ == WriteState::kWaitingBody) write_state_ = WriteState::kDone;
      FinishLocked();
      return;
    }
    switch (in_.part_case()) {
      case v1::HttpResponsePart::kHead: {
        if (head_received_) return FailProtocolLocked("sent a second response head");
        head_received_ = true;
        // Body bytes sent with the head count as the first body part.
        std::string body = std::move(*in_.mutable_head()->mutable_body());
        absl::StatusOr<HttpResponseHead> head = ToHttpResponseHead(in_.head());
        if (!head.ok()) {
          return FailProtocolLocked(
              absl::StrCat("sent an invalid response head: ", head.status().message()));
        }
        // Held until the next part: a response that ends right away (or
        // whose first chunk completes its Content-Length) leaves in one write.
        held_head_ = *std::move(head);
        if (body.empty()) {
          ReadLocked();
        } else {
          OnBodyLocked(std::move(body));
        }
        return;
      }
      case v1::HttpResponsePart::kBody:
        if (!head_received_)
          return FailProtocolLocked("sent a body chunk before the response head");
        OnBodyLocked(std::move(*in_.mutable_body()));
        return;
      case v1::HttpResponsePart::PART_NOT_SET:
        ReadLocked();
        return;
    }
  }

  // A body part from the plugin, or the bytes it sent with its head.
  void OnBodyLocked(std::string chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (flushed_) {
      WriteToClientLocked(std::nullopt, std::move(chunk));
    } else if (held_body_.empty() && held_head_->content_length == chunk.size()) {
      // The whole declared body: hold it until the call ends.
      held_body_ = std::move(chunk);
      ReadLocked();
    } else {
      // Streaming from here on: the head and what was held go out.
      flushed_ = true;
      std::optional<HttpResponseHead> head = std::move(held_head_);
      held_head_.reset();
      std::string body = std::exchange(held_body_, std::string());
      if (body.empty()) {
        body = std::move(chunk);
      } else {
        body.append(chunk);
      }
      WriteToClientLocked(std::move(head), std::move(body));
    }
  }

  // Hands `head` (if any) and `body` to the client; the next read waits for
  // the write: one chunk in flight.
  void WriteToClientLocked(std::optional<HttpResponseHead> head, std::string body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (head.has_value()) {
      stream_->WriteHead(*std::move(head), [self = shared_from_this()](absl::Status s) {
        self->OnHttpWritten(std::move(s), /*head=*/true, /*last=*/false);
      });
    }
    stream_->WriteBody(std::move(body), [self = shared_from_this()](absl::Status s) {
      self->OnHttpWritten(std::move(s), /*head=*/false, /*last=*/true);
    });
  }

  // Queue thread: the call is over; `status_` is its status.
  void OnFinished(bool /*ok: always true for Finish*/) {
    std::shared_ptr<Exchange> release;  // dropped after the lock
    absl::MutexLock lock(&mu_);
    --outstanding_;
    Conclude();
    release = ReleaseIfOverLocked();
  }

  // Answers the client (unless it is gone) according to the call's status.
  void Conclude() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool http_over = std::exchange(http_over_, true);
    // No gRPC operation starts from here on: every path that would start
    // one checks http_over_.
    if (write_state_ == WriteState::kWaitingBody) write_state_ = WriteState::kDone;
    const bool started = flushed_ && !head_rejected_;
    std::string protocol_error = protocol_error_;
    std::optional<HttpResponseHead> held_head = std::move(held_head_);
    std::string held_body = std::move(held_body_);
    const grpc::Status& status = status_;
    Counters& counters = proxy_.counters_;
    const std::string& name = plugin_->name();
    if (!http_over && status.ok() && protocol_error.empty() && held_head.has_value() &&
        !Bodiless(*held_head) && held_head->content_length.has_value() &&
        *held_head->content_length != held_body.size()) {
      protocol_error =
          absl::StrCat("sent ", held_body.size(), " body bytes but declared Content-Length ",
                       *held_head->content_length);
    }
    if (http_over) {
      counters.cancelled++;
    } else if (status.ok() && protocol_error.empty() && held_head.has_value()) {
      // The whole response is here: one write.
      counters.completed++;
      RespondWhole(*std::move(held_head), std::move(held_body));
    } else if (status.ok() && protocol_error.empty() && started) {
      counters.completed++;
      stream_->Finish(nullptr);
    } else {
      int code = 502;
      std::string message;
      if (!protocol_error.empty()) {
        message = absl::StrCat("plugin '", name, "' ", protocol_error);
      } else if (status.ok()) {
        message = absl::StrCat("plugin '", name, "' ended the call without a response head");
      } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        code = 504;
        message =
            absl::StrCat("plugin '", name, "' did not answer within ", DurationText(timeout_));
      } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        message = absl::StrCat("plugin '", name,
                               "' went away during the request: ", status.error_message());
      } else {
        message = absl::StrCat("plugin '", name, "' failed the request: ",
                               absl::StatusCodeToString(FromGrpcStatus(status).code()), ": ",
                               status.error_message());
      }
      (code == 504 ? counters.timed_out : counters.failed)++;
      spdlog::warn("plugin '{}': {} {} (request {}): {}{}", name, request().method, request().path,
                   request().request_id, message, started ? " (response cut)" : "");
      if (started) {
        stream_->Abort();
      } else {
        stream_->Respond(
            JsonErrorResponse(code, code == 504 ? "plugin_timeout" : "plugin_error", message),
            nullptr);
      }
    }
    concluded_ = true;
  }

  // Once the call is concluded and no operation of it is outstanding: the
  // proxy is done with this exchange. Returns the reference that kept it
  // alive, for the caller to drop after releasing mu_ (HTTP callbacks may
  // still hold it a little longer); null otherwise.
  [[nodiscard]] std::shared_ptr<Exchange> ReleaseIfOverLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!concluded_ || outstanding_ > 0 || self_ == nullptr) return nullptr;
    entry_.Reset();
    plugin_->RequestFinished();
    proxy_.calls_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    // The last use of the proxy: it may be destroyed once End returns
    // (after its queue's thread, this one, has left this completion).
    End();
    return std::move(self_);
  }

  // A response without body bytes on the wire: to HEAD, or 204/304.
  bool Bodiless(const HttpResponseHead& head) const {
    return request().method == "HEAD" || head.status == 204 || head.status == 304;
  }

  // The held response, at the end of a successful call. A head the server
  // refuses (a field name or value not valid on the wire) becomes a 502.
  void RespondWhole(HttpResponseHead head, std::string body) {
    auto on_written = [stream = stream_, name = plugin_->name()](absl::Status s) {
      if (!absl::IsInvalidArgument(s)) return;
      const std::string message =
          absl::StrCat("plugin '", name, "' sent an invalid response head: ", s.message());
      spdlog::warn("plugin '{}': {} {} (request {}): {}", name, stream->request().method,
                   stream->request().path, stream->request().request_id, message);
      stream->Respond(JsonErrorResponse(502, "plugin_error", message), nullptr);
    };
    if (Bodiless(head)) {
      // The server frames these itself (HEAD keeps the declared length).
      stream_->WriteHead(std::move(head), std::move(on_written));
      stream_->Finish(nullptr);
      return;
    }
    HttpResponse response{head.status, std::move(head.headers), std::move(body)};
    if (proxy_.calls_in_flight_.load(std::memory_order_relaxed) <= 1) {
      // This call alone: the queue's thread has nothing else to do, so it
      // writes the response itself instead of waking the io thread for it
      // (measured at 1 connection, see docs/performance.md). Under load it
      // hands the write over, and the io threads share that work.
      stream_->RespondFromHere(std::move(response), std::move(on_written));
    } else {
      stream_->Respond(std::move(response), std::move(on_written));
    }
  }

  void ReadBody() {
    stream_->ReadBody([self = shared_from_this()](absl::StatusOr<HttpBodyChunk> chunk) {
      self->OnBodyChunk(std::move(chunk));
    });
  }

  // On the strand.
  void OnBodyChunk(absl::StatusOr<HttpBodyChunk> chunk) {
    bool read_again = false;
    {
      absl::MutexLock lock(&mu_);
      if (write_state_ != WriteState::kWaitingBody) return;  // abandoned
      if (!chunk.ok() || http_over_) {
        // The server answered 413/408/400 itself, or the client left.
        write_state_ = WriteState::kDone;
        context_.TryCancel();
        return;
      }
      if (chunk->last) {
        write_state_ = WriteState::kLastWriting;
        if (chunk->data.empty()) {
          call_->WritesDone(Tag(&write_done_));
        } else {
          out_.set_body(std::move(chunk->data));
          call_->Write(out_, grpc::WriteOptions().set_last_message(), Tag(&write_done_));
        }
        ++outstanding_;
      } else if (chunk->data.empty()) {
        read_again = true;
      } else {
        write_state_ = WriteState::kWriting;
        out_.set_body(std::move(chunk->data));
        call_->Write(out_, Tag(&write_done_));
        ++outstanding_;
      }
    }
    if (read_again) ReadBody();
  }

  // On the strand: a write to the client completed. Only the `last` of the
  // writes issued together continues the response side.
  void OnHttpWritten(absl::Status status, bool head, bool last) {
    absl::MutexLock lock(&mu_);
    if (head && absl::IsInvalidArgument(status)) {
      // Refused before anything went out: the client can still get a 502.
      head_rejected_ = true;
      if (protocol_error_.empty()) {
        protocol_error_ = absl::StrCat("sent an invalid response head: ", status.message());
      }
    }
    if (!last) return;
    if (status.ok()) {
      ReadLocked();
      return;
    }
    if (head_rejected_) {
      // Reported above.
    } else if (absl::IsInvalidArgument(status)) {
      // More body than the declared Content-Length.
      if (protocol_error_.empty()) {
        protocol_error_ = absl::StrCat("sent an invalid response: ", status.message());
      }
    } else {
      http_over_ = true;  // the client is gone or was cut off
    }
    AbandonLocked();
  }

  // From a read completion: the plugin broke the protocol; the call ends
  // and the client gets a 502 (or a cut connection after the head).
  void FailProtocolLocked(std::string what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (protocol_error_.empty()) protocol_error_ = std::move(what);
    AbandonLocked();
  }

  // On the strand: the client went away, was too slow, sent too much, or
  // the server is stopping.
  void OnClientCancel(absl::Status reason) {
    {
      absl::MutexLock lock(&mu_);
      if (http_over_) return;
      http_over_ = true;
    }
    spdlog::debug("plugin '{}': request {} cancelled: {}", plugin_->name(), request().request_id,
                  reason.ToString());
    // Before the call starts, too: a context cancelled early cancels its call.
    context_.TryCancel();
  }

  void End() { proxy_.End(); }

  PluginRouteProxy& proxy_;
  std::shared_ptr<HttpStream> stream_;
  PluginSupervisor* const plugin_;
  const std::shared_ptr<v1::Plugin::Stub> stub_;
  const std::string secret_;
  // Owns route_.
  const std::shared_ptr<const std::vector<RegisteredRoute>> routes_;
  const RegisteredRoute& route_;
  const std::map<std::string, std::string> params_;
  const absl::Duration timeout_;

  grpc::ClientContext context_;
  Op write_done_{this, &Exchange::OnWriteDone};
  Op read_done_{this, &Exchange::OnReadDone};
  Op finished_{this, &Exchange::OnFinished};

  absl::Mutex mu_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::HttpRequestPart, v1::HttpResponsePart>> call_
      ABSL_GUARDED_BY(mu_);
  // Keeps this alive from Start until released.
  std::shared_ptr<Exchange> self_ ABSL_GUARDED_BY(mu_);
  InFlightRequests::Entry entry_ ABSL_GUARDED_BY(mu_);
  // gRPC operations started and not completed.
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  // Request side: a body chunk being written (serialized when written).
  v1::HttpRequestPart out_ ABSL_GUARDED_BY(mu_);
  WriteState write_state_ ABSL_GUARDED_BY(mu_) = WriteState::kDone;
  // Response side: the part being read (one at a time).
  v1::HttpResponsePart in_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  // The response stream from the plugin ended (a read failed).
  bool response_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool concluded_ ABSL_GUARDED_BY(mu_) = false;
  bool head_received_ ABSL_GUARDED_BY(mu_) = false;
  // The plugin's head and the body that completes its Content-Length, held
  // until the next part shows whether the response is whole.
  std::optional<HttpResponseHead> held_head_ ABSL_GUARDED_BY(mu_);
  std::string held_body_ ABSL_GUARDED_BY(mu_);
  // The head was handed to the stream: failures now cut the connection
  // (unless the server refused the head).
  bool flushed_ ABSL_GUARDED_BY(mu_) = false;
  bool head_rejected_ ABSL_GUARDED_BY(mu_) = false;
  // Nothing more may be sent to the client (it left, was cut off, or was
  // answered already).
  bool http_over_ ABSL_GUARDED_BY(mu_) = false;
  std::string protocol_error_ ABSL_GUARDED_BY(mu_);
};

PluginRouteProxy::PluginRouteProxy(PluginHost& host, RequestAuthenticator authenticate,
                                   boost::asio::any_io_executor blocking_executor,
                                   InFlightRequests& in_flight, PluginRouteProxyOptions options)
    : host_(host),
      authenticate_(std::move(authenticate)),
      blocking_executor_(std::move(blocking_executor)),
      in_flight_(in_flight),
      options_(std::move(options)),
      own_calls_(options_.calls != nullptr
                     ? nullptr
                     : std::make_unique<CompletionQueueThread>("route-proxy")),
      calls_(options_.calls != nullptr ? options_.calls : own_calls_.get()) {}

PluginRouteProxy::~PluginRouteProxy() {
  // A shared queue's thread may still be running the end of a completion
  // that touched this proxy (an exchange's End, the alarm's batch): wait for
  // it. An own queue is drained and joined by its destructor.
  if (own_calls_ == nullptr) calls_->Barrier();
}

absl::Status PluginRouteProxy::Register(HttpRouter& router) {
  return router.AddPrefix(std::string(kPrefix), HttpHandler::Streaming(
                                                    [this](std::shared_ptr<HttpStream> stream) {
                                                      Handle(std::move(stream));
                                                    },
                                                    options_.max_body_bytes));
}

void PluginRouteProxy::Handle(std::shared_ptr<HttpStream> stream) {
  counters_.requests++;
  const HttpRequestHead& request = stream->request();
  absl::string_view rest = request.path;
  absl::ConsumePrefix(&rest, kPrefix);
  const absl::string_view name = rest.substr(0, rest.find('/'));
  auto respond = [&stream](HttpResponse response) {
    stream->Respond(std::move(response), nullptr);
  };

  PluginSupervisor* plugin = name.empty() ? nullptr : host_.Find(name);
  if (plugin == nullptr) {
    counters_.not_found++;
    respond(JsonErrorResponse(404, "not_found", absl::StrCat("no plugin named '", name, "'")));
    return;
  }
  PluginSupervisor::RouteTarget target = plugin->Target();
  RouteLookup lookup;
  if (target.routes != nullptr) {
    lookup = LookupRoute(*target.routes, request.method, request.path);
    if (lookup.outcome == RouteLookup::Outcome::kNotFound) {
      counters_.not_found++;
      respond(JsonErrorResponse(
          404, "not_found", absl::StrCat("plugin '", name, "' has no route for ", request.path)));
      return;
    }
    if (lookup.outcome == RouteLookup::Outcome::kMethodNotAllowed) {
      counters_.method_not_allowed++;
      HttpResponse response =
          JsonErrorResponse(405, "method_not_allowed",
                            absl::StrCat("method ", request.method, " is not allowed on ",
                                         request.path, " (plugin '", name, "')"));
      response.headers.Set("Allow", absl::StrJoin(lookup.allowed, ", "));
      respond(std::move(response));
      return;
    }
  }
  if (target.state != PluginState::kReady || target.stub == nullptr || lookup.route == nullptr) {
    counters_.unavailable++;
    const bool coming = target.state == PluginState::kStarting ||
                        target.state == PluginState::kRegistering ||
                        target.state == PluginState::kReady;
    HttpResponse response = JsonErrorResponse(
        503, "plugin_unavailable",
        absl::StrCat("plugin '", name, "' is not ready (", PluginStateName(target.state), ")"));
    response.headers.Set("Retry-After", RetryAfter(coming ? options_.retry_after_starting
                                                          : options_.retry_after_down));
    respond(std::move(response));
    return;
  }
  const bool credentials = HasCredentials(request.headers);
  if (!lookup.route->public_route && !credentials) {
    counters_.unauthenticated++;
    respond(ErrorResponse(WithErrorCode(
        absl::UnauthenticatedError(
            "authentication required: HTTP Basic or Tracim-Api-Key + Tracim-Api-Login"),
        kAuthenticationRequired)));
    return;
  }

  auto exchange = std::make_shared<Exchange>(*this, std::move(stream), plugin, std::move(target),
                                             std::move(lookup));
  exchange->WatchCancel();
  if (!credentials) {
    QueueStart(std::move(exchange), std::nullopt);
    return;
  }
  // Store queries and password hashing never run on the io thread.
  boost::asio::post(blocking_executor_, [this, exchange = std::move(exchange)] {
    absl::StatusOr<v1::User> user;
    try {
      user = authenticate_(exchange->request().headers);
    } catch (const std::exception& e) {
      user = absl::InternalError(e.what());
    } catch (...) {
      user = absl::InternalError("unknown exception");
    }
    if (!user.ok()) {
      if (absl::IsUnauthenticated(user.status())) counters_.unauthenticated++;
      exchange->Reject(ErrorResponse(user.status()));
      return;
    }
    QueueStart(std::move(exchange), *std::move(user));
  });
}

void PluginRouteProxy::QueueStart(std::shared_ptr<Exchange> exchange,
                                  std::optional<v1::User> user) {
  if (calls_in_flight_.load(std::memory_order_relaxed) == 0) {
    // Nothing in flight: no poller to contend with, and queueing would only
    // add the wake-up of the queue's thread to this request's latency
    // (measured at 1 connection: p50 724 -> 680 us, same session).
    exchange->Start(std::move(user));
    return;
  }
  absl::MutexLock lock(&start_mu_);
  to_start_.emplace_back(std::move(exchange), std::move(user));
  if (!start_alarm_set_) {
    // Fires at once: wakes the queue's thread (or queues behind the
    // completions it is running).
    start_alarm_set_ = true;
    start_alarm_.Set(calls_->cq(), gpr_time_0(GPR_CLOCK_MONOTONIC),
                     CompletionQueueThread::Tag(&start_queued_));
  }
}

void PluginRouteProxy::StartQueued::OnComplete(bool /*ok*/) {
  std::vector<std::pair<std::shared_ptr<Exchange>, std::optional<v1::User>>> batch;
  {
    absl::MutexLock lock(&proxy->start_mu_);
    batch.swap(proxy->to_start_);
    proxy->start_alarm_set_ = false;
  }
  for (auto& [exchange, user] : batch) exchange->Start(std::move(user));
}

void PluginRouteProxy::Begin() {
  absl::MutexLock lock(&mu_);
  ++active_;
}

void PluginRouteProxy::End() {
  absl::MutexLock lock(&mu_);
  --active_;
}

bool PluginRouteProxy::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return active_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

PluginRouteProxyCounters PluginRouteProxy::counters() const {
  PluginRouteProxyCounters c;
  c.requests = counters_.requests;
  c.forwarded = counters_.forwarded;
  c.completed = counters_.completed;
  c.not_found = counters_.not_found;
  c.method_not_allowed = counters_.method_not_allowed;
  c.unauthenticated = counters_.unauthenticated;
  c.unavailable = counters_.unavailable;
  c.failed = counters_.failed;
  c.timed_out = counters_.timed_out;
  c.cancelled = counters_.cancelled;
  absl::MutexLock lock(&mu_);
  c.in_flight = active_;
  return c;
}

}  // namespace tracim::broker
