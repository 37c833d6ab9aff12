#include "sdk_cpp/src/http_call_reactor.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sdk_cpp/src/http_transport.h"

namespace tracim::plugin::internal {
namespace {

HttpRequestHead HeadFromProto(v1::HttpRequestHead& head) {
  HttpRequestHead out{
      .method = std::move(*head.mutable_method()),
      .path = std::move(*head.mutable_path()),
      .query = std::move(*head.mutable_query()),
      .route = std::move(*head.mutable_route()),
      .path_params = {head.path_params().begin(), head.path_params().end()},
  };
  out.headers.reserve(static_cast<size_t>(head.headers_size()));
  for (v1::HttpHeader& header : *head.mutable_headers()) {
    out.headers.emplace_back(std::move(*header.mutable_name()), std::move(*header.mutable_value()));
  }
  if (head.has_user()) out.user = std::move(*head.mutable_user());
  out.request_id = std::move(*head.mutable_request_id());
  out.remote_addr = std::move(*head.mutable_remote_addr());
  if (head.content_length() >= 0) out.content_length = static_cast<uint64_t>(head.content_length());
  return out;
}

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void RaiseToAtLeast(std::atomic<size_t>& peak, size_t value) {
  size_t seen = peak.load(std::memory_order_relaxed);
  while (seen < value && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// Owned by shared_ptr: gRPC's reference (self_) is dropped in OnDone, the
// queued or running handler holds its own.
class HttpCallReactor final
    : public grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>,
      public HttpTransport,
      public std::enable_shared_from_this<HttpCallReactor> {
 public:
  HttpCallReactor(grpc::CallbackServerContext* context, HttpCallEnv env)
      : context_(context), env_(std::move(env)) {
    env_.stats.live_calls.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpCallReactor() override { env_.stats.live_calls.fetch_sub(1, std::memory_order_relaxed); }

  // Called once, right after construction, from the method handler.
  void Begin(std::shared_ptr<HttpCallReactor> self) {
    self_ = std::move(self);
    absl::MutexLock lock(&mu_);
    StartReadLocked();
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (finishing_) return;
    switch (phase_) {
      case Phase::kHead:
        return OnHeadLocked(ok);
      case Phase::kBuffering:
        return OnBufferedPartLocked(ok);
      case Phase::kStreaming:
        return OnStreamedPartLocked(ok);
      case Phase::kResponding:
        return;  // The rest of the request is not wanted.
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) BreakLocked(absl::CancelledError(kCancelledMessage));
    if (finish_deferred_) {
      finish_deferred_ = false;
      Finish(std::move(finish_status_));
      return;
    }
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "response stream broke"));
      return;
    }
    if (finishing_ || phase_ != Phase::kResponding) return;  // A handler's write: it wakes up.
    if (body_offset_ < response_.body.size()) {
      WriteNextChunkLocked();
    } else {
      FinishLocked(grpc::Status::OK);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    BreakLocked(absl::CancelledError(kCancelledMessage));
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled"));
  }

  void OnDone() override {
    // Drops gRPC's reference; a running handler may keep the object a while.
    std::shared_ptr<HttpCallReactor> self = std::move(self_);
  }

  // --- HttpTransport, on the streaming handler's thread.

  absl::StatusOr<std::optional<std::string>> ReadBody() override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &HttpCallReactor::ChunkOrEndOrBroken));
    if (!broken_.ok()) return broken_;
    if (!pending_.has_value()) return std::nullopt;  // body_ended_
    std::string chunk = std::move(*pending_);
    pending_.reset();
    StartReadLocked();  // The next chunk comes while this one is handled.
    return chunk;
  }

