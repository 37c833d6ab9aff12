// Supervises one plugin: spawns it through tracim-plugin-runner, runs the
// registration handshake, connects back, delivers its events, checks its
// health, restarts it when it fails (RestartPolicy), and stops it
// (Shutdown RPC → grace → SIGTERM to the group → grace → SIGKILL).
//
// Threading: every state change happens on the supervisor's own strand of
// the broker's io_context. Public methods may be called from any thread
// (the gRPC queue thread included): they post to the strand and never block.
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
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "broker/common/completion_queue_thread.h"
#include "broker/discovery/plugin_manifest.h"
#include "broker/events/plugin_event_queue.h"
#include "broker/events/published_event.h"
#include "broker/handshake/registration_validator.h"
#include "broker/process/process_launcher.h"
#include "broker/supervisor/plugin_log.h"
#include "broker/supervisor/plugin_state.h"
#include "broker/supervisor/restart_policy.h"
#include "tracim/plugin/v1/broker.pb.h"
#include "tracim/plugin/v1/events.pb.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

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
    // A delivered event not acknowledged within this is logged, counted,
    // and counts as a failure: the plugin is killed and restarted.
    absl::Duration ack_timeout = absl::Seconds(30);
    RestartPolicy restart;
    // grpc.health.v1 Check every health_interval with a deadline of
    // health_timeout; health_failures failures in a row count as a failure.
    absl::Duration health_interval = absl::Seconds(5);
    absl::Duration health_timeout = absl::Seconds(2);
    int health_failures = 3;
    // broker.plugin_log_rate / broker.plugin_log_burst: the plugin's output
    // lines reaching the log, at most (PluginLog).
    uint32_t output_log_rate = 200;
    uint32_t output_log_burst = 1000;
    // The completion queue every gRPC call to the plugin (health checks,
    // the event stream, Shutdown) runs on; required, and must outlive this
    // object's calls (PendingCalls() == 0).
    CompletionQueueThread* calls = nullptr;
  };

  // Told about state changes that matter to the host. Called on the
  // supervisor's strand; must not block.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The launch became ready (kReady), or it failed and will be restarted
    // (kBackoff), or the plugin gave up (kFailed).
    virtual void OnPluginSettled(PluginSupervisor& plugin, PluginState state) = 0;
  };

  PluginSupervisor(boost::asio::io_context& io, ProcessLauncher& launcher, PluginManifest manifest,
                   Options options, Listener* listener);
  ~PluginSupervisor();

  PluginSupervisor(const PluginSupervisor&) = delete;
  PluginSupervisor& operator=(const PluginSupervisor&) = delete;

  const std::string& name() const { return manifest_.name; }

  // Launches the plugin (a no-op unless stopped, failed or disabled).
  void Start();
  // Stops the plugin; `done` runs on the strand once no process is left.
  // Idempotent: every caller's `done` runs.
  void Stop(std::string reason, std::function<void()> done);

  // Operator actions (Admin service, /api/plugins). `done` runs on the
  // strand once the action has begun, with the status as of then.
  enum class Action { kRestart, kEnable, kDisable };
  // Restart: stops the running launch (if any) and launches again, with the
  // failure count reset. Enable: launches a failed, disabled or stopped
  // plugin with the failure count reset (a no-op otherwise). Disable: stops
  // the plugin and keeps it stopped (state "disabled") until enabled.
  void Act(Action action, std::function<void(tracim::plugin::v1::PluginStatus)> done);

  // Register from the plugin (Registrar service). `secret` is the metadata
  // value ("" if absent). `reply` is called exactly once, from the strand.
  void HandleRegister(
      std::string secret, tracim::plugin::v1::RegisterRequest request,
      std::function<void(absl::StatusOr<tracim::plugin::v1::RegisterResponse>)> reply);

  // Events in publication order, shared by every plugin's supervisor.
  using EventList = std::vector<std::shared_ptr<const PublishedEvent>>;
  // Queues, in order, the events of `events` whose hook the plugin
  // subscribed to: one strand hop for the whole list. `queued`, if set,
  // runs on the strand once they are queued (or dropped).
  void Deliver(std::shared_ptr<const EventList> events, std::function<void()> queued = nullptr);

  // Operator view (Admin.ListPlugins).
  tracim::plugin::v1::PluginStatus Status() const;

  // Whether `secret` is the current launch's secret (constant time). False
  // once that launch's process has exited.
  bool IsCurrentSecret(const std::string& secret) const;

  // What the route proxy needs to forward one request, as of now.
  struct RouteTarget {
    PluginState state = PluginState::kStopped;
    // Routes of the latest registration (kept while the plugin restarts, so
    // that its paths answer 503 rather than 404); null before the first.
    std::shared_ptr<const std::vector<RegisteredRoute>> routes;
    // Set only while ready: the launch to call, with its secret.
    std::shared_ptr<tracim::plugin::v1::Plugin::Stub> stub;
    std::string secret;
    uint64_t launch_id = 0;
  };
  RouteTarget Target() const;

  // Requests in flight through the route proxy (PluginStatus).
  void RequestStarted() { requests_in_flight_++; }
  void RequestFinished() { requests_in_flight_--; }

  // Asynchronous gRPC calls to the plugin still outstanding. The broker
  // keeps its io_context running until this is zero for every plugin, since
  // their completions post to it.
  int PendingCalls() const;

 private:
  struct Launch;  // one process launch: process, secret, channel, stream

  void DoStart();
  // Spawns a new launch (state starting → registering).
  void SpawnLaunch();
  void DoStop(std::string reason, std::function<void()> done);
  void DoAct(Action action, std::function<void(tracim::plugin::v1::PluginStatus)> done);
  // Applies the restart policy after a failure: backoff (restart later) or
  // failed (give up). The process, if any, is being terminated.
  void ScheduleRestart();
  void OnRestartTimer();
  // Stops every timer of a launch (start, health).
  void CancelLaunchTimers();
  // Health checks of a ready launch.
  void ArmHealthTimer();
  void OnHealthTimer(uint64_t launch_id);
  void OnHealthResult(uint64_t launch_id, absl::Status status);
  // What a stop leads to once the process is gone.
  enum class AfterStop { kStopped, kDisabled, kRestart };
  void FinishStop();
  void DoRegister(std::string secret, tracim::plugin::v1::RegisterRequest request,
                  std::function<void(absl::StatusOr<tracim::plugin::v1::RegisterResponse>)> reply);
  void ConnectBack(uint64_t launch_id);
  // One grpc.health.v1 Check of the current launch; `on_result` runs on the
  // strand (OK only for SERVING).
  void CheckHealth(absl::Duration timeout, bool wait_for_ready,
                   std::function<void(absl::Status)> on_result);
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
  void DoDeliver(const EventList& events);
  void OpenEventStream();
  void FlushEvents();
  void OnAck(uint64_t launch_id, std::vector<uint64_t> ids);
  void OnEventStreamDone(uint64_t launch_id, std::string error);
  // Moves every sent-but-unacknowledged event back to the front of the queue.
  void RequeueUnacked();
  // Arms ack_timer_ for the oldest delivery not yet reported as late.
  void ArmAckTimer();
  void OnAckTimer();
  // Copies the event counters into status_: what the event path updates,
  // instead of the whole PublishStatus() on every event.
  void PublishEventCounters();

  std::vector<std::string> BuildEnvironment(const Launch& launch) const;
  std::vector<std::string> BuildRunnerArgv() const;

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  ProcessLauncher& launcher_;
  const PluginManifest manifest_;
  const Options options_;
  Listener* const listener_;
  std::shared_ptr<spdlog::logger> log_;
  // Shared with the launcher's on_line callbacks (they capture no `this`).
  std::shared_ptr<PluginLog> output_log_;
  boost::asio::steady_timer output_log_timer_;
  bool output_log_timer_armed_ = false;
  void ArmOutputLogTimer();

  // Strand only, below.
  PluginState state_ = PluginState::kStopped;
  uint64_t launch_count_ = 0;
  std::unique_ptr<Launch> launch_;
  std::optional<Registration> registration_;
  boost::asio::steady_timer start_timer_;
  boost::asio::steady_timer stop_timer_;
  boost::asio::steady_timer restart_timer_;
  boost::asio::steady_timer health_timer_;
  // Between a broken event stream and the failure it causes.
  boost::asio::steady_timer stream_grace_timer_;
  RestartTracker restarts_tracker_;
  // Delay before the next launch while in backoff.
  absl::Duration restart_delay_ = absl::ZeroDuration();
  bool restart_timer_armed_ = false;
  int health_failures_in_row_ = 0;
  AfterStop after_stop_ = AfterStop::kStopped;
  absl::BitGen bitgen_;
  std::vector<std::function<void()>> stop_waiters_;
  std::string last_exit_reason_;
  // Why the latest Register of this launch was refused, for the exit reason.
  std::string refusal_;
  std::string stop_reason_;
  // Hooks of the latest registration (kept across launches).
  std::set<std::string> subscribed_;
  absl::Time launched_at_;
  absl::Time ready_at_;
  // Waiting to be sent, then awaiting acknowledgement.
  PluginEventQueue event_queue_{options_.event_queue_capacity};
  boost::asio::steady_timer ack_timer_;
  bool ack_timer_armed_ = false;
  uint64_t events_timed_out_ = 0;
  uint64_t events_acknowledged_ = 0;
  uint64_t events_dropped_ = 0;
  uint32_t restarts_ = 0;
  std::atomic<int> pending_calls_{0};
  std::atomic<int64_t> requests_in_flight_{0};

  mutable absl::Mutex status_mu_;
  tracim::plugin::v1::PluginStatus status_ ABSL_GUARDED_BY(status_mu_);
  std::string secret_ ABSL_GUARDED_BY(status_mu_);
  absl::Time ready_since_ ABSL_GUARDED_BY(status_mu_) = absl::InfinitePast();
  RouteTarget target_ ABSL_GUARDED_BY(status_mu_);
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_SUPERVISOR_H_
