#include "sdk_cpp/src/plugin_service.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin::internal {
namespace {

// Finishes a stream at once with `status` (a refused call).
template <typename Request, typename Response>
class RejectingReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RejectingReactor(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

// One Plugin.Events stream. Batches are read on gRPC's threads and each event
// is posted to the event queue; the queue's thread runs the handlers and
// calls Ack(). Acks accumulate while a write is in flight, so they go out in
// batches under load. Owned by shared_ptr: gRPC's reference (self_) is
// dropped in OnDone, queued events hold theirs.
class EventsReactor final : public grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck>,
                            public std::enable_shared_from_this<EventsReactor> {
 public:
  EventsReactor(const PluginRegistry& registry, WorkQueue& queue, LogSink log)
      : registry_(registry), queue_(queue), log_(std::move(log)) {}

  // Called once, right after construction, from the method handler.
  void Begin(std::shared_ptr<EventsReactor> self) {
    self_ = std::move(self);
    absl::MutexLock lock(&mu_);
    if (!finished_) StartRead(&batch_);  // Close() may have come first.
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The broker half-closed (or the call broke): finish once every event
      // received so far is acknowledged.
      absl::MutexLock lock(&mu_);
      read_closed_ = true;
      MaybeFinishLocked();
      return;
    }
    std::vector<v1::Event> events(std::make_move_iterator(batch_.mutable_events()->begin()),
                                  std::make_move_iterator(batch_.mutable_events()->end()));
    batch_.Clear();
    {
      absl::MutexLock lock(&mu_);
      unacked_ += static_cast<int>(events.size());
    }
    for (v1::Event& event : events) {
      queue_.Post([self = shared_from_this(), event = std::move(event)] { self->Deliver(event); });
    }
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (unacked_ < kMaxUnackedEvents) {
      StartRead(&batch_);
    } else {
      read_paused_ = true;
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the event stream broke"));
      return;
    }
    if (finished_) return;
    if (!pending_acks_.empty()) {
      WriteAcksLocked();
    } else if (closing_) {
      FinishLocked(grpc::Status::OK);
    } else {
      MaybeFinishLocked();
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "event stream cancelled"));
  }

  // Finishes the stream with OK as soon as no ack is being or waiting to be
  // written. Any thread.
  void Close() {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (!writing_ && pending_acks_.empty()) FinishLocked(grpc::Status::OK);
  }

  void OnDone() override {
    // Drops gRPC's reference; queued events may keep the object a while.
    std::shared_ptr<EventsReactor> self = std::move(self_);
  }

 private:
  // On the event queue's thread.
  void Deliver(const v1::Event& event) {
    // Handler failures are logged by DispatchEvent; the event is
    // acknowledged either way (documented in plugin.h).
    (void)registry_.DispatchEvent(event, log_);
    Ack(event.event_id());
  }

  void Ack(uint64_t event_id) {
    absl::MutexLock lock(&mu_);
    --unacked_;
    if (finished_) return;  // Unacknowledged: redelivered on the next stream.
    pending_acks_.push_back(event_id);
    if (!writing_) WriteAcksLocked();
    if (read_paused_ && !read_closed_ && unacked_ <= kResumeUnackedEvents) {
      read_paused_ = false;
      StartRead(&batch_);
    }
  }

  void WriteAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ack_.Clear();
    for (uint64_t id : pending_acks_) ack_.add_event_ids(id);
    pending_acks_.clear();
    writing_ = true;
    StartWrite(&ack_);
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (read_closed_ && unacked_ == 0 && !writing_) FinishLocked(grpc::Status::OK);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  const PluginRegistry& registry_;
  WorkQueue& queue_;
  const LogSink log_;
  std::shared_ptr<EventsReactor> self_;

  // Only one read is outstanding at a time; read reactions are serialized.
  v1::EventBatch batch_;

  absl::Mutex mu_;
  v1::EventAck ack_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> pending_acks_ ABSL_GUARDED_BY(mu_);
  int unacked_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

// One Plugin.HandleHttp call: buffers the request, runs the route handler on
// the HTTP pool once the broker half-closes, then streams the response head
// and the body in kResponseChunkBytes chunks. Owned like EventsReactor.
class HttpReactor final : public grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>,
                          public std::enable_shared_from_this<HttpReactor> {
 public:
  HttpReactor(const PluginRegistry& registry, WorkQueue& queue, LogSink log)
      : registry_(registry), queue_(queue), log_(std::move(log)) {}

  void Begin(std::shared_ptr<HttpReactor> self) {
    self_ = std::move(self);
    StartRead(&part_);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      if (part_.has_head()) {
        if (have_head_)
          return FinishWith(grpc::StatusCode::INVALID_ARGUMENT, "second request head");
        TakeHead(*part_.mutable_head());
      } else if (part_.part_case() == v1::HttpRequestPart::kBody) {
        if (!have_head_) {
          return FinishWith(grpc::StatusCode::INVALID_ARGUMENT, "request body before its head");
        }
        request_.body.append(part_.body());
      }
      part_.Clear();
      StartRead(&part_);
      return;
    }
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (!have_head_) {
      FinishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request stream ended without a head"));
      return;
    }
    queue_.Post([self = shared_from_this()] { self->Run(); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "response stream broke"));
      return;
    }
    if (finished_) return;
    if (body_offset_ < response_.body.size()) {
      WriteNextChunkLocked();
    } else {
      FinishLocked(grpc::Status::OK);
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled"));
  }

  void OnDone() override { std::shared_ptr<HttpReactor> self = std::move(self_); }