  absl::Status SendHead(int status, const HttpHeaders& headers) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    out_.Clear();
    SetHeadLocked(status, headers);
    return WriteAndWaitLocked();
  }

  absl::Status SendBody(std::string_view chunk) override {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    out_.Clear();
    out_.set_body(chunk.data(), chunk.size());
    NoteBytesHeldLocked();
    return WriteAndWaitLocked();
  }

 private:
  enum class Phase {
    kHead,        // waiting for the request head
    kBuffering,   // buffered route: collecting the body
    kStreaming,   // streaming route: its handler reads and writes
    kResponding,  // writing response_ (buffered route's answer, 404, ...)
  };

  void OnHeadLocked(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request stream ended without a head"));
      return;
    }
    if (in_.part_case() == v1::HttpRequestPart::kBody) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request body before its head"));
      return;
    }
    if (!in_.has_head()) {
      StartReadLocked();
      return;
    }
    // head_ and route_ are set here, before any handler is scheduled, and
    // only read afterwards.
    head_ = HeadFromProto(*in_.mutable_head());
    in_.Clear();
    PluginRegistry::RouteMatch match = env_.registry.MatchRoute(head_);
    if (match.route == nullptr) {
      RespondLocked(std::move(match.no_route));
      return;
    }
    route_ = match.route;
    if (route_->streaming()) {
      phase_ = Phase::kStreaming;
      StartReadLocked();  // The first chunk comes while the handler starts.
      // Through the HTTP queue: it holds work until the plugin is registered.
      env_.http_queue.Post([self = shared_from_this()] { self->StartStreamingHandler(); });
      return;
    }
    phase_ = Phase::kBuffering;
    if (head_.content_length) {
      request_body_.reserve(
          static_cast<size_t>(std::min<uint64_t>(*head_.content_length, 1 << 24)));
    }
    StartReadLocked();
  }

  void OnBufferedPartLocked(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      if (absl::Status end = BodyEndLocked(); !end.ok()) {
        FinishLocked(ToGrpc(end));
        return;
      }
      env_.http_queue.Post([self = shared_from_this()] { self->RunBufferedHandler(); });
      return;
    }
    if (in_.has_head()) {
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "second request head"));
      return;
    }
    received_bytes_ += in_.body().size();
    request_body_.append(in_.body());
    in_.Clear();
    StartReadLocked();
  }

  void OnStreamedPartLocked(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      if (absl::Status end = BodyEndLocked(); !end.ok()) {
        BreakLocked(std::move(end));  // The handler gives up; its status ends the call.
      } else {
        body_ended_ = true;
      }
      return;
    }
    if (in_.has_head()) {
      BreakLocked(absl::CancelledError("the broker sent a second request head"));
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "second request head"));
      return;
    }
    if (in_.body().empty()) {
      StartReadLocked();
      return;
    }
    received_bytes_ += in_.body().size();
    pending_ = std::move(*in_.mutable_body());
    in_.Clear();
    NoteBytesHeldLocked();
  }

  // OK when the request body is complete: the broker half-closed, the call
  // is not cancelled and the declared Content-Length arrived (a cancelled
  // upload can look like a half-close on this side).
  absl::Status BodyEndLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool short_body = head_.content_length && received_bytes_ < *head_.content_length;
    if (short_body || context_->IsCancelled()) return absl::CancelledError(kCancelledMessage);
    return absl::OkStatus();
  }

  // On the HTTP queue, once the body is complete.
  void RunBufferedHandler() {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;  // Cancelled while queued.
    }
    // head_ and request_body_ are no longer touched by reactions.
    HttpResponse response = env_.registry.CallBuffered(
        *route_, RequestWithBody(std::move(head_), std::move(request_body_)), env_.log);
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    RespondLocked(std::move(response));
  }

  // On the HTTP queue: hands the handler to a thread of its own.
  void StartStreamingHandler() {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;
    }
    if (env_.streaming_threads.Post([self = shared_from_this()] { self->RunStreamingHandler(); })) {
      return;
    }
    env_.log(absl::StrCat("route ", route_->method, " ", route_->pattern.pattern(),
                          ": no thread for the streaming handler"));
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    RespondLocked(HttpResponse::Message(503, "the plugin has no thread for this request"));
  }

  // On a streaming thread, for the whole exchange.
  void RunStreamingHandler() {
    {
      absl::MutexLock lock(&mu_);
      if (finishing_) return;  // Cancelled while waiting for a thread.
    }
    env_.stats.running_streaming_handlers.fetch_add(1, std::memory_order_relaxed);
    absl::Status status = env_.registry.CallStreaming(*route_, head_, *this, env_.log);
    env_.stats.running_streaming_handlers.fetch_sub(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    FinishLocked(status.ok() ? grpc::Status::OK : ToGrpc(status));
  }

  bool ChunkOrEndOrBroken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !broken_.ok() || pending_.has_value() || body_ended_;
  }
  bool NotWriting() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !writing_; }

  void StartReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_ || reading_) return;
    reading_ = true;
    StartRead(&in_);
  }

  // Writes out_ and waits for OnWriteDone (out_ is gRPC's until then).
  absl::Status WriteAndWaitLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    StartWrite(&out_);
    mu_.Await(absl::Condition(this, &HttpCallReactor::NotWriting));
    return broken_;
  }

  void SetHeadLocked(int status, const HttpHeaders& headers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::HttpResponseHead* head = out_.mutable_head();
    head->set_status(status);
    for (const auto& [name, value] : headers) {
      v1::HttpHeader* header = head->add_headers();
      header->set_name(name);
      header->set_value(value);
    }
  }

  // Answers with a whole response from the reactor: the head with the first
  // chunk, then the other chunks.
  void RespondLocked(HttpResponse response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    phase_ = Phase::kResponding;
    response_ = std::move(response);
    body_offset_ = 0;
    out_.Clear();
    // The whole body is known: declare its length, so that the broker sends
    // the response in one piece instead of chunked (not for statuses that
    // have no body, nor when the handler set one itself).
    const int status = response_.status;
    const bool bodiless = status < 200 || status == 204 || status == 304;
    bool has_length = false;
    for (const auto& [name, value] : response_.headers) {
      has_length = has_length || absl::EqualsIgnoreCase(name, "Content-Length");
    }
    if (!bodiless && !has_length) {
      response_.headers.emplace_back("Content-Length", std::to_string(response_.body.size()));
    }
    SetHeadLocked(response_.status, response_.headers);
    // The first chunk travels with the head: a response of one chunk is a
    // single message, which ends the call too.
    body_offset_ = std::min(kResponseChunkBytes, response_.body.size());
    out_.mutable_head()->set_body(response_.body.data(), body_offset_);
    if (body_offset_ == response_.body.size()) {
      finishing_ = true;
      BreakLocked(absl::CancelledError(kCancelledMessage));
      StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    writing_ = true;
    StartWrite(&out_);
  }

  void WriteNextChunkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t size = std::min(kResponseChunkBytes, response_.body.size() - body_offset_);
    out_.Clear();
    out_.set_body(response_.body.data() + body_offset_, size);
    body_offset_ += size;
    writing_ = true;
    StartWrite(&out_);
  }

  void NoteBytesHeldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t held =
        (pending_ ? pending_->size() : 0) + (out_.has_head() ? 0 : out_.body().size());
    RaiseToAtLeast(env_.stats.peak_streaming_bytes_held, held);
  }

  // The handler's calls fail with `status` from now on.
  void BreakLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_.ok()) broken_ = std::move(status);
  }

  // Ends the call once: no new read or write starts after this. A write in
  // flight must complete first, so Finish waits for its OnWriteDone.
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    BreakLocked(absl::CancelledError(kCancelledMessage));
    if (writing_) {
      finish_deferred_ = true;
      finish_status_ = std::move(status);
      return;
    }
    Finish(std::move(status));
  }

  grpc::CallbackServerContext* const context_;
  // A copy: the reactor may outlive the call (its handler still running).
  const HttpCallEnv env_;
  std::shared_ptr<HttpCallReactor> self_;

  // Set when the head arrives, read-only once a handler is scheduled.
  HttpRequestHead head_;
  const PluginRegistry::Route* route_ = nullptr;
  // A buffered route's body: reactions append until the last part, then
  // the handler takes it.
  std::string request_body_;

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kHead;
  // Read side: one read outstanding at most, into in_; a streaming route's
  // next chunk waits in pending_ until its handler takes it.
  v1::HttpRequestPart in_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::string> pending_ ABSL_GUARDED_BY(mu_);
  bool body_ended_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t received_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Write side: one write outstanding at most, of out_.
  v1::HttpResponsePart out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  HttpResponse response_ ABSL_GUARDED_BY(mu_);
  size_t body_offset_ ABSL_GUARDED_BY(mu_) = 0;
  // OK while the handler's calls may proceed.
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_deferred_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>* StartHttpCall(
    grpc::CallbackServerContext* context, const HttpCallEnv& env) {
  auto reactor = std::make_shared<HttpCallReactor>(context, env);
  reactor->Begin(reactor);
  return reactor.get();
}

}  // namespace tracim::plugin::internal
