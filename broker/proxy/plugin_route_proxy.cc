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
// Flow control: the request side has at most one operation outstanding —
// a gRPC write, or a ReadBody on the stream, the next one issued from the
// completion of the previous — and so has the response side (a gRPC read,
// or a write to the HTTP client). Each side holds the reactor (AddHold)
// while its next operation may be issued from outside a reaction (from an
// HttpStream callback), and releases it when its last operation completes,
// so OnDone comes only after both sides are finished. The response side
// holds the plugin's head (and a first chunk that completes its declared
// Content-Length) until the next part shows whether the response is whole:
// then it leaves in one Respond, else the head and the chunk go out
// together and the rest streams. gRPC operations are issued outside mu_
// (they may run reactions inline); the decision to issue one is taken
// under mu_.
class PluginRouteProxy::Exchange final
    : public grpc::ClientBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>,
      public std::enable_shared_from_this<PluginRouteProxy::Exchange> {
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

  // Starts the call on behalf of `user` (nullopt: anonymous). Any thread.
  void Start(std::optional<v1::User> user) {
    const bool has_body = request().has_body();
    {
      absl::MutexLock lock(&mu_);
      if (http_over_) {
        // The client went away while it was being authenticated.
        proxy_.counters_.cancelled++;
        stream_.reset();
        End();
        return;
      }
      read_hold_ = true;
      write_hold_ = has_body;
      write_state_ = has_body ? WriteState::kWriting : WriteState::kDone;
    }
    const HttpRequestHead& http = request();
    *out_.mutable_head() = BuildPluginRequestHead(http, route_, params_, user);
    entry_ = proxy_.in_flight_.Add(plugin_->name(), http.request_id, std::move(user));
    plugin_->RequestStarted();
    proxy_.counters_.forwarded++;

    context_.AddMetadata(v1::kSecretMetadataKey, secret_);
    // The metadata leaves with the head: one frame less per request.
    context_.set_initial_metadata_corked(true);
    context_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_));
    self_ = shared_from_this();
    stub_->async()->HandleHttp(&context_, this);
    AddHold();  // the response side
    if (has_body) {
      AddHold();  // the request side
      StartWrite(&out_);
    } else {
      StartWriteLast(&out_, grpc::WriteOptions());
    }
    StartRead(&in_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    bool read_body = false;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      if (write_state_ != WriteState::kWriting) return;  // the last write
      if (!ok || response_ended_ || http_over_) {
        write_state_ = WriteState::kDone;
        release = std::exchange(write_hold_, false);
      } else {
        write_state_ = WriteState::kWaitingBody;
        read_body = true;
      }
    }
    if (read_body) ReadBody();
    if (release) RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The plugin finished (or the call broke): nothing more to read, and
      // the rest of the request body is not wanted any more.
      bool release_write = false;
      {
        absl::MutexLock lock(&mu_);
        response_ended_ = true;
        read_hold_ = false;
        if (write_state_ == WriteState::kWaitingBody) {
          write_state_ = WriteState::kDone;
          release_write = std::exchange(write_hold_, false);
        }
      }
      if (release_write) RemoveHold();
      RemoveHold();
      return;
    }
    switch (in_.part_case()) {
      case v1::HttpResponsePart::kHead: {
        absl::StatusOr<HttpResponseHead> head = ToHttpResponseHead(in_.head());
        bool second = false;
        {
          absl::MutexLock lock(&mu_);
          second = std::exchange(head_received_, true);
          if (!second && head.ok()) held_head_ = *std::move(head);
        }
        if (second) return FailProtocol("sent a second response head");
        if (!head.ok()) {
          return FailProtocol(
              absl::StrCat("sent an invalid response head: ", head.status().message()));
        }
        // Held until the next part: a response that ends right away (or
        // whose first chunk completes its Content-Length) leaves in one write.
        StartRead(&in_);
        return;
      }
      case v1::HttpResponsePart::kBody: {
        enum class Next { kError, kHold, kFlush, kWrite } next;
        std::optional<HttpResponseHead> head;
        std::string held_body;
        {
          absl::MutexLock lock(&mu_);
          if (!head_received_) {
            next = Next::kError;
          } else if (flushed_) {
            next = Next::kWrite;
          } else if (held_body_.empty() && held_head_->content_length == in_.body().size()) {
            // The whole declared body: hold it until the call ends.
            held_body_ = std::move(*in_.mutable_body());
            next = Next::kHold;
          } else {
            // Streaming from here on: the head and what was held go out.
            flushed_ = true;
            head = std::move(held_head_);
            held_head_.reset();
            held_body = std::exchange(held_body_, std::string());
            next = Next::kFlush;
          }
        }
        switch (next) {
          case Next::kError:
            return FailProtocol("sent a body chunk before the response head");
          case Next::kHold:
            StartRead(&in_);
            return;
          case Next::kFlush:
            stream_->WriteHead(*std::move(head), [self = shared_from_this()](absl::Status s) {
              self->OnHttpWritten(std::move(s), /*head=*/true, /*last=*/false);
            });
            if (!held_body.empty()) stream_->WriteBody(std::move(held_body), nullptr);
            [[fallthrough]];
          case Next::kWrite:
            // The next read waits for this write: one chunk in flight.
            stream_->WriteBody(std::move(*in_.mutable_body()),
                               [self = shared_from_this()](absl::Status s) {
                                 self->OnHttpWritten(std::move(s), /*head=*/false, /*last=*/true);
                               });
            return;
        }
        return;
      }
      case v1::HttpResponsePart::PART_NOT_SET:
        StartRead(&in_);
        return;
    }
  }

  void OnDone(const grpc::Status& status) override {
    // May destroy this at the end of the scope.
    std::shared_ptr<Exchange> keep = std::move(self_);
    bool http_over = false;
    bool started = false;
    std::string protocol_error;
    std::optional<HttpResponseHead> held_head;
    std::string held_body;
    {
      absl::MutexLock lock(&mu_);
      http_over = std::exchange(http_over_, true);
      started = flushed_ && !head_rejected_;
      protocol_error = protocol_error_;
      held_head = std::move(held_head_);
      held_body = std::move(held_body_);
    }
    Counters& counters = proxy_.counters_;
    const std::string& name = plugin_->name();
    const std::string& request_id = request().request_id;
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
                   request_id, message, started ? " (response cut)" : "");
      if (started) {
        stream_->Abort();
      } else {
        stream_->Respond(
            JsonErrorResponse(code, code == 504 ? "plugin_timeout" : "plugin_error", message),
            nullptr);
      }
    }
    stream_.reset();
    entry_.Reset();
    plugin_->RequestFinished();
    End();
  }

 private:
  using Counters = PluginRouteProxy::AtomicCounters;
  enum class WriteState {
    kWriting,      // a gRPC write is outstanding
    kWaitingBody,  // a ReadBody is outstanding
    kDone,         // the last write was issued, or writing was abandoned
  };

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
    stream_->Respond(HttpResponse{head.status, std::move(head.headers), std::move(body)},
                     std::move(on_written));
  }

  void ReadBody() {
    stream_->ReadBody([self = shared_from_this()](absl::StatusOr<HttpBodyChunk> chunk) {
      self->OnBodyChunk(std::move(chunk));
    });
  }

  // On the strand.
  void OnBodyChunk(absl::StatusOr<HttpBodyChunk> chunk) {
    enum class Next { kNothing, kWrite, kWriteLast, kWritesDone, kReadAgain, kCancel } next;
    bool release = false;
    {
      absl::MutexLock lock(&mu_);
      if (write_state_ != WriteState::kWaitingBody) return;  // abandoned
      if (!chunk.ok() || http_over_) {
        // The server answered 413/408/400 itself, or the client left.
        write_state_ = WriteState::kDone;
        release = std::exchange(write_hold_, false);
        next = Next::kCancel;
      } else if (chunk->last) {
        write_state_ = WriteState::kDone;
        release = std::exchange(write_hold_, false);
        next = chunk->data.empty() ? Next::kWritesDone : Next::kWriteLast;
      } else if (chunk->data.empty()) {
        next = Next::kReadAgain;
      } else {
        write_state_ = WriteState::kWriting;
        next = Next::kWrite;
      }
      if (next == Next::kWrite || next == Next::kWriteLast) out_.set_body(std::move(chunk->data));
    }
    switch (next) {
      case Next::kWrite:
        StartWrite(&out_);
        break;
      case Next::kWriteLast:
        StartWriteLast(&out_, grpc::WriteOptions());
        break;
      case Next::kWritesDone:
        StartWritesDone();
        break;
      case Next::kReadAgain:
        ReadBody();
        break;
      case Next::kCancel:
        context_.TryCancel();
        break;
      case Next::kNothing:
        break;
    }
    // After the last operation is issued: it holds the call from here on.
    if (release) RemoveHold();
  }

  // On the strand: a write to the client completed. Only the `last` of the
  // writes issued together continues the response side.
  void OnHttpWritten(absl::Status status, bool head, bool last) {
    if (head && absl::IsInvalidArgument(status)) {
      // Refused before anything went out: the client can still get a 502.
      absl::MutexLock lock(&mu_);
      head_rejected_ = true;
      if (protocol_error_.empty()) {
        protocol_error_ = absl::StrCat("sent an invalid response head: ", status.message());
      }
    }
    if (!last) return;
    if (status.ok()) {
      StartRead(&in_);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
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
      read_hold_ = false;
    }
    context_.TryCancel();
    RemoveHold();
  }

  // From a read reaction: the plugin broke the protocol; the call ends
  // and the client gets a 502 (or a cut connection after the head).
  void FailProtocol(std::string what) {
    {
      absl::MutexLock lock(&mu_);
      if (protocol_error_.empty()) protocol_error_ = std::move(what);
      read_hold_ = false;
    }
    context_.TryCancel();
    RemoveHold();
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
  // Keeps this alive from StartCall to OnDone.
  std::shared_ptr<Exchange> self_;
  InFlightRequests::Entry entry_;
  // Request side: the part being written (one at a time).
  v1::HttpRequestPart out_;
  // Response side: the part being read (one at a time).
  v1::HttpResponsePart in_;

  absl::Mutex mu_;
  WriteState write_state_ ABSL_GUARDED_BY(mu_) = WriteState::kDone;
  bool write_hold_ ABSL_GUARDED_BY(mu_) = false;
  bool read_hold_ ABSL_GUARDED_BY(mu_) = false;
  // The response stream from the plugin ended (read failed).
  bool response_ended_ ABSL_GUARDED_BY(mu_) = false;
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
      options_(std::move(options)) {}

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
    exchange->Start(std::nullopt);
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
    exchange->Start(*std::move(user));
  });
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
