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
    CompletionQueueThread& queue, const std::shared_ptr<grpc::Channel>& channel,
    const std::string& secret, Callbacks callbacks) {
  std::shared_ptr<PluginEventStream> stream(new PluginEventStream(std::move(callbacks)));
  stream->self_ = stream;
  stream->context_.AddMetadata(v1::kSecretMetadataKey, secret);
  grpc::TemplatedGenericStub<grpc::ByteBuffer, v1::EventAck> stub(channel);
  absl::MutexLock lock(&stream->mu_);
  stream->call_ = stub.PrepareCall(&stream->context_, EventsMethod(), queue.cq());
  stream->call_->StartCall(CompletionQueueThread::Tag(&stream->start_op_));
  stream->call_->Read(&stream->ack_, CompletionQueueThread::Tag(&stream->read_op_));
  stream->outstanding_ = 2;
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
  // StartCall's operation must complete before the first write (they share
  // gRPC's write operation set).
  if (queue_.empty() || !started_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  ++outstanding_;
  call_->Write(queue_.front(), CompletionQueueThread::Tag(&write_op_));
}

void PluginEventStream::OnStarted(bool ok) {
  absl::ReleasableMutexLock lock(&mu_);
  if (ok) {
    started_ = true;
    if (!broken_) WriteNextLocked();
  } else {
    // A call that could not start fails its read too, which ends it.
    broken_ = true;
    queue_.clear();
  }
  OpDone(lock);
}

void PluginEventStream::OnWriteDone(bool ok) {
  absl::ReleasableMutexLock lock(&mu_);
  queue_.pop_front();
  if (ok && !broken_) {
    WriteNextLocked();
  } else {
    // The stream is broken; the read side ends the call.
    broken_ = true;
    writing_ = false;
    queue_.clear();
  }
  OpDone(lock);
}

void PluginEventStream::OnReadDone(bool ok) {
  if (ok) {
    if (callbacks_.on_ack) callbacks_.on_ack(ack_);
    call_->Read(&ack_, CompletionQueueThread::Tag(&read_op_));
    return;
  }
  // The plugin closed its side or the call failed: end ours too, and
  // collect the call's status.
  absl::ReleasableMutexLock lock(&mu_);
  broken_ = true;
  context_.TryCancel();
  ++outstanding_;
  call_->Finish(&status_, CompletionQueueThread::Tag(&finish_op_));
  OpDone(lock);
}

void PluginEventStream::OnFinished(bool) {
  absl::ReleasableMutexLock lock(&mu_);
  finish_done_ = true;
  OpDone(lock);
}

void PluginEventStream::OpDone(absl::ReleasableMutexLock& lock) {
  if (--outstanding_ > 0 || !finish_done_) return;
  queue_.clear();
  lock.Release();
  // May destroy this at the end of the scope, if the owner let go already.
  std::shared_ptr<PluginEventStream> keep = std::move(self_);
  auto on_done = std::move(callbacks_.on_done);
  callbacks_ = {};
  if (on_done) on_done(status_);
}

void PluginEventStream::Cancel() { context_.TryCancel(); }

}  // namespace tracim::broker
