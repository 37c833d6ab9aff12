// The broker's end of one Plugin.Events stream (one per plugin launch): sends
// EventBatch messages, already encoded (PluginEventQueue assembles them from
// each event's encoding), and reports the plugin's acks. A bidi call of the
// generic stub (requests are bytes, acks are parsed) on the broker's
// completion queue (CompletionQueueThread), shared between its owner and
// itself until the call is done, so the owner may keep calling it
// (harmlessly) after on_done.
//
// Thread-safety: Send() and Cancel() may be called from any thread; the
// callbacks run on the queue's thread, must not block, and none comes after
// on_done.
#ifndef TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_
#define TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "broker/common/completion_queue_thread.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::broker {

class PluginEventStream {
 public:
  struct Callbacks {
    std::function<void(const tracim::plugin::v1::EventAck&)> on_ack;
    // The stream ended (plugin gone, cancelled, or broken): every event sent
    // and not acknowledged must be delivered again.
    std::function<void(const grpc::Status&)> on_done;
  };

  // Starts the call to the plugin's Plugin.Events on `channel`, on `queue`
  // (which must outlive the call: until on_done).
  static std::shared_ptr<PluginEventStream> Open(CompletionQueueThread& queue,
                                                 const std::shared_ptr<grpc::Channel>& channel,
                                                 const std::string& secret, Callbacks callbacks);

  // Queues a batch, the encoding of an EventBatch (sent as is, not copied);
  // batches are written one at a time, in order. Dropped once the stream is
  // broken (the owner redelivers after on_done).
  void Send(std::string batch);
  // Ends the call (on_done follows with CANCELLED).
  void Cancel();

 private:
  // A gRPC operation's tag: runs `on` on the queue's thread.
  using Op = CompletionQueueThread::Bound<PluginEventStream>;

  explicit PluginEventStream(Callbacks callbacks) : callbacks_(std::move(callbacks)) {}
  void OnStarted(bool ok);
  void OnWriteDone(bool ok);
  void OnReadDone(bool ok);
  void OnFinished(bool ok);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One operation is over: after the last one (the call finished), on_done
  // runs and the stream lets go of itself.
  void OpDone(absl::ReleasableMutexLock& lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Keeps this alive until the call is over.
  std::shared_ptr<PluginEventStream> self_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<grpc::ByteBuffer, tracim::plugin::v1::EventAck>>
      call_;
  Callbacks callbacks_;
  tracim::plugin::v1::EventAck ack_;
  grpc::Status status_;
  Op start_op_{this, &PluginEventStream::OnStarted};
  Op write_op_{this, &PluginEventStream::OnWriteDone};
  Op read_op_{this, &PluginEventStream::OnReadDone};
  Op finish_op_{this, &PluginEventStream::OnFinished};
  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // StartCall completed: writes may begin.
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  // Operations started and not completed (Finish included).
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_EVENTS_PLUGIN_EVENT_STREAM_H_
