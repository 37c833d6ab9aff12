#include "broker/supervisor/plugin_supervisor.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <utility>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/asio/post.hpp"
#include "broker/common/grpc_status.h"
#include "broker/common/queue_rpc.h"
#include "broker/common/random.h"
#include "broker/events/plugin_event_stream.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "plugin_runner/runner_options.h"
#include "spdlog/spdlog.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::broker {

namespace asio = boost::asio;
namespace v1 = tracim::plugin::v1;

namespace {

std::string Millis(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), " ms"); }

// What a runner exit code means, when the plugin never got to run.
std::string RunnerExitNote(const ExitStatus& s) {
  if (!s.exited) return "";
  switch (s.code) {
    case runner::kExitNotFound:
      return " (command not found)";
    case runner::kExitNotExecutable:
      return " (command not executable)";
    case runner::kExitSetupFailed:
      return " (plugin runner could not apply the manifest's settings)";
    case runner::kExitParentGone:
      return " (broker went away during the spawn)";
    case runner::kExitLibraryFailed:
      return " (plugin library could not be loaded)";
    default:
      return "";
  }
}

}  // namespace

// One process launch of the plugin.
struct PluginSupervisor::Launch {
  uint64_t id = 0;
  std::string secret;
  std::unique_ptr<ChildProcess> process;
  int pid = 0;
  bool registered = false;
  bool connected = false;
  bool terminating = false;
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<v1::Plugin::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
  std::shared_ptr<PluginEventStream> events;
};

PluginSupervisor::PluginSupervisor(asio::io_context& io, ProcessLauncher& launcher,
                                   PluginManifest manifest, Options options, Listener* listener)
    : io_(io),
      strand_(asio::make_strand(io)),
      launcher_(launcher),
      manifest_(std::move(manifest)),
      options_(std::move(options)),
      listener_(listener),
      log_(spdlog::default_logger()),
      output_log_(std::make_shared<PluginLog>(
          manifest_.name,
          PluginLog::Options{.rate = options_.output_log_rate, .burst = options_.output_log_burst},
          log_)),
      output_log_timer_(strand_),
      start_timer_(strand_),
      stop_timer_(strand_),
      restart_timer_(strand_),
      health_timer_(strand_),
      stream_grace_timer_(strand_),
      restarts_tracker_(options_.restart),
      ack_timer_(strand_) {
  absl::MutexLock lock(&status_mu_);
  status_.set_name(manifest_.name);
  status_.set_version(manifest_.version);
  status_.set_state(PluginStateName(state_));
}

PluginSupervisor::~PluginSupervisor() = default;

void PluginSupervisor::Start() {
  asio::post(strand_, [this] { DoStart(); });
}

void PluginSupervisor::Stop(std::string reason, std::function<void()> done) {
  asio::post(strand_, [this, reason = std::move(reason), done = std::move(done)]() mutable {
    after_stop_ = AfterStop::kStopped;
    DoStop(std::move(reason), std::move(done));
  });
}

void PluginSupervisor::Act(Action action, std::function<void(v1::PluginStatus)> done) {
  asio::post(strand_,
             [this, action, done = std::move(done)]() mutable { DoAct(action, std::move(done)); });
}

void PluginSupervisor::HandleRegister(
    std::string secret, v1::RegisterRequest request,
    std::function<void(absl::StatusOr<v1::RegisterResponse>)> reply) {
  asio::post(strand_, [this, secret = std::move(secret), request = std::move(request),
                       reply = std::move(reply)]() mutable {
    DoRegister(std::move(secret), std::move(request), std::move(reply));
  });
}

void PluginSupervisor::Deliver(std::shared_ptr<const EventList> events,
                               std::function<void()> queued) {
  asio::post(strand_, [this, events = std::move(events), queued = std::move(queued)] {
    DoDeliver(*events);
    if (queued) queued();
  });
}

bool PluginSupervisor::IsCurrentSecret(const std::string& secret) const {
  absl::MutexLock lock(&status_mu_);
  return !secret_.empty() && ConstantTimeEquals(secret, secret_);
}

int PluginSupervisor::PendingCalls() const { return pending_calls_.load(); }

