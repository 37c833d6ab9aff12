// ChangePublisher: the one place where the embedded backend's writers (the
// REST API, the host API) publish the events of their committed changes, so
// that events leave in commit order whichever API made the change.
// Thread-safe: writers on any thread take turns through mutex().
//
//   {
//     absl::MutexLock lock(&changes.mutex());
//     ASSIGN_OR_RETURN(User user, store.CreateUser(new_user));   // commits
//     changes.Publish(UserCreatedEvent(user));                    // still in turn
//   }
#ifndef TRACIM_BROKER_BACKEND_CHANGE_PUBLISHER_H_
#define TRACIM_BROKER_BACKEND_CHANGE_PUBLISHER_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tracim/plugin/v1/events.pb.h"

namespace tracim::broker {

// Receives one Event per committed change, event_id left 0 (the bus assigns
// ids). Called on a writer's thread, in commit order, one call at a time: it
// must not block (enqueue and return), throw, or call back into a writer.
using EventPublisher = std::function<void(tracim::plugin::v1::Event event)>;

class ChangePublisher {
 public:
  explicit ChangePublisher(EventPublisher publish) : publish_(std::move(publish)) {}
  ChangePublisher(const ChangePublisher&) = delete;
  ChangePublisher& operator=(const ChangePublisher&) = delete;

  // Held by a writer around one store mutation and the Publish calls of its
  // events. Keep the store's reads that decide the change inside too (e.g.
  // "did the role change?"), so that no other writer interleaves.
  absl::Mutex& mutex() ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // Publishes one event of the change just committed. Call with mutex() held.
  void Publish(tracim::plugin::v1::Event event) { publish_(std::move(event)); }

 private:
  const EventPublisher publish_;
  absl::Mutex mu_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_CHANGE_PUBLISHER_H_
