// The states of a supervised plugin, and their names as operators see them
// (GET /api/plugins, Admin.ListPlugins, logs). Constants: thread-safe.
#ifndef TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_
#define TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_

namespace tracim::broker {

//   stopped ─Start→ starting ─spawned→ registering ─Register+connect-back→ ready
//   registering/starting ─exit, timeout, refused→ failed
//   ready ─exit→ failed (restart policy: supervision issue)
//   any ─Stop→ stopping → stopped
enum class PluginState {
  kStopped,
  kStarting,
  kRegistering,
  kReady,
  kFailed,
  kStopping,
};

inline const char* PluginStateName(PluginState s) {
  switch (s) {
    case PluginState::kStopped:
      return "stopped";
    case PluginState::kStarting:
      return "starting";
    case PluginState::kRegistering:
      return "registering";
    case PluginState::kReady:
      return "ready";
    case PluginState::kFailed:
      return "failed";
    case PluginState::kStopping:
      return "stopping";
  }
  return "unknown";
}

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_