v1::PluginStatus PluginSupervisor::Status() const {
  absl::MutexLock lock(&status_mu_);
  v1::PluginStatus s = status_;
  if (s.state() == PluginStateName(PluginState::kReady) && ready_since_ != absl::InfinitePast()) {
    s.set_uptime_ms(absl::ToInt64Milliseconds(absl::Now() - ready_since_));
  }
  s.set_output_lines_dropped(output_log_->lines_dropped());
  s.set_requests_in_flight(static_cast<uint64_t>(std::max<int64_t>(requests_in_flight_.load(), 0)));
  return s;
}

PluginSupervisor::RouteTarget PluginSupervisor::Target() const {
  absl::MutexLock lock(&status_mu_);
  return target_;
}

// --- Launch -----------------------------------------------------------------

std::vector<std::string> PluginSupervisor::BuildEnvironment(const Launch& launch) const {
  std::vector<std::string> env = options_.base_env;
  // Interpreted plugins: every printed line reaches the log at once.
  env.push_back("PYTHONUNBUFFERED=1");
  for (const auto& [k, v] : manifest_.env) env.push_back(absl::StrCat(k, "=", v));
  env.push_back(absl::StrCat(v1::kEnvPluginName, "=", manifest_.name));
  env.push_back(absl::StrCat(v1::kEnvPluginSecret, "=", launch.secret));
  env.push_back(absl::StrCat(v1::kEnvPluginSocket, "=", options_.socket_path.string()));
  env.push_back(absl::StrCat(v1::kEnvBrokerSocket, "=", options_.broker_socket.string()));
  env.push_back(
      absl::StrCat(v1::kEnvProtocolVersions, "=", absl::StrJoin(kSupportedProtocolVersions, ",")));
  env.push_back(absl::StrCat(v1::kEnvPluginLaunch, "=", launch.id));
  return env;
}

std::vector<std::string> PluginSupervisor::BuildRunnerArgv() const {
  runner::RunnerOptions o;
  o.parent_pid = getpid();
  o.dir = manifest_.folder.string();
  o.rlimit_as = manifest_.limits.memory_bytes;
  o.rlimit_cpu = manifest_.limits.cpu_seconds;
  o.rlimit_nofile = manifest_.limits.open_files;
  o.rlimit_nproc = manifest_.limits.processes;
  if (geteuid() == 0) {
    o.user = manifest_.user;
    o.group = manifest_.group;
  }
  if (!manifest_.library.empty()) {
    o.library = manifest_.library.string();
  } else {
    o.command = manifest_.command;
  }
  std::vector<std::string> argv = {options_.runner.string()};
  for (auto& a : runner::FormatRunnerOptions(o)) argv.push_back(std::move(a));
  return argv;
}

void PluginSupervisor::DoStart() {
  if (state_ != PluginState::kStopped && state_ != PluginState::kFailed &&
      state_ != PluginState::kDisabled) {
    return;
  }
  if (launch_ != nullptr) return;  // a failed launch is still being stopped
  SpawnLaunch();
}

void PluginSupervisor::SpawnLaunch() {
  auto launch = std::make_unique<Launch>();
  launch->id = ++launch_count_;
  launch->secret = RandomHex(32);
  {
    absl::MutexLock lock(&status_mu_);
    secret_ = launch->secret;
  }
  registration_.reset();
  refusal_.clear();
  SetState(PluginState::kStarting);
  // A stale socket from a previous launch must not answer the connect-back.
  ::unlink(options_.socket_path.c_str());

  LaunchSpec spec;
  spec.executable = options_.runner.string();
  spec.argv = BuildRunnerArgv();
  spec.env = BuildEnvironment(*launch);
  spec.cwd = manifest_.folder;

  // Output lines are logged straight from the launcher's strand (PluginLog
  // is thread-safe, and rate-limits before copying); the pid is filled in
  // once known.
  auto pid_cell = std::make_shared<std::atomic<int>>(0);
  ChildCallbacks callbacks;
  callbacks.on_line = [output = output_log_, pid_cell](OutputStream stream,
                                                       absl::string_view line) {
    output->Line(stream, line, pid_cell->load());
  };
  uint64_t id = launch->id;
  callbacks.on_exit = [this, id](ExitStatus status) {
    asio::post(strand_, [this, id, status] { OnExit(id, status); });
  };
  launched_at_ = absl::Now();
  auto child = launcher_.Launch(spec, std::move(callbacks));
  if (!child.ok()) {
    Fail(absl::StrCat("cannot start the plugin runner: ", child.status().message()));
    return;
  }
  launch->pid = (*child)->pid();
  pid_cell->store(launch->pid);
  launch->process = std::move(*child);
  launch_ = std::move(launch);
  ArmOutputLogTimer();
  SetState(PluginState::kRegistering);
  log_->info("plugin '{}' launched: pid {}, launch {}", manifest_.name, launch_->pid, id);

  absl::Duration timeout = manifest_.start_timeout.value_or(options_.start_timeout);
  start_timer_.expires_after(absl::ToChronoNanoseconds(timeout));
  start_timer_.async_wait([this, id](const boost::system::error_code& ec) {
    if (!ec) OnStartTimeout(id);
  });
}

