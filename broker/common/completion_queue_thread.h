// CompletionQueueThread: one gRPC completion queue and the one thread that
// drains it, for asynchronous (completion-queue API) calls whose
// completions should all run on a single thread.
//
// Why one thread: gRPC 1.51's epoll engine lets one thread of the process
// poll at a time, and a poller that wakes with events hands the role to
// another waiting thread before it runs the work. Every thread blocked in a
// completion queue (or gRPC's callback-API threads, which exist as soon as
// one callback-API object does) is such a waiting thread, and each hand-off
// is a context switch. The broker therefore serves its control socket and
// makes every call to its plugins (routes, events, health checks) on ONE
// queue drained by ONE thread: a queue made for the control server
// (ForServer), shared by all of them (docs/performance.md, "Plugin routes").
//
// Polling before sleeping: with a non-zero `idle_poll`, the thread keeps
// polling the queue (without blocking) for that long after each completion
// it ran before it blocks in the queue. It polls gRPC's sockets itself only
// while it is the process's one thread waiting in gRPC (the broker's case:
// see above). On this kind of machine a blocked thread that an event wakes
// costs tens of microseconds before it runs; an answer that arrives while
// the thread still polls is run at once. The price is CPU: up to
// `idle_poll` of it after every completion (docs/performance.md, "Polling
// before sleeping"). Zero blocks at once.
//
// Threading: operations may be started from any thread with cq() and a tag
// that points to a Completion; Completion::OnComplete then runs on this
// object's thread, never inline. Shutdown (or the destructor) shuts the
// queue down and drains it: no operation may be started after that, so
// every call using the queue must be finished (or cancelled) first, a server
// using it shut down first, and the Completions alive until they ran.
//
//   CompletionQueueThread cq_thread("route-proxy");
//   auto rw = stub->PrepareAsyncHandleHttp(&context, cq_thread.cq());
//   rw->StartCall(CompletionQueueThread::Tag(&started));  // started: a Completion
#ifndef TRACIM_BROKER_COMMON_COMPLETION_QUEUE_THREAD_H_
#define TRACIM_BROKER_COMMON_COMPLETION_QUEUE_THREAD_H_

#include <grpcpp/completion_queue.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace grpc {
class ServerBuilder;
}  // namespace grpc

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

  // The Completion of one kind of operation of an object: runs
  // `(owner->*on)(ok)` on the queue's thread.
  //   Bound<Stream> read_done_{this, &Stream::OnReadDone};
  template <typename Owner>
  class Bound final : public Completion {
   public:
    Bound(Owner* owner, void (Owner::*on)(bool)) : owner_(owner), on_(on) {}
    void OnComplete(bool ok) override { (owner_->*on_)(ok); }

   private:
    Owner* const owner_;
    void (Owner::*const on_)(bool);
  };

  // A queue for client calls, and its thread, named `name` (at most 15
  // characters are shown), polling `idle_poll` after each completion
  // before it sleeps (above).
  explicit CompletionQueueThread(const std::string& name, std::chrono::microseconds idle_poll = {});
  // A queue of the server `builder` will build (before BuildAndStart),
  // usable for client calls too; server_cq() is set. The thread starts
  // at once.
  static std::unique_ptr<CompletionQueueThread> ForServer(const std::string& name,
                                                          grpc::ServerBuilder& builder,
                                                          std::chrono::microseconds idle_poll = {});
  CompletionQueueThread(const CompletionQueueThread&) = delete;
  CompletionQueueThread& operator=(const CompletionQueueThread&) = delete;
  ~CompletionQueueThread();

  grpc::CompletionQueue* cq() { return cq_.get(); }
  // The queue as a server's, or null for a client queue.
  grpc::ServerCompletionQueue* server_cq() { return server_cq_; }

  // Returns once the queue's thread has run a completion queued now: what
  // it was running when Barrier was called is over (at once after
  // Shutdown). Not from the queue's own thread, not during Shutdown.
  void Barrier();

  // Shuts the queue down, runs what is left on it and joins the thread.
  // Idempotent; not from the queue's own thread.
  void Shutdown();

  // The tag to give gRPC for `completion` (the queue casts tags back to
  // Completion*, so they must be converted from exactly that type).
  static void* Tag(Completion* completion) { return completion; }

 private:
  CompletionQueueThread(const std::string& name, std::unique_ptr<grpc::CompletionQueue> cq,
                        grpc::ServerCompletionQueue* server_cq,
                        std::chrono::microseconds idle_poll);
  void Run();
  void RunPolling();

  std::unique_ptr<grpc::CompletionQueue> cq_;
  grpc::ServerCompletionQueue* const server_cq_;
  const std::chrono::microseconds idle_poll_;
  std::thread thread_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_COMMON_COMPLETION_QUEUE_THREAD_H_
