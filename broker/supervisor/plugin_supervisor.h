// Supervises one plugin: spawns it through tracim-plugin-runner, runs the
// registration handshake, connects back, delivers its events, and stops it
// (Shutdown RPC → grace → SIGTERM to the group → grace → SIGKILL).
//
// Threading: every state change happens on the supervisor's own strand of
// the broker's io_context. Public methods may be called from any thread
// (gRPC reactions included): they post to the strand and never block.
// Status() reads a snapshot under a mutex.
#ifndef TRACIM_BROKER_SUPERVISOR_PLUGIN_SUPERVISOR_H_
#define TRACIM_BROKER_SUPERVISOR_PLUGIN_SUPERVISOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "broker/discovery/plugin_manifest.h"
#include "broker/handshake/registration_validator.h"
#include "broker/process/process_launcher.h"
#include "broker/supervisor/plugin_state.h"
#include "tracim/plugin/v1/broker.pb.h"
#include "tracim/plugin/v1/events.pb.h"

namespace spdlog {
class logger;
}

namespace tracim::broker {

class PluginSupervisor {
 public:
  struct Options {
    // tracim-plugin-runner.
    std::filesystem::path runner;
    // Where the plugin serves (absolute, under 108 bytes).
    std::filesystem::path socket_path;
    // The broker's control socket (absolute).
    std::filesystem::path broker_socket;
    absl::Duration start_timeout = absl::Seconds(10);
    absl::Duration shutdown_grace = absl::Seconds(3);
    // plugin.<name>.<setting> keys, without the prefix.
    std::map<std::string, std::string> settings;
    // Environment inherited from the broker (already reduced to the
    // allow-list), "NAME=value".
    std::vector<std::string> base_env;
    // Events queued or awaiting acknowledgement, at most; more are dropped
    // and counted.
    size_t event_queue_capacity = 10000;
    // Events per EventBatch, at most.
    size_t max_batch = 256;
    // A delivered event not acknowledged within this is logged and counted.
    absl::Duration ack_timeout = absl::Seconds(30);
  };

  // Told about state changes that matter to the host. Called on the
  // supervisor's strand; must not block.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The launch became ready, or the plugin failed.
    virtual void OnPluginSettled(PluginSupervisor& plugin, PluginState state) = 0;
  };

  PluginSupervisor(boost::asio::io_context& io, ProcessLauncher& launcher, PluginManifest manifest,
                   Options options, Listener* listener);
  ~PluginSupervisor();

  PluginSupervisor(const PluginSupervisor&) = delete;
  PluginSupervisor& operator=(const PluginSupervisor&) = delete;

  const std::string& name() const { return manifest_.name; }

  // Launches the plugin (a no-op unless stopped or failed).
  void Start();
  // Stops the plugin; `done` runs on the strand once no process is left.
  // Idempotent: every caller's `done` runs.
  void Stop(std::string reason, std::function<void()> done);

  // Register from the plugin (Registrar service). `secret` is the metadata
  // value ("" if absent). `reply` is called exactly once, from the strand.
  void HandleRegister(
      std::string secret, tracim::plugin::v1::RegisterRequest request,
      std::function<void(absl::StatusOr<tracim::plugin::v1::RegisterResponse>)> reply);

  // Queues an event for the plugin if it subscribed to the event's hook.
  void Deliver(std::shared_ptr<const tracim::plugin::v1::Event> event);

  // Operator view (Admin.ListPlugins).
  tracim::plugin::v1::PluginStatus Status() const;

  // Whether `secret` is the current launch's secret (constant time).
  bool IsCurrentSecret(const std::string& secret) const;

  // Asynchronous gRPC calls to the plugin still outstanding. The broker
  // keeps its io_context running until this is zero for every plugin, since
  // their completions post to it.
  int PendingCalls() const;

 private:
  struct Launch;  // one process launch: process, secret, channel, stream

  void DoStart();
  void DoStop(std::string reason, std::function<void()> done);
  void DoRegister(std::string secret, tracim::plugin::v1::RegisterRequest request,
                  std::function<void(absl::StatusOr<tracim::plugin::v1::RegisterResponse>)> reply);
  void ConnectBack(uint64_t launch_id);
  void OnConnectBack(uint64_t launch_id, absl::Status status);
  void OnStartTimeout(uint64_t launch_id);
  void OnExit(uint64_t launch_id, ExitStatus status);
  void OnLine(uint64_t launch_id, OutputStream stream, std::string line);
  // Marks the plugin failed with `reason` and stops its process, if any.
  void Fail(std::string reason);
  // Escalating stop of the current process: Shutdown RPC (if `polite`) →
  // grace → SIGTERM → grace → SIGKILL.
  void Terminate(bool polite);
  void SetState(PluginState state);
  void PublishStatus();

  // Events.
  void DoDeliver(std::shared_ptr<const tracim::plugin::v1::Event> event);
  void OpenEventStream();
  void FlushEvents();
  void OnAck(uint64_t launch_id, std::vector<uint64_t> ids);
  void OnEventStreamDone(uint64_t launch_id, std::string error);
  // Moves every sent-but-unacknowledged event back to the front of the queue.
  void RequeueUnacked();
  // Arms ack_timer_ for the oldest delivery not yet reported as late.
  void ArmAckTimer();
  void OnAckTimer();

  std::vector<std::string> BuildEnvironment(const Launch& launch) const;
  std::vector<std::string> BuildRunnerArgv() const;

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  ProcessLauncher& launcher_;
  const PluginManifest manifest_;
  const Options options_;
  Listener* const listener_;
  std::shared_ptr<spdlog::logger> log_;

  // Strand only, below.
  PluginState state_ = PluginState::kStopped;
  uint64_t launch_count_ = 0;
  std::unique_ptr<Launch> launch_;
  std::optional<Registration> registration_;
  boost::asio::steady_timer start_timer_;
  boost::asio::steady_timer stop_timer_;
  std::vector<std::function<void()>> stop_waiters_;
  std::string last_exit_reason_;
  // Why the latest Register of this launch was refused, for the exit reason.
  std::string refusal_;
  std::string stop_reason_;
  // Hooks of the latest registration (kept across launches).
  std::set<std::string> subscribed_;
  absl::Time launched_at_;
  absl::Time ready_at_;
  std::deque<std::shared_ptr<const tracim::plugin::v1::Event>> pending_;
  // Sent and not acknowledged yet, by event id (= publication order).
  struct Unacked {
    std::shared_ptr<const tracim::plugin::v1::Event> event;
    absl::Time sent;
    bool timed_out = false;
  };
  std::map<uint64_t, Unacked> unacked_;
  boost::asio::steady_timer ack_timer_;
  bool ack_timer_armed_ = false;
  uint64_t events_timed_out_ = 0;
  uint64_t events_acknowledged_ = 0;
  uint64_t events_dropped_ = 0;
  uint32_t restarts_ = 0;
  std::atomic<int> pending_calls_{0};

  mutable absl::Mutex status_mu_;
  tracim::plugin::v1::PluginStatus status_ ABSL_GUARDED_BY(status_mu_);
  std::string secret_ ABSL_GUARDED_BY(status_mu_);
  absl::Time ready_since_ ABSL_GUARDED_BY(status_mu_) = absl::InfinitePast();
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_SUPERVISOR_H_