void PluginSupervisor::OnStartTimeout(uint64_t launch_id) {
  if (!launch_ || launch_->id != launch_id || state_ != PluginState::kRegistering) return;
  // Once registered, the connect-back's own deadline decides.
  if (launch_->registered) return;
  absl::Duration timeout = manifest_.start_timeout.value_or(options_.start_timeout);
  std::string reason =
      absl::StrCat("did not register within the start timeout (", Millis(timeout), ")");
  if (!refusal_.empty()) absl::StrAppend(&reason, "; Register was refused: ", refusal_);
  Fail(std::move(reason));
}

// --- Handshake --------------------------------------------------------------

void PluginSupervisor::DoRegister(std::string secret, v1::RegisterRequest request,
                                  std::function<void(absl::StatusOr<v1::RegisterResponse>)> reply) {
  // The secret first: a caller without it learns nothing about the plugin
  // (not even its state).
  if (!launch_ || secret.empty() || !ConstantTimeEquals(secret, launch_->secret)) {
    std::string reason = secret.empty()
                             ? absl::StrCat("missing ", v1::kSecretMetadataKey, " metadata")
                             : "wrong secret";
    log_->warn("plugin '{}': Register refused: {}", manifest_.name, reason);
    reply(absl::UnauthenticatedError(absl::StrCat(reason, " for plugin '", manifest_.name, "'")));
    // Explains the failure of a launch still waiting for its registration.
    if (state_ == PluginState::kRegistering) refusal_ = std::move(reason);
    return;
  }
  if (state_ != PluginState::kRegistering) {
    reply(absl::FailedPreconditionError(absl::StrCat("plugin '", manifest_.name,
                                                     "' is not expecting a registration (state ",
                                                     PluginStateName(state_), ")")));
    return;
  }
  if (launch_->registered) {
    reply(absl::FailedPreconditionError(absl::StrCat(
        "plugin '", manifest_.name, "' is already registered (launch ", launch_->id, ")")));
    return;
  }
  auto registration = ValidateRegistration(request, manifest_.name);
  if (!registration.ok()) {
    reply(registration.status());
    Fail(absl::StrCat("registration refused: ", registration.status().message()));
    return;
  }
  launch_->registered = true;
  log_->debug("plugin '{}': Register accepted {:.1f} ms after the spawn", manifest_.name,
              absl::ToDoubleMilliseconds(absl::Now() - launched_at_));
  registration_ = std::move(*registration);
  subscribed_ = std::set<std::string>(registration_->hooks.begin(), registration_->hooks.end());

  v1::RegisterResponse response;
  response.set_protocol_version(registration_->protocol_version);
  response.set_broker_version(TRACIM_BROKER_VERSION);
  for (const auto& [k, v] : options_.settings) (*response.mutable_settings())[k] = v;
  reply(std::move(response));
  PublishStatus();
  ConnectBack(launch_->id);
}

void PluginSupervisor::ConnectBack(uint64_t launch_id) {
  grpc::ChannelArguments args;
  // Plugins are local: reconnect fast after a restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // Calls to a plugin are never retried by gRPC (the broker decides what a
  // failure means), and nobody reads channelz here: both cost CPU per call
  // (about 3 % of the broker's per-request CPU on the route proxy's path).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
  launch_->channel = grpc::CreateCustomChannel("unix:" + options_.socket_path.string(),
                                               grpc::InsecureChannelCredentials(), args);
  launch_->stub = v1::Plugin::NewStub(launch_->channel);
  launch_->health = grpc::health::v1::Health::NewStub(launch_->channel);

  // The whole launch must fit in the start timeout; allow at least 100 ms.
  absl::Duration timeout = manifest_.start_timeout.value_or(options_.start_timeout);
  absl::Duration left = std::max(timeout - (absl::Now() - launched_at_), absl::Milliseconds(100));
  CheckHealth(left, /*wait_for_ready=*/true,
              [this, launch_id](absl::Status result) { OnConnectBack(launch_id, result); });
}

