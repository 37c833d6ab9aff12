#include "broker/common/completion_queue_thread.h"

#include <grpcpp/alarm.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>

#include "absl/synchronization/notification.h"

namespace tracim::broker {

CompletionQueueThread::CompletionQueueThread(const std::string& name)
    : CompletionQueueThread(name, std::make_unique<grpc::CompletionQueue>(), nullptr) {}

CompletionQueueThread::CompletionQueueThread(const std::string& name,
                                             std::unique_ptr<grpc::CompletionQueue> cq,
                                             grpc::ServerCompletionQueue* server_cq)
    : cq_(std::move(cq)), server_cq_(server_cq), thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

std::unique_ptr<CompletionQueueThread> CompletionQueueThread::ForServer(
    const std::string& name, grpc::ServerBuilder& builder) {
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  grpc::ServerCompletionQueue* server_cq = cq.get();
  return std::unique_ptr<CompletionQueueThread>(
      new CompletionQueueThread(name, std::move(cq), server_cq));
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
  void* tag = nullptr;
  bool ok = false;
  // Next returns false once the queue is shut down and drained.
  while (cq_->Next(&tag, &ok)) static_cast<Completion*>(tag)->OnComplete(ok);
}

}  // namespace tracim::broker
