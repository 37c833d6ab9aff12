// ElasticThreadPool: runs each posted task on a thread of its own, reusing
// idle threads and creating new ones on demand up to a maximum; past it,
// tasks wait in FIFO order for a thread to free up. For work that blocks
// for long (a streaming route handler waits on a slow client for the whole
// transfer), which a small fixed pool would let starve everything else.
// Threads are kept for reuse until Stop.
//
// Thread-safety: Post, Stop and threads() may be called from any thread.
#ifndef TRACIM_SDK_CPP_SRC_ELASTIC_THREAD_POOL_H_
#define TRACIM_SDK_CPP_SRC_ELASTIC_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tracim::plugin::internal {

class ElasticThreadPool {
 public:
  // `max_threads` >= 1.
  explicit ElasticThreadPool(int max_threads);
  // Stops without deadline unless Stop was called. After a Stop that returned
  // false, a detached thread may still use this object: end the process
  // instead of destroying it.
  ~ElasticThreadPool();
  ElasticThreadPool(const ElasticThreadPool&) = delete;
  ElasticThreadPool& operator=(const ElasticThreadPool&) = delete;

  // Runs `task` as soon as a thread is free (an idle one, a new one, or the
  // first to finish its task). False, with `task` destroyed unrun, once Stop
  // was called, or when no thread exists and none can be created (the
  // process hit a thread or address-space limit).
  bool Post(std::function<void()> task);

  // Drops the tasks not started yet and waits until the running ones return
  // or `deadline` passes. True when every thread finished and was joined;
  // false when some task still runs at the deadline: its thread is detached.
  bool Stop(absl::Time deadline);

  // Threads created so far (running or idle).
  int threads() const;
  // Threads waiting for a task.
  int idle_threads() const;

 private:
  void Loop();
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllThreadsReturned() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  mutable absl::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  // Threads waiting for a task, and threads whose Loop has not returned.
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  int running_threads_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_ELASTIC_THREAD_POOL_H_
