// An event as the broker delivers it: the message, and its protobuf encoding
// made once when published, so that each plugin's EventBatch is assembled by
// appending bytes instead of copying and re-encoding the message per plugin.
//
// Thread-safety: immutable once made; shared between the plugins' queues
// (and their strands) through shared_ptr<const PublishedEvent>.
#ifndef TRACIM_BROKER_EVENTS_PUBLISHED_EVENT_H_
#define TRACIM_BROKER_EVENTS_PUBLISHED_EVENT_H_

#include <memory>
#include <string>

#include "tracim/plugin/v1/events.pb.h"

namespace tracim::broker {

struct PublishedEvent {
  tracim::plugin::v1::Event event;
  // event.SerializeAsString().
  std::string wire;
};

// Encodes `event` (moved in, not copied).
std::shared_ptr<const PublishedEvent> MakePublishedEvent(tracim::plugin::v1::Event event);

// Appends `event` to `batch`, the encoding of an EventBatch: the bytes are
// exactly those of EventBatch::SerializeAsString() with the event added last.
void AppendToEventBatch(const PublishedEvent& event, std::string& batch);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_EVENTS_PUBLISHED_EVENT_H_
