#include "broker/events/plugin_event_queue.h"

#include <algorithm>
#include <utility>

#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::broker {

namespace v1 = tracim::plugin::v1;

bool PluginEventQueue::Push(EventPtr event) {
  if (size() >= capacity_) return false;
  waiting_.push_back(std::move(event));
  return true;
}

void PluginEventQueue::FilterWaiting(const std::function<bool(const v1::Event&)>& keep) {
  std::erase_if(waiting_, [&keep](const EventPtr& e) { return !keep(e->event); });
}

bool PluginEventQueue::NextBatch(size_t max_events, absl::Time now, std::string& batch) {
  batch.clear();
  if (waiting_.empty()) return false;
  const size_t n = std::min(std::max<size_t>(max_events, 1), waiting_.size());
  size_t bytes = 0;
  for (size_t i = 0; i < n; ++i) bytes += waiting_[i]->wire.size() + 6;  // + tag and length
  batch.reserve(bytes);
  for (size_t i = 0; i < n; ++i) {
    EventPtr& event = waiting_.front();
    AppendToEventBatch(*event, batch);
    const uint64_t id = event->event.event_id();
    unacked_.insert_or_assign(id, Unacked{std::move(event), now});
    waiting_.pop_front();
  }
  return true;
}

size_t PluginEventQueue::Acknowledge(absl::Span<const uint64_t> ids) {
  size_t acknowledged = 0;
  for (uint64_t id : ids) {
    auto it = unacked_.find(id);
    if (it == unacked_.end()) continue;
    if (it->second.late) --late_;
    unacked_.erase(it);
    ++acknowledged;
  }
  return acknowledged;
}

void PluginEventQueue::RequeueUnacked() {
  for (auto it = unacked_.rbegin(); it != unacked_.rend(); ++it) {
    // on_plugins_loaded belongs to its launch: the next one gets its own.
    if (it->second.event->event.hook() == v1::kOnPluginsLoaded) continue;
    v1::Event copy = it->second.event->event;
    copy.set_redelivered(true);
    waiting_.push_front(MakePublishedEvent(std::move(copy)));
  }
  unacked_.clear();
  late_ = 0;
}

std::optional<absl::Time> PluginEventQueue::NextAckDeadline(absl::Duration timeout) const {
  // A plugin that stopped acknowledging keeps every entry late: answer at
  // once rather than walk them on each flush.
  if (late_ == unacked_.size()) return std::nullopt;
  std::optional<absl::Time> earliest;
  for (const auto& [id, u] : unacked_) {
    if (!u.late && (!earliest || u.sent < *earliest)) earliest = u.sent;
  }
  return *earliest + timeout;
}

PluginEventQueue::LateEvents PluginEventQueue::MarkLate(absl::Time now, absl::Duration timeout) {
  LateEvents late;
  for (auto& [id, u] : unacked_) {
    if (u.late || u.sent + timeout > now) continue;
    u.late = true;
    ++late_;
    if (late.count++ == 0) late.oldest_id = id;
  }
  return late;
}

}  // namespace tracim::broker