void PluginSupervisor::CheckHealth(absl::Duration timeout, bool wait_for_ready,
                                   std::function<void(absl::Status)> on_result) {
  using grpc::health::v1::HealthCheckResponse;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(v1::kPluginServiceName);
  pending_calls_++;
  auto* call = new UnaryCall<HealthCheckResponse>(
      [this, on_result = std::move(on_result)](const grpc::Status& status,
                                               const HealthCheckResponse& response) {
        absl::Status result = FromGrpcStatus(status);
        if (status.ok() && response.status() != HealthCheckResponse::SERVING) {
          result = absl::UnavailableError(absl::StrCat(
              "health status ", HealthCheckResponse::ServingStatus_Name(response.status())));
        }
        asio::post(strand_, [on_result, result] { on_result(result); });
        pending_calls_--;
      });
  call->context().AddMetadata(v1::kSecretMetadataKey, launch_->secret);
  call->context().set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call->context().set_wait_for_ready(wait_for_ready);
  call->Start(*options_.calls, [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
    return launch_->health->PrepareAsyncCheck(context, request, cq);
  });
}

void PluginSupervisor::OnConnectBack(uint64_t launch_id, absl::Status status) {
  if (!launch_ || launch_->id != launch_id || state_ != PluginState::kRegistering) return;
  if (!status.ok()) {
    Fail(absl::StrCat("plugin socket never reachable: ", options_.socket_path.string(), ": ",
                      absl::StatusCodeToString(status.code()), ": ", status.message()));
    return;
  }
  launch_->connected = true;
  start_timer_.cancel();
  ready_at_ = absl::Now();
  SetState(PluginState::kReady);
  health_failures_in_row_ = 0;
  ArmHealthTimer();
  std::vector<std::string> routes;
  for (const auto& r : registration_->routes) {
    routes.push_back(absl::StrCat(r.method, " ", r.pattern.pattern()));
  }
  log_->info(
      "plugin '{}' ready: pid {}, version {}, protocol {}, hooks [{}], routes [{}], "
      "spawn to ready {:.1f} ms",
      manifest_.name, launch_->pid, registration_->version, registration_->protocol_version,
      absl::StrJoin(registration_->hooks, ", "), absl::StrJoin(routes, ", "),
      absl::ToDoubleMilliseconds(ready_at_ - launched_at_));
  OpenEventStream();
  listener_->OnPluginSettled(*this, PluginState::kReady);
}

// --- Exit, failure, stop ----------------------------------------------------

void PluginSupervisor::OnExit(uint64_t launch_id, ExitStatus status) {
  if (!launch_ || launch_->id != launch_id) return;
  // The pipes are drained before on_exit: report what a flood dropped.
  output_log_->Flush();
  std::string how = status.Describe();
  int pid = launch_->pid;
  if (launch_->events) launch_->events->Cancel();
  launch_.reset();
  {
    // The dead launch's secret no longer opens the host API.
    absl::MutexLock lock(&status_mu_);
    secret_.clear();
  }
  CancelLaunchTimers();
  stop_timer_.cancel();
  RequeueUnacked();
  switch (state_) {
    case PluginState::kStopping:
      log_->info("plugin '{}' stopped (pid {}, {})", manifest_.name, pid, how);
      last_exit_reason_ = how;
      FinishStop();
      break;
    case PluginState::kStarting:
    case PluginState::kRegistering: {
      std::string reason = absl::StrCat("exited before registering: ", how, RunnerExitNote(status));
      if (!refusal_.empty()) absl::StrAppend(&reason, "; Register was refused: ", refusal_);
      Fail(std::move(reason));
      break;
    }
    case PluginState::kReady:
      Fail(absl::StrCat("exited unexpectedly: ", how));
      break;
    case PluginState::kBackoff:
      // The failed launch is gone: the next one may start.
      log_->debug("plugin '{}' process {} ended ({})", manifest_.name, pid, how);
      ScheduleRestart();
      break;
    case PluginState::kFailed:
    case PluginState::kDisabled:
    case PluginState::kStopped:
      log_->debug("plugin '{}' process {} ended ({})", manifest_.name, pid, how);
      break;
  }
  PublishStatus();
  auto waiters = std::move(stop_waiters_);
  stop_waiters_.clear();
  for (auto& w : waiters) w();
}

