#include "sdk_cpp/src/work_queue.h"

#include <utility>

namespace tracim::plugin::internal {

WorkQueue::WorkQueue(int threads) : thread_count_(threads) {}

WorkQueue::~WorkQueue() {
  bool stopped;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopping_;
  }
  if (!stopped) Stop(absl::InfiniteFuture());
}

void WorkQueue::Start() {
  absl::MutexLock lock(&mu_);
  if (stopping_ || !threads_.empty()) return;
  running_threads_ = thread_count_;
  for (int i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { Loop(); });
}

void WorkQueue::Post(std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      return;
    }
  }
  // Stopped: `task` is destroyed on return, outside the lock, as its
  // captures may call back into their owners.
}

bool WorkQueue::HasWorkOrStop() const { return stopping_ || !tasks_.empty(); }

bool WorkQueue::AllThreadsReturned() const { return running_threads_ == 0; }

void WorkQueue::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &WorkQueue::HasWorkOrStop));
      if (stopping_) {
        --running_threads_;
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

bool WorkQueue::Stop(absl::Time deadline) {
  std::deque<std::function<void()>> dropped;
  bool finished;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
    finished =
        mu_.AwaitWithDeadline(absl::Condition(this, &WorkQueue::AllThreadsReturned), deadline);
  }
  dropped.clear();
  for (std::thread& thread : threads_) {
    if (!thread.joinable()) continue;
    if (finished) {
      thread.join();
    } else {
      thread.detach();
    }
  }
  threads_.clear();
  return finished;
}

}  // namespace tracim::plugin::internal
