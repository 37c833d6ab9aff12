// The states of a supervised plugin, and their names as operators see them
// (GET /api/plugins, Admin.ListPlugins, logs). Constants: thread-safe.
#ifndef TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_
#define TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_

namespace tracim::broker {

//   stopped ─Start→ starting ─spawned→ registering ─Register+connect-back→ ready
//   starting/registering/ready ─exit, timeout, refusal, hang→ backoff
//       (the process is killed first) ─delay→ starting again
//   … ─more than max_failures within the window→ failed (left stopped)
//   failed/disabled/stopped ─Enable or Restart→ starting
//   any ─Disable→ stopping → disabled;  any ─Stop→ stopping → stopped
enum class PluginState {
  kStopped,
  kStarting,
  kRegistering,
  kReady,
  kBackoff,
  kFailed,
  kDisabled,
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
    case PluginState::kBackoff:
      return "backoff";
    case PluginState::kFailed:
      return "failed";
    case PluginState::kDisabled:
      return "disabled";
    case PluginState::kStopping:
      return "stopping";
  }
  return "unknown";
}

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_STATE_H_