void PluginSupervisor::Fail(std::string reason) {
  log_->error("plugin '{}' failed: {}", manifest_.name, reason);
  last_exit_reason_ = std::move(reason);
  CancelLaunchTimers();
  bool polite = launch_ && launch_->connected;
  std::optional<absl::Duration> delay =
      restarts_tracker_.OnFailure(absl::Now(), absl::Uniform(bitgen_, 0.0, 1.0));
  if (delay) {
    restart_delay_ = *delay;
    SetState(PluginState::kBackoff);
  } else {
    const RestartPolicy& policy = restarts_tracker_.policy();
    log_->error(
        "plugin '{}' failed {} times within {}: giving up until an operator enables it "
        "(Admin.EnablePlugin or POST /api/plugins/{}/enable)",
        manifest_.name, policy.max_failures + 1, absl::FormatDuration(policy.failure_window),
        manifest_.name);
    SetState(PluginState::kFailed);
  }
  if (launch_) {
    Terminate(polite);  // ScheduleRestart runs when the process is gone
  } else {
    ScheduleRestart();
  }
  listener_->OnPluginSettled(*this, state_);
}

void PluginSupervisor::ScheduleRestart() {
  if (state_ != PluginState::kBackoff || launch_ || restart_timer_armed_) return;
  log_->info("plugin '{}': restarting in {}", manifest_.name, Millis(restart_delay_));
  restart_timer_armed_ = true;
  restart_timer_.expires_after(absl::ToChronoNanoseconds(restart_delay_));
  restart_timer_.async_wait([this](const boost::system::error_code& ec) {
    restart_timer_armed_ = false;
    if (!ec) OnRestartTimer();
  });
}

void PluginSupervisor::OnRestartTimer() {
  if (state_ != PluginState::kBackoff || launch_) return;
  restarts_++;
  SpawnLaunch();
}

void PluginSupervisor::CancelLaunchTimers() {
  start_timer_.cancel();
  health_timer_.cancel();
  stream_grace_timer_.cancel();
}

void PluginSupervisor::DoStop(std::string reason, std::function<void()> done) {
  if (done) stop_waiters_.push_back(std::move(done));
  restart_timer_.cancel();
  CancelLaunchTimers();
  if (!launch_) {
    FinishStop();
    auto waiters = std::move(stop_waiters_);
    stop_waiters_.clear();
    for (auto& w : waiters) w();
    return;
  }
  if ((state_ == PluginState::kFailed || state_ == PluginState::kDisabled) &&
      after_stop_ == AfterStop::kStopped) {
    return;  // the failed launch is already being terminated
  }
  bool polite = launch_->connected && state_ == PluginState::kReady;
  SetState(PluginState::kStopping);
  log_->info("stopping plugin '{}' (pid {}): {}", manifest_.name, launch_->pid, reason);
  stop_reason_ = std::move(reason);
  Terminate(polite);
}

void PluginSupervisor::FinishStop() {
  const AfterStop after = after_stop_;
  after_stop_ = AfterStop::kStopped;
  switch (after) {
    case AfterStop::kStopped:
      // A plugin that gave up stays "failed" when the broker stops.
      if (state_ != PluginState::kFailed && state_ != PluginState::kDisabled) {
        SetState(PluginState::kStopped);
      }
      break;
    case AfterStop::kDisabled:
      SetState(PluginState::kDisabled);
      log_->info("plugin '{}' disabled", manifest_.name);
      break;
    case AfterStop::kRestart:
      SetState(PluginState::kStopped);
      restarts_++;
      SpawnLaunch();
      break;
  }
}

