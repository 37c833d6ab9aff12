// CompletionQueueThread: one gRPC completion queue and the one thread that
// drains it, for asynchronous (completion-queue API) client calls whose
// completions should all run on a single thread. Compared with the callback
// API, whose reactions run on gRPC's pool of pollers, one thread polling its
// own queue needs no hand-off between pollers per completion: on the
// route proxy's path this halves the broker's context switches per request
// (docs/performance.md, "Plugin routes").
//
// Threading: operations may be started from any thread with cq() and a tag
// that points to a Completion; Completion::OnComplete then runs on this
// object's thread, never inline. The destructor shuts the queue down and
// drains it: every operation started on it must complete first, so every
// call using it must be finished (or cancelled) and its Completions alive
// until then.
//
//   CompletionQueueThread cq_thread("route-proxy");
//   auto rw = stub->PrepareAsyncHandleHttp(&context, cq_thread.cq());
//   rw->StartCall(CompletionQueueThread::Tag(&started));  // started: a Completion
#ifndef TRACIM_BROKER_PROXY_COMPLETION_QUEUE_THREAD_H_
#define TRACIM_BROKER_PROXY_COMPLETION_QUEUE_THREAD_H_

#include <grpcpp/completion_queue.h>

#include <string>
#include <thread>

namespace tracim::broker {

class CompletionQueueThread {
 public:
  // The tag of every operation started on cq().
  class Completion {
   public:
    // On the queue's thread; `ok` as gRPC reports it for the operation.
    // Must not block.
    virtual void OnComplete(bool ok) = 0;

   protected:
    ~Completion() = default;
  };

  // Starts the thread, named `name` (at most 15 characters are shown).
  explicit CompletionQueueThread(const std::string& name);
  CompletionQueueThread(const CompletionQueueThread&) = delete;
  CompletionQueueThread& operator=(const CompletionQueueThread&) = delete;
  ~CompletionQueueThread();

  grpc::CompletionQueue* cq() { return &cq_; }

  // The tag to give gRPC for `completion` (the queue casts tags back to
  // Completion*, so they must be converted from exactly that type).
  static void* Tag(Completion* completion) { return completion; }

 private:
  void Run();

  grpc::CompletionQueue cq_;
  std::thread thread_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROXY_COMPLETION_QUEUE_THREAD_H_
