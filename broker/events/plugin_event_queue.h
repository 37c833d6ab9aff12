// One plugin's event queue in the broker: events waiting to be sent, then
// sent and awaiting acknowledgement, bounded in total. Forms EventBatches
// (already encoded, from each event's encoding), applies acks, and puts
// unacknowledged events back for redelivery.
//
// Thread-safety: none; the owning PluginSupervisor uses it on its strand only.
//
//   PluginEventQueue queue(/*capacity=*/10000);
//   if (!queue.Push(event)) CountDropped(event);
//   std::string batch;  // an encoded EventBatch
//   while (queue.NextBatch(/*max_events=*/256, absl::Now(), batch)) stream.Send(std::move(batch));
//   acknowledged += queue.Acknowledge(ack_ids);
//   queue.RequeueUnacked();  // the stream ended
#ifndef TRACIM_BROKER_EVENTS_PLUGIN_EVENT_QUEUE_H_
#define TRACIM_BROKER_EVENTS_PLUGIN_EVENT_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "broker/events/published_event.h"
#include "tracim/plugin/v1/events.pb.h"

namespace tracim::broker {

class PluginEventQueue {
 public:
  // Events are shared between the plugins' queues and never modified once
  // published; a redelivery is a marked copy.
  using EventPtr = std::shared_ptr<const PublishedEvent>;

  // `capacity`: events waiting plus unacknowledged, at most.
  explicit PluginEventQueue(size_t capacity) : capacity_(capacity) {}

  // Queues `event` behind the waiting ones. False, and nothing queued, when
  // `capacity` events are already waiting or unacknowledged.
  bool Push(EventPtr event);

  // Drops the waiting events for which `keep` is false (events queued before
  // the plugin's subscriptions were known).
  void FilterWaiting(const std::function<bool(const tracim::plugin::v1::Event&)>& keep);

  // Moves up to `max_events` (≥ 1) waiting events, oldest first, into
  // `batch` (cleared first), the encoding of an EventBatch, and counts them
  // as sent at `now`. False, with `batch` empty, when none is waiting.
  bool NextBatch(size_t max_events, absl::Time now, std::string& batch);

  // Applies an ack. Ids not awaiting acknowledgement (acked twice, never
  // sent, or sent on a stream since ended) are ignored. Returns how many
  // events were acknowledged.
  size_t Acknowledge(absl::Span<const uint64_t> ids);

  // Puts every unacknowledged event back in front of the waiting ones, in
  // event id order (= publication order), as a copy with redelivered = true.
  // Except on_plugins_loaded, which is discarded: it belongs to the launch
  // that ended, and the next launch gets its own once ready.
  void RequeueUnacked();

  // When the first unacknowledged event not yet reported late becomes late
  // (its send time + `timeout`); nullopt if there is none.
  std::optional<absl::Time> NextAckDeadline(absl::Duration timeout) const;

  struct LateEvents {
    // Newly late: sent at least `timeout` before `now`, not reported before.
    uint64_t count = 0;
    // The smallest id among them (0 if none).
    uint64_t oldest_id = 0;
  };
  // Reports the unacknowledged events that became late; each is reported
  // once per delivery.
  LateEvents MarkLate(absl::Time now, absl::Duration timeout);

  size_t waiting() const { return waiting_.size(); }
  size_t unacked() const { return unacked_.size(); }
  // Waiting plus unacknowledged: what counts against the capacity.
  size_t size() const { return waiting_.size() + unacked_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Unacked {
    EventPtr event;
    absl::Time sent;
    bool late = false;
  };

  const size_t capacity_;
  std::deque<EventPtr> waiting_;
  // By event id, i.e. publication order. A B-tree: far fewer allocations
  // than one node per event.
  absl::btree_map<uint64_t, Unacked> unacked_;
  // Entries of unacked_ with late = true.
  size_t late_ = 0;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_EVENTS_PLUGIN_EVENT_QUEUE_H_
