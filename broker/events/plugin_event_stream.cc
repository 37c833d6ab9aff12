#include "broker/events/plugin_event_stream.h"

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::broker {

namespace v1 = tracim::plugin::v1;

namespace {

// "/tracim.plugin.v1.Plugin/Events". gRPC keeps a pointer to it for the
// whole call: never destroyed.
const std::string& EventsMethod() {
  static const std::string* const method =
      new std::string(absl::StrCat("/", v1::Plugin::service_full_name(), "/Events"));
  return *method;
}

}  // namespace

std::shared_ptr<PluginEventStream> PluginEventStream::Open(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& secret, Callbacks callbacks) {
  std::shared_ptr<PluginEventStream> stream(new PluginEventStream(std::move(callbacks)));
  stream->self_ = stream;
  stream->context_.AddMetadata(v1::kSecretMetadataKey, secret);
  grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::EventAck> stub(channel);
  stub.PrepareBidiStreamingCall(&stream->context_, EventsMethod(), grpc::StubOptions(),
                                stream.get());
  stream->StartRead(&stream->ack_);
  // Keeps the call alive until OnDone even with no write in flight.
  stream->AddHold();
  stream->StartCall();
  return stream;
}

void PluginEventStream::Send(std::string batch) {
  // The buffer takes the string over: freed once gRPC has written it.
  auto* bytes = new std::string(std::move(batch));
  grpc::Slice slice(
      bytes->data(), bytes->size(), [](void* p) { delete static_cast<std::string*>(p); }, bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  absl::MutexLock lock(&mu_);
  if (broken_) return;
  queue_.push_back(std::move(buffer));
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
