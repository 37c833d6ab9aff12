#include "sdk_cpp/src/plugin_service.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/arena.h"
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

// One Plugin.Events stream. Batches are read on gRPC's threads and each batch
// is posted whole to the event queue (one handoff per batch, not per event);
// the queue's thread runs the handlers in order and acknowledges the events
// whose handler returned, in groups (see kAckGroupDelay). Acks also
// accumulate while a write is in flight. Owned by shared_ptr: gRPC's
// reference (self_) is dropped in OnDone, queued batches hold theirs.
class EventsReactor final : public grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck>,
                            public std::enable_shared_from_this<EventsReactor> {
 public:
  EventsReactor(const PluginRegistry& registry, WorkQueue& queue, LogSink log)
      : registry_(registry), queue_(queue), log_(std::move(log)) {}

  // Called once, right after construction, from the method handler.
  void Begin(std::shared_ptr<EventsReactor> self) {
    self_ = std::move(self);
    absl::MutexLock lock(&mu_);
    read_ = std::make_shared<ReceivedBatch>();
    if (!finished_) StartRead(read_->batch);  // Close() may have come first.
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
    std::shared_ptr<const ReceivedBatch> batch;
    {
      absl::MutexLock lock(&mu_);
      batch = std::move(read_);
      read_ = std::make_shared<ReceivedBatch>();
      unacked_ += batch->batch->events_size();
    }
    if (batch->batch->events_size() > 0) {
      queue_.Post([self = shared_from_this(), batch = std::move(batch)] {
        self->DeliverBatch(*batch->batch);
      });
    }
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (unacked_ < kMaxUnackedEvents) {
      StartRead(read_->batch);
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
  // On the event queue's thread: runs the handlers of `batch` in order.
  void DeliverBatch(const v1::EventBatch& batch) {
    HandleInAckGroups(
        batch,
        // Handler failures are logged by DispatchEvent; the event is
        // acknowledged either way (documented in plugin.h).
        [this](const v1::Event& event) { (void)registry_.DispatchEvent(event, log_); },
        [this](const std::vector<uint64_t>& ids) { Ack(ids); },
        [] { return std::chrono::steady_clock::now(); }, kAckGroupDelay);
  }

  // Acknowledges events whose handlers returned.
  void Ack(const std::vector<uint64_t>& event_ids) {
    absl::MutexLock lock(&mu_);
    unacked_ -= static_cast<int>(event_ids.size());
    if (finished_) return;  // Unacknowledged: redelivered on the next stream.
    pending_acks_.insert(pending_acks_.end(), event_ids.begin(), event_ids.end());
    if (!writing_) WriteAcksLocked();
    if (read_paused_ && !read_closed_ && unacked_ <= kResumeUnackedEvents) {
      read_paused_ = false;
      StartRead(read_->batch);
    }
  }

  void WriteAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ack_.Clear();
    ack_.mutable_event_ids()->Add(pending_acks_.begin(), pending_acks_.end());
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

  // A batch read from the broker, parsed on its own arena: the events'
  // fields are carved out of a few blocks instead of a heap allocation each,
  // and freed at once after the last handler of the batch returned.
  struct ReceivedBatch {
    ReceivedBatch()
        : arena(ArenaOptions()),
          batch(google::protobuf::Arena::CreateMessage<v1::EventBatch>(&arena)) {}
    static google::protobuf::ArenaOptions ArenaOptions() {
      google::protobuf::ArenaOptions options;
      options.start_block_size = 16 << 10;
      options.max_block_size = 256 << 10;
      return options;
    }
    google::protobuf::Arena arena;
    v1::EventBatch* const batch;  // owned by arena
  };

  absl::Mutex mu_;
  // The target of the one read outstanding (reads are serialized).
  std::shared_ptr<ReceivedBatch> read_ ABSL_GUARDED_BY(mu_);
  v1::EventAck ack_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> pending_acks_ ABSL_GUARDED_BY(mu_);
  int unacked_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

void HandleInAckGroups(const v1::EventBatch& batch,
                       absl::FunctionRef<void(const v1::Event&)> handle,
                       absl::FunctionRef<void(const std::vector<uint64_t>&)> ack,
                       absl::FunctionRef<std::chrono::steady_clock::time_point()> now,
                       std::chrono::steady_clock::duration max_delay) {
  std::vector<uint64_t> done;
  done.reserve(static_cast<size_t>(batch.events_size()));
  auto group_start = now();
  for (const v1::Event& event : batch.events()) {
    handle(event);
    done.push_back(event.event_id());
    if (auto t = now(); t - group_start >= max_delay) {
      ack(done);
      done.clear();
      group_start = t;
    }
  }
  if (!done.empty()) ack(done);
}

namespace {

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
  return StartHttpCall(context, HttpCallEnv{.registry = registry_,
                                            .http_queue = http_queue_,
                                            .streaming_threads = streaming_threads_,
                                            .stats = http_stats_,
                                            .log = log_});
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
