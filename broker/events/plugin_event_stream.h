// The broker's end of one Plugin.Events stream (one per plugin launch): sends
// EventBatch messages, already encoded (PluginEventQueue assembles them from
// each event's encoding), and reports the plugin's acks. A gRPC client bidi
// reactor on the generic stub (requests are bytes, acks are parsed), shared
// between its owner and itself until the call is done, so the owner may keep
// calling it (harmlessly) after on_done.
//
// Thread-safety: Send() and Cancel() may be called from any thread; the
// callbacks run on gRPC threads, must not block, and none comes after on_done.
#ifndef TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_
#define TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::broker {

class PluginEventStream
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, tracim::plugin::v1::EventAck> {
 public:
  struct Callbacks {
    std::function<void(const tracim::plugin::v1::EventAck&)> on_ack;
    // The stream ended (plugin gone, cancelled, or broken): every event sent
    // and not acknowledged must be delivered again.
    std::function<void(const grpc::Status&)> on_done;
  };

  // Starts the call to the plugin's Plugin.Events on `channel`.
  static std::shared_ptr<PluginEventStream> Open(const std::shared_ptr<grpc::Channel>& channel,
                                                 const std::string& secret, Callbacks callbacks);

  // Queues a batch, the encoding of an EventBatch (sent as is, not copied);
  // batches are written one at a time, in order. Dropped once the stream is
  // broken (the owner redelivers after on_done).
  void Send(std::string batch);
  // Ends the call (on_done follows with CANCELLED).
  void Cancel();

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  explicit PluginEventStream(Callbacks callbacks) : callbacks_(std::move(callbacks)) {}
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Keeps this alive until OnDone.
  std::shared_ptr<PluginEventStream> self_;
  grpc::ClientContext context_;
  Callbacks callbacks_;
  tracim::plugin::v1::EventAck ack_;
  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_
