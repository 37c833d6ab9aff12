// WorkQueue: a fixed set of threads running posted tasks in FIFO order (one
// thread = strictly sequential, as event delivery needs). Keeps plugin code
// off gRPC's reaction threads, which must never block.
//
// Thread-safety: Post and Stop may be called from any thread.
#ifndef TRACIM_SDK_CPP_SRC_WORK_QUEUE_H_
#define TRACIM_SDK_CPP_SRC_WORK_QUEUE_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tracim::plugin::internal {

class WorkQueue {
 public:
  explicit WorkQueue(int threads);
  // Stops without deadline unless Stop was called. After a Stop that returned
  // false, a detached thread may still use this object: end the process
  // instead of destroying it.
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Starts the threads. Tasks posted before wait until then (the SDK posts
  // work as soon as it serves, but runs it only once registered).
  void Start();

  // Queues `task`. Dropped (destroyed unrun) once Stop was called.
  void Post(std::function<void()> task);

  // Drops the tasks not started yet and waits until the running ones return
  // or `deadline` passes. True when every thread finished and was joined;
  // false when some task still runs at the deadline: its thread is detached
  // and the caller should end the process.
  bool Stop(absl::Time deadline);

 private:
  void Loop();
  bool HasWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllThreadsReturned() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int thread_count_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int running_threads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_WORK_QUEUE_H_
