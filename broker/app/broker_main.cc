// tracim-plugin-broker: reads the config, discovers the plugins, serves the
// control socket, supervises every plugin until SIGINT/SIGTERM, then stops
// them all and exits 0. Everything runs on one io thread (the thread that
// spawns the plugins must outlive them: PR_SET_PDEATHSIG) plus gRPC's own.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/thread_pool.hpp"
#include "broker/admin/plugins_api.h"
#include "broker/app/first_admin.h"
#include "broker/app/runtime_dir.h"
#include "broker/backend/authenticator.h"
#include "broker/backend/change_publisher.h"
#include "broker/backend/hook_events.h"
#include "broker/backend/rest_api.h"
#include "broker/config/broker_config.h"
#include "broker/control/control_server.h"
#include "broker/discovery/plugin_discovery.h"
#include "broker/hostapi/host_api_service.h"
#include "broker/http/http_server.h"
#include "broker/process/posix_process_launcher.h"
#include "broker/proxy/in_flight_requests.h"
#include "broker/proxy/plugin_route_proxy.h"
#include "broker/store/sqlite_store.h"
#include "broker/supervisor/plugin_host.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace tracim::broker {
namespace {

constexpr char kUsage[] =
    "usage: tracim-plugin-broker --config FILE\n"
    "  Runs tracim backend plugins out of process (see README.md).\n"
    "  Every config key can be overridden by TRACIM_<KEY> ('.' -> '__', upper case).\n";

// Variables of the broker's environment that plugins inherit; everything
// else is withheld (secrets in the broker's environment stay there).
bool IsInherited(absl::string_view var) {
  static constexpr const char* kNames[] = {"PATH",         "LANG",          "LANGUAGE",    "TZ",
                                           "HOME",         "USER",          "LOGNAME",     "TMPDIR",
                                           "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
  absl::string_view name = var.substr(0, var.find('='));
  if (absl::StartsWith(name, "LC_")) return true;
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

std::vector<std::string> InheritedEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (IsInherited(*e)) env.emplace_back(*e);
  }
  return env;
}

std::filesystem::path DefaultRunner() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return self.parent_path() / "tracim-plugin-runner";
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stdout_color_mt("broker");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  // Logs go to a pipe (journald, tests): every line out at once.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

int Fatal(const std::string& message) {
  std::fprintf(stderr, "tracim-plugin-broker: %s\n", message.c_str());
  return 2;
}

int Run(const std::filesystem::path& config_file) {
  auto config = LoadBrokerConfig(config_file, Environment::FromProcess());
  if (!config.ok()) return Fatal(std::string(config.status().message()));
  SetUpLogging(config->log_level);
  for (const auto& w : config->warnings) spdlog::warn("config: {}", w);

  const char* systemd_dir = getenv("RUNTIME_DIRECTORY");
  auto runtime = RuntimeDir::Prepare(
      config->runtime_dir, systemd_dir ? std::optional<std::string>(systemd_dir) : std::nullopt);
  if (!runtime.ok()) return Fatal(std::string(runtime.status().message()));

  std::filesystem::path runner = config->plugin_runner.value_or(DefaultRunner());
  if (::access(runner.c_str(), X_OK) != 0) {
    return Fatal(
        absl::StrCat("broker.plugin_runner: '", runner.string(), "' is not an executable file"));
  }

  auto found = DiscoverPlugins(config->plugin_folder);
  if (!found.ok()) return Fatal(std::string(found.status().message()));
  for (const auto& p : found->problems) {
    spdlog::error("plugin '{}' skipped: {}: {}", p.name, p.manifest.string(), p.message);
  }
  std::vector<std::string> names;
  for (const auto& p : found->plugins) names.push_back(p.name);
  spdlog::info("tracim-plugin-broker {} starting: {} plugin(s) in {}: {}", TRACIM_BROKER_VERSION,
               names.size(), config->plugin_folder.string(), absl::StrJoin(names, ", "));

  // The embedded backend's database, and its first administrator.
  std::error_code ec;
  if (std::filesystem::create_directories(config->state_dir, ec)) {
    std::filesystem::permissions(config->state_dir, std::filesystem::perms::owner_all, ec);
  }
  auto store = SqliteStore::Open(config->state_dir / std::string(kSqliteStoreFileName));
  if (!store.ok()) {
    return Fatal(absl::StrCat("broker.state_dir: ", store.status().message()));
  }
  if (auto s = EnsureFirstAdmin(**store, config->state_dir, config->admin_password); !s.ok()) {
    return Fatal(absl::StrCat("broker.state_dir: ", s.message()));
  }

  boost::asio::io_context io;
  PosixProcessLauncher launcher(io);
  PluginHost::Options options;
  // The control server's completion queue: its thread runs every gRPC call
  // of the broker, served or made (one polling thread, see
  // completion_queue_thread.h), polling broker.idle_poll_us after each
  // completion before it sleeps.
  std::unique_ptr<ControlServer> control = ControlServer::Create(
      runtime->path() / "broker.sock", absl::ToChronoMicroseconds(config->idle_poll));
  options.calls = &control->queue();
  options.runner = runner;
  options.runtime_dir = runtime->path();
  options.broker_socket = runtime->path() / "broker.sock";
  options.start_timeout = config->plugin_start_timeout;
  options.shutdown_grace = config->plugin_shutdown_grace;
  options.settings = config->plugin_settings;
  options.base_env = InheritedEnvironment();
  options.event_queue_size = config->event_queue_size;
  options.event_ack_timeout = config->event_ack_timeout;
  options.restart.initial_backoff = config->restart_backoff_initial;
  options.restart.max_backoff = config->restart_backoff_max;
  options.restart.max_failures = config->restart_max_failures;
  options.restart.failure_window = config->restart_failure_window;
  options.health_interval = config->health_interval;
  options.health_timeout = config->health_timeout;
  options.health_failures = config->health_failures;
  options.plugin_log_rate = config->plugin_log_rate;
  options.plugin_log_burst = config->plugin_log_burst;
  auto host = PluginHost::Create(io, launcher, std::move(found->plugins), options);
  if (!host.ok()) return Fatal(std::string(host.status().message()));

  // Store work of the REST API and of the host API runs on this pool, never
  // on the io thread or a gRPC thread. Both publish their committed changes
  // through one ChangePublisher: events leave in commit order.
  boost::asio::thread_pool blocking(2);
  ChangePublisher changes([&host](tracim::plugin::v1::Event e) { (*host)->Publish(std::move(e)); });
  // Requests the route proxy is forwarding, for HostApi.GetCurrentUser.
  InFlightRequests in_flight;
  HostApiServiceOptions host_api_options;
  host_api_options.resolve_plugin = [&host](const std::string& secret) {
    return (*host)->PluginNameForSecret(secret);
  };
  host_api_options.current_user = [&in_flight](const std::string& plugin,
                                               const std::string& request_id) {
    return in_flight.Find(plugin, request_id);
  };
  host_api_options.plugin_settings = config->plugin_settings;
  HostApiService host_api(**store, changes, blocking.get_executor(), std::move(host_api_options));

  if (auto s = control->Start(**host, config->backend_token, {&host_api}, blocking.get_executor());
      !s.ok()) {
    return Fatal(std::string(s.message()));
  }
  // From here on, whatever way Run returns: no call is served any more, and
  // what the pool was doing (answering calls on the control server's queue,
  // using host_api and the host) is over, before those objects go. The
  // queue itself shuts down with `control`, declared first, destroyed last.
  absl::Cleanup stop_serving = [&control, &blocking] {
    control->Shutdown();
    blocking.join();
  };
  spdlog::info("control socket: {}", options.broker_socket.string());

  // The REST API: store calls and password hashing run on the pool.
  RestApi rest(**store, changes, blocking.get_executor());
  HttpRouter router;
  if (auto s = rest.Register(router); !s.ok()) return Fatal(std::string(s.message()));
  // Operators: /api/plugins (administrators only).
  PluginsApi plugins_api(**store, **host, blocking.get_executor());
  if (auto s = plugins_api.Register(router); !s.ok()) return Fatal(std::string(s.message()));
  // /plugins/<name>/...: forwarded to the routes the plugins registered.
  // Callers authenticate as on the REST API, on the pool.
  PluginRouteProxyOptions proxy_options;
  proxy_options.max_body_bytes = config->max_body_bytes;
  proxy_options.default_timeout = config->route_timeout;
  proxy_options.calls = &control->queue();
  PluginRouteProxy proxy(
      **host,
      [&store](const HttpHeaders& headers) -> absl::StatusOr<tracim::plugin::v1::User> {
        absl::StatusOr<User> user = AuthenticateRequest(**store, headers);
        if (!user.ok()) return user.status();
        return ToProto(*user);
      },
      blocking.get_executor(), in_flight, proxy_options);
  if (auto s = proxy.Register(router); !s.ok()) return Fatal(std::string(s.message()));
  (void)router.AddExact(
      "/healthz", HttpHandler::Simple([](HttpRequest, HttpResponder respond) {
        respond(HttpResponse{200, {{"Content-Type", "application/json"}}, "{\"status\":\"ok\"}"});
      }));
  HttpServerOptions http_options;
  http_options.host = config->listen_host;
  http_options.port = config->listen_port;
  HttpServer http(io, http_options, std::move(router));
  if (auto s = http.Start(); !s.ok()) return Fatal(absl::StrCat("broker.listen: ", s.message()));
  spdlog::info("HTTP listener on {}:{}", config->listen_host, http.port());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (!stopping) {
          stopping = true;
          spdlog::info("received {}: stopping every plugin",
                       signal == SIGINT ? "SIGINT" : "SIGTERM");
          // New requests first, then the plugins that would serve them.
          http.Stop([&] { (*host)->StopAll([&io] { io.stop(); }); });
        } else {
          spdlog::info("already stopping; waiting for the plugins to exit");
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  (*host)->StartAll();
  io.run();
  // Route requests end promptly once the HTTP server has stopped (their
  // clients were cut, their calls cancelled); their last callbacks touch
  // the proxy and the io_context.
  if (!proxy.WaitIdle(absl::Seconds(5))) {
    spdlog::warn("route proxy: requests still in flight at exit");
  }
  // Backend.Publish calls answer once the plugins' strands queued their
  // events; the io thread is gone, so those still waiting are answered
  // UNAVAILABLE now, or the control server's shutdown would wait for them.
  (*host)->AbandonPendingPublishes();
  // The control server, then the pool, whose host API and Publish calls
  // answer on the control server's queue; the queue, whose calls to plugins
  // are over (StopAll), shuts down last (`control`'s destructor).
  std::move(stop_serving).Invoke();
  spdlog::info("tracim-plugin-broker stopped");
  return 0;
}

}  // namespace
}  // namespace tracim::broker

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string config;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(tracim::broker::kUsage, stdout);
      return 0;
    }
    if (args[i] == "--version") {
      std::printf("tracim-plugin-broker %s\n", TRACIM_BROKER_VERSION);
      return 0;
    }
    if (args[i] == "--config" && i + 1 < args.size()) {
      config = args[++i];
    } else if (absl::StartsWith(args[i], "--config=")) {
      config = args[i].substr(9);
    } else {
      std::fprintf(stderr, "tracim-plugin-broker: unknown argument '%s'\n%s", args[i].c_str(),
                   tracim::broker::kUsage);
      return 2;
    }
  }
  if (config.empty()) {
    std::fprintf(stderr, "tracim-plugin-broker: --config FILE is required\n%s",
                 tracim::broker::kUsage);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a
  // debug aid) unless told not to: a measurable share of event delivery.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return tracim::broker::Run(config);
}
