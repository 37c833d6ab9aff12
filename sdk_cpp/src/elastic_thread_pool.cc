#include "sdk_cpp/src/elastic_thread_pool.h"

#include <system_error>
#include <utility>

namespace tracim::plugin::internal {

ElasticThreadPool::ElasticThreadPool(int max_threads) : max_threads_(max_threads) {}

ElasticThreadPool::~ElasticThreadPool() {
  bool stopped;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopping_;
  }
  if (!stopped) Stop(absl::InfiniteFuture());
}

bool ElasticThreadPool::Post(std::function<void()> task) {
  // A refused task is destroyed after the lock is released (declared first):
  // its captures may call back into their owners.
  std::function<void()> refused;
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    refused = std::move(task);
    return false;
  }
  tasks_.push_back(std::move(task));
  // Enough idle threads for every queued task: one of them takes it.
  if (tasks_.size() <= idle_ || static_cast<int>(threads_.size()) >= max_threads_) return true;
  try {
    threads_.emplace_back([this] { Loop(); });
    ++running_threads_;
  } catch (const std::system_error&) {
    // Out of threads or address space: the running threads take the task
    // in turn; with none, refuse it.
    if (threads_.empty()) {
      refused = std::move(tasks_.back());
      tasks_.pop_back();
      return false;
    }
  }
  return true;
}

bool ElasticThreadPool::HasWorkOrStop() const { return stopping_ || !tasks_.empty(); }

bool ElasticThreadPool::AllThreadsReturned() const { return running_threads_ == 0; }

void ElasticThreadPool::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      ++idle_;
      mu_.Await(absl::Condition(this, &ElasticThreadPool::HasWorkOrStop));
      --idle_;
      if (stopping_) {
        --running_threads_;
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
    task = nullptr;  // captures released before waiting for the next task
  }
}

bool ElasticThreadPool::Stop(absl::Time deadline) {
  std::deque<std::function<void()>> dropped;
  std::vector<std::thread> threads;
  bool finished;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
    finished = mu_.AwaitWithDeadline(absl::Condition(this, &ElasticThreadPool::AllThreadsReturned),
                                     deadline);
    threads.swap(threads_);
  }
  dropped.clear();
  for (std::thread& thread : threads) {
    if (!thread.joinable()) continue;
    if (finished) {
      thread.join();
    } else {
      thread.detach();
    }
  }
  return finished;
}

int ElasticThreadPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

int ElasticThreadPool::idle_threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(idle_);
}

}  // namespace tracim::plugin::internal