void PluginSupervisor::DoAct(Action action, std::function<void(v1::PluginStatus)> done) {
  switch (action) {
    case Action::kRestart:
      log_->info("plugin '{}': restart requested by an operator", manifest_.name);
      restarts_tracker_.Reset();
      after_stop_ = AfterStop::kRestart;
      DoStop("restart requested by an operator", nullptr);
      break;
    case Action::kEnable:
      if (state_ == PluginState::kFailed || state_ == PluginState::kDisabled ||
          state_ == PluginState::kStopped) {
        log_->info("plugin '{}': enabled by an operator", manifest_.name);
        restarts_tracker_.Reset();
        if (launch_) {
          // A failed launch is still being killed: launch once it is gone.
          after_stop_ = AfterStop::kRestart;
          SetState(PluginState::kStopping);
        } else {
          SpawnLaunch();
        }
      }
      break;
    case Action::kDisable:
      if (state_ != PluginState::kDisabled) {
        log_->info("plugin '{}': disabled by an operator", manifest_.name);
        after_stop_ = AfterStop::kDisabled;
        DoStop("disabled by an operator", nullptr);
      }
      break;
  }
  if (done) done(Status());
}

void PluginSupervisor::ArmOutputLogTimer() {
  if (output_log_timer_armed_) return;
  output_log_timer_armed_ = true;
  output_log_timer_.expires_after(std::chrono::seconds(1));
  output_log_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    output_log_timer_armed_ = false;
    output_log_->Tick();
    if (launch_) ArmOutputLogTimer();
  });
}

// --- Health -------------------------------------------------------------------

void PluginSupervisor::ArmHealthTimer() {
  if (state_ != PluginState::kReady || !launch_) return;
  uint64_t id = launch_->id;
  health_timer_.expires_after(absl::ToChronoNanoseconds(options_.health_interval));
  health_timer_.async_wait([this, id](const boost::system::error_code& ec) {
    if (!ec) OnHealthTimer(id);
  });
}

void PluginSupervisor::OnHealthTimer(uint64_t launch_id) {
  if (!launch_ || launch_->id != launch_id || state_ != PluginState::kReady) return;
  CheckHealth(options_.health_timeout, /*wait_for_ready=*/false,
              [this, launch_id](absl::Status result) { OnHealthResult(launch_id, result); });
}

void PluginSupervisor::OnHealthResult(uint64_t launch_id, absl::Status status) {
  if (!launch_ || launch_->id != launch_id || state_ != PluginState::kReady) return;
  if (status.ok()) {
    health_failures_in_row_ = 0;
  } else {
    health_failures_in_row_++;
    log_->warn("plugin '{}': health check failed ({} of {}): {}: {}", manifest_.name,
               health_failures_in_row_, options_.health_failures,
               absl::StatusCodeToString(status.code()), std::string(status.message()));
    if (health_failures_in_row_ >= options_.health_failures) {
      Fail(absl::StrCat("health check failed ", health_failures_in_row_, " times in a row (",
                        absl::StatusCodeToString(status.code()), ": ", status.message(), ")"));
      return;
    }
  }
  ArmHealthTimer();
}

void PluginSupervisor::Terminate(bool polite) {
  if (!launch_ || launch_->terminating) return;
  launch_->terminating = true;
  uint64_t id = launch_->id;
  absl::Duration grace = manifest_.shutdown_grace.value_or(options_.shutdown_grace);
  auto escalate = [this, id, grace](int signal, auto next) {
    if (!launch_ || launch_->id != id) return;
    log_->warn("plugin '{}' (pid {}) still running: sending {} to its process group",
               manifest_.name, launch_->pid, signal == SIGTERM ? "SIGTERM" : "SIGKILL");
    launch_->process->SignalGroup(signal);
    if (signal == SIGTERM) {
      stop_timer_.expires_after(absl::ToChronoNanoseconds(grace));
      stop_timer_.async_wait([next](const boost::system::error_code& ec) {
        if (!ec) next();
      });
    }
  };
  auto kill = [escalate] { escalate(SIGKILL, [] {}); };
  auto term = [escalate, kill] { escalate(SIGTERM, kill); };
  if (polite && launch_->stub) {
    v1::ShutdownRequest request;
    request.set_reason(stop_reason_.empty() ? "plugin failed" : stop_reason_);
    request.set_grace_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(grace)));
    pending_calls_++;
    auto* call = new UnaryCall<v1::ShutdownResponse>(
        [this, id, term, grace](const grpc::Status& status, const v1::ShutdownResponse&) {
          // A plugin that cannot take the Shutdown call (socket closed,
          // hung server) gets SIGTERM after a short wait rather than after
          // the whole grace. The wait is for plugins that took the call and
          // are exiting already: one that shuts its server down hard at once
          // can fail the call (CANCELLED, or UNAVAILABLE as it goes).
          if (!status.ok()) {
            asio::post(strand_, [this, id, term, grace] {
              if (!launch_ || launch_->id != id) return;
              stop_timer_.expires_after(
                  absl::ToChronoNanoseconds(std::min(grace, absl::Milliseconds(250))));
              stop_timer_.async_wait([term](const boost::system::error_code& ec) {
                if (!ec) term();
              });
            });
          }
          pending_calls_--;
        });
    call->context().AddMetadata(v1::kSecretMetadataKey, launch_->secret);
    call->context().set_deadline(absl::ToChronoTime(absl::Now() + grace));
    call->Start(*options_.calls, [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
      return launch_->stub->PrepareAsyncShutdown(context, request, cq);
    });
    stop_timer_.expires_after(absl::ToChronoNanoseconds(grace));
    stop_timer_.async_wait([term](const boost::system::error_code& ec) {
      if (!ec) term();
    });
  } else {
    launch_->process->SignalGroup(SIGTERM);
    stop_timer_.expires_after(absl::ToChronoNanoseconds(grace));
    stop_timer_.async_wait([kill](const boost::system::error_code& ec) {
      if (!ec) kill();
    });
  }
}