 private:
  void TakeHead(v1::HttpRequestHead& head) {
    have_head_ = true;
    request_.method = std::move(*head.mutable_method());
    request_.path = std::move(*head.mutable_path());
    request_.query = std::move(*head.mutable_query());
    request_.route = std::move(*head.mutable_route());
    request_.path_params.insert(head.path_params().begin(), head.path_params().end());
    for (v1::HttpHeader& header : *head.mutable_headers()) {
      request_.headers.emplace_back(std::move(*header.mutable_name()),
                                    std::move(*header.mutable_value()));
    }
    if (head.has_user()) request_.user = std::move(*head.mutable_user());
    request_.request_id = std::move(*head.mutable_request_id());
    request_.remote_addr = std::move(*head.mutable_remote_addr());
    if (head.content_length() > 0) {
      request_.body.reserve(static_cast<size_t>(std::min<int64_t>(head.content_length(), 1 << 24)));
    }
  }

  // On the HTTP pool.
  void Run() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;  // Cancelled while queued.
    }
    // request_ is no longer touched by reactions: reading ended.
    HttpResponse response = registry_.HandleHttp(std::move(request_), log_);
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    response_ = std::move(response);
    out_.Clear();
    v1::HttpResponseHead* head = out_.mutable_head();
    head->set_status(response_.status);
    for (auto& [name, value] : response_.headers) {
      v1::HttpHeader* header = head->add_headers();
      header->set_name(name);
      header->set_value(value);
    }
    StartWrite(&out_);
  }

  void WriteNextChunkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t size = std::min(kResponseChunkBytes, response_.body.size() - body_offset_);
    out_.Clear();
    out_.set_body(response_.body.substr(body_offset_, size));
    body_offset_ += size;
    StartWrite(&out_);
  }

  void FinishWith(grpc::StatusCode code, std::string message) {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(code, std::move(message)));
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  const PluginRegistry& registry_;
  WorkQueue& queue_;
  const LogSink log_;
  std::shared_ptr<HttpReactor> self_;

  // Read side: touched by read reactions only (one outstanding read), then
  // handed to Run() after the last one.
  v1::HttpRequestPart part_;
  bool have_head_ = false;
  HttpRequest request_;

  absl::Mutex mu_;
  HttpResponse response_ ABSL_GUARDED_BY(mu_);
  size_t body_offset_ ABSL_GUARDED_BY(mu_) = 0;
  v1::HttpResponsePart out_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Constant-time comparison: the secret must not leak through timing.
bool SecretsEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

PluginService::PluginService(const PluginRegistry& registry, std::string secret,
                             WorkQueue& event_queue, WorkQueue& http_queue,
                             ShutdownCallback on_shutdown, LogSink log)
    : registry_(registry),
      secret_(std::move(secret)),
      event_queue_(event_queue),
      http_queue_(http_queue),
      on_shutdown_(std::move(on_shutdown)),
      log_(std::move(log)) {}

grpc::Status PluginService::Authenticate(grpc::CallbackServerContext* context,
                                         std::string_view method) const {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(v1::kSecretMetadataKey);
  if (it != metadata.end() &&
      SecretsEqual(std::string_view(it->second.data(), it->second.size()), secret_)) {
    return grpc::Status::OK;
  }
  log_(absl::StrCat("refused a call to Plugin.", AsAbsl(method), " from ", context->peer(),
                    ": missing or wrong ", v1::kSecretMetadataKey));
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      absl::StrCat("missing or wrong ", v1::kSecretMetadataKey));
}

grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck>* PluginService::Events(
    grpc::CallbackServerContext* context) {
  if (grpc::Status status = Authenticate(context, "Events"); !status.ok()) {
    return new RejectingReactor<v1::EventBatch, v1::EventAck>(std::move(status));
  }
  auto reactor = std::make_shared<EventsReactor>(registry_, event_queue_, log_);
  {
    absl::MutexLock lock(&streams_mu_);
    if (streams_closed_) {
      return new RejectingReactor<v1::EventBatch, v1::EventAck>(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "the plugin is stopping"));
    }
    std::erase_if(streams_, [](const std::weak_ptr<EventsReactor>& s) { return s.expired(); });
    streams_.push_back(reactor);
  }
  reactor->Begin(reactor);
  return reactor.get();
}

void PluginService::CloseEventStreams() {
  std::vector<std::weak_ptr<EventsReactor>> streams;
  {
    absl::MutexLock lock(&streams_mu_);
    streams_closed_ = true;
    streams.swap(streams_);
  }
  for (const std::weak_ptr<EventsReactor>& weak : streams) {
    if (std::shared_ptr<EventsReactor> stream = weak.lock()) stream->Close();
  }
}

grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>* PluginService::HandleHttp(
    grpc::CallbackServerContext* context) {
  if (grpc::Status status = Authenticate(context, "HandleHttp"); !status.ok()) {
    return new RejectingReactor<v1::HttpRequestPart, v1::HttpResponsePart>(std::move(status));
  }
  auto reactor = std::make_shared<HttpReactor>(registry_, http_queue_, log_);
  reactor->Begin(reactor);
  return reactor.get();
}

grpc::ServerUnaryReactor* PluginService::Shutdown(grpc::CallbackServerContext* context,
                                                  const v1::ShutdownRequest* request,
                                                  v1::ShutdownResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authenticate(context, "Shutdown");
  reactor->Finish(status);
  if (status.ok()) {
    on_shutdown_(request->reason(), std::chrono::milliseconds(request->grace_ms()));
  }
  return reactor;
}

}  // namespace tracim::plugin::internal
