#include "broker/events/plugin_event_stream.h"

#include "tracim/plugin/v1/handshake.h"

namespace tracim::broker {

using tracim::plugin::v1::EventBatch;

std::shared_ptr<PluginEventStream> PluginEventStream::Open(tracim::plugin::v1::Plugin::Stub* stub,
                                                           const std::string& secret,
                                                           Callbacks callbacks) {
  std::shared_ptr<PluginEventStream> stream(new PluginEventStream(std::move(callbacks)));
  stream->self_ = stream;
  stream->context_.AddMetadata(tracim::plugin::v1::kSecretMetadataKey, secret);
  stub->async()->Events(&stream->context_, stream.get());
  stream->StartRead(&stream->ack_);
  // Keeps the call alive until OnDone even with no write in flight.
  stream->AddHold();
  stream->StartCall();
  return stream;
}

void PluginEventStream::Send(EventBatch batch) {
  absl::MutexLock lock(&mu_);
  if (broken_) return;
  queue_.push_back(std::move(batch));
  if (!writing_) WriteNextLocked();
}

void PluginEventStream::WriteNextLocked() {
  if (queue_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  StartWrite(&queue_.front());
}

void PluginEventStream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  queue_.pop_front();
  if (!ok) {
    // The stream is broken; OnDone will follow.
    broken_ = true;
    writing_ = false;
    queue_.clear();
    return;
  }
  WriteNextLocked();
}

void PluginEventStream::OnReadDone(bool ok) {
  if (!ok) {
    // The plugin closed its side or the call failed: end ours too.
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    context_.TryCancel();
    RemoveHold();
    return;
  }
  if (callbacks_.on_ack) callbacks_.on_ack(ack_);
  StartRead(&ack_);
}

void PluginEventStream::Cancel() { context_.TryCancel(); }

void PluginEventStream::OnDone(const grpc::Status& status) {
  // May destroy this at the end of the scope, if the owner let go already.
  std::shared_ptr<PluginEventStream> keep = std::move(self_);
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    queue_.clear();
  }
  auto on_done = std::move(callbacks_.on_done);
  callbacks_ = {};
  if (on_done) on_done(status);
}

}  // namespace tracim::broker