// --- Events -----------------------------------------------------------------

void PluginSupervisor::DoDeliver(const EventList& events) {
  bool queued = false, dropped = false;
  for (const auto& event : events) {
    // Until the first registration the subscriptions are unknown: queue, and
    // filter when they are known.
    if (registration_ && !subscribed_.count(event->event.hook())) continue;
    if (event_queue_.Push(event)) {
      queued = true;
      continue;
    }
    dropped = true;
    events_dropped_++;
    // One line per power of two: visible, without flooding the log.
    if ((events_dropped_ & (events_dropped_ - 1)) == 0) {
      log_->warn(
          "plugin '{}': event queue full ({} events): dropped event {} ({}); {} dropped so far",
          manifest_.name, options_.event_queue_capacity, event->event.event_id(),
          event->event.event_type(), events_dropped_);
    }
  }
  // One batch-forming pass and one status update per list, not per event.
  if (queued) FlushEvents();
  if (queued || dropped) PublishEventCounters();
}

void PluginSupervisor::OpenEventStream() {
  // Events queued before the subscriptions were known.
  event_queue_.FilterWaiting(
      [this](const v1::Event& e) { return subscribed_.count(e.hook()) > 0; });
  uint64_t id = launch_->id;
  PluginEventStream::Callbacks callbacks;
  callbacks.on_ack = [this, id](const v1::EventAck& ack) {
    std::vector<uint64_t> ids(ack.event_ids().begin(), ack.event_ids().end());
    asio::post(strand_, [this, id, ids = std::move(ids)]() mutable { OnAck(id, std::move(ids)); });
  };
  callbacks.on_done = [this, id](const grpc::Status& status) {
    std::string error =
        status.ok() ? "" : absl::StrCat(status.error_code(), ": ", status.error_message());
    asio::post(strand_, [this, id, error] { OnEventStreamDone(id, error); });
    pending_calls_--;
  };
  pending_calls_++;
  launch_->events = PluginEventStream::Open(*options_.calls, launch_->channel, launch_->secret,
                                            std::move(callbacks));
  FlushEvents();
}

void PluginSupervisor::FlushEvents() {
  if (state_ != PluginState::kReady || !launch_ || !launch_->events) return;
  const absl::Time now = absl::Now();
  std::string batch;  // an encoded EventBatch
  while (event_queue_.NextBatch(options_.max_batch, now, batch)) {
    launch_->events->Send(std::move(batch));
  }
  ArmAckTimer();
}

void PluginSupervisor::ArmAckTimer() {
  if (ack_timer_armed_) return;
  std::optional<absl::Time> deadline = event_queue_.NextAckDeadline(options_.ack_timeout);
  if (!deadline) return;
  ack_timer_armed_ = true;
  ack_timer_.expires_after(
      absl::ToChronoNanoseconds(std::max(*deadline - absl::Now(), absl::ZeroDuration())));
  ack_timer_.async_wait([this](const boost::system::error_code& ec) {
    ack_timer_armed_ = false;
    if (!ec) OnAckTimer();
  });
}

