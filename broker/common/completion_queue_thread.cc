#include "broker/common/completion_queue_thread.h"

#include <grpcpp/alarm.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>

#include "absl/synchronization/notification.h"

namespace tracim::broker {

CompletionQueueThread::CompletionQueueThread(const std::string& name,
                                             std::chrono::microseconds idle_poll)
    : CompletionQueueThread(name, std::make_unique<grpc::CompletionQueue>(), nullptr, idle_poll) {}

CompletionQueueThread::CompletionQueueThread(const std::string& name,
                                             std::unique_ptr<grpc::CompletionQueue> cq,
                                             grpc::ServerCompletionQueue* server_cq,
                                             std::chrono::microseconds idle_poll)
    : cq_(std::move(cq)), server_cq_(server_cq), idle_poll_(idle_poll), thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

std::unique_ptr<CompletionQueueThread> CompletionQueueThread::ForServer(
    const std::string& name, grpc::ServerBuilder& builder, std::chrono::microseconds idle_poll) {
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  grpc::ServerCompletionQueue* server_cq = cq.get();
  return std::unique_ptr<CompletionQueueThread>(
      new CompletionQueueThread(name, std::move(cq), server_cq, idle_poll));
}

CompletionQueueThread::~CompletionQueueThread() { Shutdown(); }

void CompletionQueueThread::Barrier() {
  if (!thread_.joinable()) return;  // shut down: nothing runs any more
  struct Reached final : Completion {
    void OnComplete(bool) override { reached.Notify(); }
    absl::Notification reached;
  };
  Reached barrier;
  grpc::Alarm alarm;
  alarm.Set(cq(), gpr_time_0(GPR_CLOCK_MONOTONIC), Tag(&barrier));
  barrier.reached.WaitForNotification();
}

void CompletionQueueThread::Shutdown() {
  if (!thread_.joinable()) return;
  cq_->Shutdown();
  thread_.join();
}

void CompletionQueueThread::Run() {
  if (idle_poll_ > std::chrono::microseconds::zero()) return RunPolling();
  void* tag = nullptr;
  bool ok = false;
  // Next returns false once the queue is shut down and drained.
  while (cq_->Next(&tag, &ok)) static_cast<Completion*>(tag)->OnComplete(ok);
}

void CompletionQueueThread::RunPolling() {
  using Clock = std::chrono::steady_clock;
  void* tag = nullptr;
  bool ok = false;
  // A deadline in the past: AsyncNext looks at the queue, then polls gRPC's
  // file descriptors once without blocking (epoll_wait with a zero timeout:
  // gRPC 1.51's epoll engine has one epoll set per process), and reports
  // TIMEOUT when nothing was ready. It polls only as the process's one
  // thread waiting in gRPC, as this one is in the broker; with other waiters
  // it still runs what they queue here.
  const gpr_timespec immediately = gpr_time_0(GPR_CLOCK_MONOTONIC);
  Clock::time_point poll_until = Clock::now() + idle_poll_;
  for (;;) {
    const grpc::CompletionQueue::NextStatus status = cq_->AsyncNext(&tag, &ok, immediately);
    if (status == grpc::CompletionQueue::SHUTDOWN) return;
    if (status == grpc::CompletionQueue::TIMEOUT) {
      if (Clock::now() < poll_until) continue;
      // Nothing within the budget: sleep until the next completion.
      if (!cq_->Next(&tag, &ok)) return;
    }
    static_cast<Completion*>(tag)->OnComplete(ok);
    poll_until = Clock::now() + idle_poll_;
  }
}

}  // namespace tracim::broker
