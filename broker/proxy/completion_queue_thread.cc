#include "broker/proxy/completion_queue_thread.h"

#include <pthread.h>

namespace tracim::broker {

CompletionQueueThread::CompletionQueueThread(const std::string& name) : thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

CompletionQueueThread::~CompletionQueueThread() {
  cq_.Shutdown();
  thread_.join();
}

void CompletionQueueThread::Run() {
  void* tag = nullptr;
  bool ok = false;
  // Next returns false once the queue is shut down and drained.
  while (cq_.Next(&tag, &ok)) static_cast<Completion*>(tag)->OnComplete(ok);
}

}  // namespace tracim::broker