void PluginSupervisor::OnAckTimer() {
  const PluginEventQueue::LateEvents newly_late =
      event_queue_.MarkLate(absl::Now(), options_.ack_timeout);
  const uint64_t late = newly_late.count, oldest = newly_late.oldest_id;
  if (late > 0) {
    events_timed_out_ += late;
    log_->warn("plugin '{}': {} event(s) not acknowledged within {} (oldest: event {}); {} so far",
               manifest_.name, late, Millis(options_.ack_timeout), oldest, events_timed_out_);
    PublishStatus();
    // A plugin that stops acknowledging is hung: kill it; the restart
    // policy applies and the unacknowledged events go to the next launch.
    if (state_ == PluginState::kReady) {
      Fail(absl::StrCat("event ", oldest, " not acknowledged within ",
                        Millis(options_.ack_timeout)));
      return;
    }
  }
  ArmAckTimer();
}

void PluginSupervisor::OnAck(uint64_t launch_id, std::vector<uint64_t> ids) {
  if (!launch_ || launch_->id != launch_id) return;
  events_acknowledged_ += event_queue_.Acknowledge(ids);
  PublishEventCounters();
}

void PluginSupervisor::OnEventStreamDone(uint64_t launch_id, std::string error) {
  if (!launch_ || launch_->id != launch_id) return;
  launch_->events.reset();
  RequeueUnacked();
  if (state_ != PluginState::kReady) return;
  // A broken stream usually means the process died: give its exit a moment
  // to arrive, so that the reason names the exit code or signal. A process
  // still running after that closed its socket or ended the stream itself.
  std::string reason =
      absl::StrCat("event stream ended: ", error.empty() ? "closed by the plugin" : error);
  stream_grace_timer_.expires_after(std::chrono::milliseconds(250));
  stream_grace_timer_.async_wait(
      [this, launch_id, reason = std::move(reason)](const boost::system::error_code& ec) {
        if (ec || !launch_ || launch_->id != launch_id || state_ != PluginState::kReady) return;
        Fail(reason);
      });
}

void PluginSupervisor::RequeueUnacked() {
  event_queue_.RequeueUnacked();
  ack_timer_.cancel();
}

void PluginSupervisor::PublishEventCounters() {
  absl::MutexLock lock(&status_mu_);
  status_.set_events_queued(event_queue_.size());
  status_.set_events_acknowledged(events_acknowledged_);
  status_.set_events_dropped(events_dropped_);
  status_.set_events_timed_out(events_timed_out_);
}

// --- Status -----------------------------------------------------------------

void PluginSupervisor::SetState(PluginState state) {
  state_ = state;
  PublishStatus();
}

void PluginSupervisor::PublishStatus() {
  absl::MutexLock lock(&status_mu_);
  status_.set_state(PluginStateName(state_));
  status_.set_pid(launch_ ? launch_->pid : 0);
  status_.set_restarts(restarts_);
  status_.set_last_exit_reason(last_exit_reason_);
  ready_since_ = state_ == PluginState::kReady ? ready_at_ : absl::InfinitePast();
  status_.set_uptime_ms(0);
  if (target_.state != state_ || (state_ == PluginState::kReady && !target_.stub)) {
    target_.state = state_;
    const bool ready = state_ == PluginState::kReady && launch_ && launch_->stub;
    target_.stub = ready ? launch_->stub : nullptr;
    target_.secret = ready ? launch_->secret : "";
    target_.launch_id = ready ? launch_->id : 0;
    if (registration_) {
      target_.routes = std::make_shared<const std::vector<RegisteredRoute>>(registration_->routes);
    }
  }
  if (registration_) {
    if (!registration_->version.empty()) status_.set_version(registration_->version);
    status_.clear_hooks();
    for (const auto& h : registration_->hooks) status_.add_hooks(h);
    status_.clear_routes();
    for (const auto& r : registration_->routes) {
      auto* route = status_.add_routes();
      route->set_method(r.method);
      route->set_path(r.pattern.pattern());
      route->set_public_(r.public_route);
      route->set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(r.timeout)));
    }
  }
  status_.set_events_queued(event_queue_.size());
  status_.set_events_acknowledged(events_acknowledged_);
  status_.set_events_dropped(events_dropped_);
  status_.set_events_timed_out(events_timed_out_);
}

}  // namespace tracim::broker
