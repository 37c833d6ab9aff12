// Tracim's entities and events as C++ plugins see them: the wire messages of
// proto/tracim/plugin/v1 under short names. Types only: thread-safety is that
// of protobuf messages (concurrent reads are safe, writes are not).
#ifndef TRACIM_PLUGIN_ENTITIES_H_
#define TRACIM_PLUGIN_ENTITIES_H_

#include <functional>

#include "tracim/plugin/v1/entities.pb.h"
#include "tracim/plugin/v1/events.pb.h"

namespace tracim::plugin {

// One hook call: event_id, event_type ("user.created"), hook
// ("on_user_created"), created, author, redelivered, and the entity fields
// that apply to the event type (see events.proto).
using Event = ::tracim::plugin::v1::Event;
using User = ::tracim::plugin::v1::User;
using Workspace = ::tracim::plugin::v1::Workspace;
using Membership = ::tracim::plugin::v1::Membership;
using Content = ::tracim::plugin::v1::Content;
using PluginsLoaded = ::tracim::plugin::v1::PluginsLoaded;

// A handler given to PluginManager::Subscribe. Runs on the SDK's event
// thread, one event at a time, in delivery order.
using EventHandler = std::function<void(const Event& event)>;

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_ENTITIES_H_
