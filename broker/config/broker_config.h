// The broker's configuration: a tracim-style INI file (--config FILE) with
// %(here)s expansion and TRACIM_<KEY> environment overrides, validated into a
// typed BrokerConfig. Pure functions over their inputs: thread-safe.
//
//   auto config = LoadBrokerConfig("/etc/tracim/broker.ini", Environment::FromProcess());
//   if (!config.ok()) { /* message names the key and the problem */ }
//   for (const auto& w : config->warnings) LOG(warn) << w;
#ifndef TRACIM_BROKER_CONFIG_BROKER_CONFIG_H_
#define TRACIM_BROKER_CONFIG_BROKER_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tracim::broker {

// The environment the config reads overrides from; a plain map so tests do
// not touch the process environment.
struct Environment {
  std::map<std::string, std::string> vars;
  static Environment FromProcess();
};

// One parsed INI file: section name → key → value (values already expanded).
// Keys keep their case as written; sections are kept in file order of first
// appearance. A key given twice in one section is an error, as in Python's
// ConfigParser (strict mode).
struct IniFile {
  std::map<std::string, std::map<std::string, std::string>> sections;
};

// Parses INI text. `here` is the value of %(here)s (the folder of the file).
// Supports [sections], `key = value` and `key: value`, full-line comments
// starting with # or ;, continuation lines (indented) appended with "\n",
// %(here)s, %(other_key)s from the same section or [DEFAULT], and %% for "%".
// Errors are INVALID_ARGUMENT naming the line number and the cause, e.g.
// "line 7: unknown interpolation %(nope)s in key 'plugin.folder_path'".
absl::StatusOr<IniFile> ParseIni(const std::string& text, const std::string& here);

// Upper bound of broker.event_queue_size.
inline constexpr size_t kMaxEventQueueSize = 10'000'000;
// Upper bound of broker.idle_poll_us.
inline constexpr int64_t kMaxIdlePollMicros = 10'000;
// Upper bound of broker.plugin_log_rate and broker.plugin_log_burst.
inline constexpr uint32_t kMaxPluginLogLines = 1'000'000;

// Upper bound of broker.max_body_bytes (1 TiB).
inline constexpr uint64_t kMaxBodyBytesLimit = uint64_t{1} << 40;

// The section the broker reads its keys from, as tracim does.
inline constexpr char kAppSection[] = "app:main";

// Typed, validated configuration. See docs/configuration.md for every key.
struct BrokerConfig {
  // The file the config was read from, and its folder (%(here)s).
  std::filesystem::path file;
  std::filesystem::path here;

  // plugin.folder_path, default %(here)s/plugins.
  std::filesystem::path plugin_folder;
  // broker.listen, default 127.0.0.1:8080. Host may be an IPv4 address, a
  // name, or an IPv6 address in brackets ("[::1]:8080"; stored without them).
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  // broker.state_dir, default %(here)s/var.
  std::filesystem::path state_dir;
  // broker.runtime_dir; unset → $RUNTIME_DIRECTORY, else a private temp dir
  // (the broker decides at startup, not the config).
  std::optional<std::filesystem::path> runtime_dir;
  // backend.admin_password; unset → random (decided by the backend).
  std::optional<std::string> admin_password;
  // broker.log_level: trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
  // broker.plugin_start_timeout_ms (default 10000): launch → Register
  // accepted and plugin reachable. A manifest's start_timeout_ms wins.
  absl::Duration plugin_start_timeout = absl::Seconds(10);
  // broker.plugin_shutdown_grace_ms (default 3000): each of the two grace
  // periods of a stop (after Shutdown, after SIGTERM). Manifest wins.
  absl::Duration plugin_shutdown_grace = absl::Seconds(3);
  // broker.plugin_runner: path of tracim-plugin-runner; default: the file
  // next to the broker's own executable (decided by the broker at startup).
  std::optional<std::filesystem::path> plugin_runner;

  // broker.backend_token: the secret external backends present (metadata
  // "tracim-backend-token") to call Backend.Publish; unset disables the
  // Backend service. At least 16 characters.
  std::optional<std::string> backend_token;
  // broker.event_queue_size (default 10000, at most 10,000,000): per plugin,
  // events queued or awaiting acknowledgement; more are dropped and counted.
  size_t event_queue_size = 10000;
  // broker.event_ack_timeout_ms (default 30000): an event delivered and not
  // acknowledged within this time is logged and counted.
  absl::Duration event_ack_timeout = absl::Seconds(30);

  // broker.plugin_log_rate (default 200, 0 = no limit, at most 1,000,000):
  // lines per second of a plugin's stdout+stderr that reach the broker's
  // log; lines over it are dropped, counted and summarised.
  uint32_t plugin_log_rate = 200;
  // broker.plugin_log_burst (default 1000, 1 to 1,000,000): lines a plugin
  // may write at once, above the rate, after a quiet period.
  uint32_t plugin_log_burst = 1000;

  // broker.max_body_bytes (default 1 GiB, 1 to 1 TiB): the largest request
  // body a plugin route accepts; larger ones get 413.
  uint64_t max_body_bytes = uint64_t{1} << 30;
  // broker.route_timeout_ms (default 30000): deadline of a request to a
  // plugin route registered without its own timeout_ms.
  absl::Duration route_timeout = absl::Seconds(30);

  // broker.idle_poll_us (default 200, 0 to 10000): how long the broker's
  // gRPC thread keeps polling for the next completion after each one before
  // it sleeps: less latency per plugin call for some CPU. 0 sleeps at once.
  absl::Duration idle_poll = absl::Microseconds(200);

  // Restart policy (a plugin.json "restart" object wins, field by field):
  // broker.restart_backoff_initial_ms (default 100): the delay before the
  // second restart within the window (the first is immediate), doubling
  // each time up to broker.restart_backoff_max_ms (default 30000), with
  // ±20 % jitter.
  absl::Duration restart_backoff_initial = absl::Milliseconds(100);
  absl::Duration restart_backoff_max = absl::Seconds(30);
  // broker.restart_max_failures (default 5, 0 to 1000) within
  // broker.restart_failure_window_ms (default 300000): one more failure and
  // the plugin is marked failed and left stopped. 0 never restarts.
  int restart_max_failures = 5;
  absl::Duration restart_failure_window = absl::Minutes(5);
  // Hang detection: a grpc.health.v1 Check every broker.health_interval_ms
  // (default 5000) with a deadline of broker.health_timeout_ms (default
  // 2000); broker.health_failures (default 3, 1 to 100) failures in a row
  // kill the plugin, and the restart policy applies.
  absl::Duration health_interval = absl::Seconds(5);
  absl::Duration health_timeout = absl::Seconds(2);
  int health_failures = 3;

  // plugin.<name>.<setting> = value, grouped by plugin name. Names and
  // settings as written (lower case when they come from the environment).
  std::map<std::string, std::map<std::string, std::string>> plugin_settings;

  // Non-fatal findings for the operator, one line each, e.g.
  // "unknown key 'broker.lisen' in /etc/x.ini [app:main] (ignored)".
  std::vector<std::string> warnings;
};

// Reads and validates the file, then applies overrides from `env`:
// TRACIM_<KEY> with "." → "__" and upper case (plugin.folder_path ↔
// TRACIM_PLUGIN__FOLDER_PATH; plugin.hello_world.greeting ↔
// TRACIM_PLUGIN__HELLO_WORLD__GREETING). Only variables containing "__" after
// the TRACIM_ prefix are config overrides; others (TRACIM_PLUGIN_SECRET, ...)
// are ignored. %(here)s is expanded in override values too.
// Errors: NOT_FOUND / PERMISSION_DENIED for an unreadable file;
// INVALID_ARGUMENT naming the key (and the env variable when the value came
// from one) for a bad value, e.g.
// "broker.listen: invalid port '80a80' (expected host:port, port 0-65535)".
absl::StatusOr<BrokerConfig> LoadBrokerConfig(const std::filesystem::path& file,
                                              const Environment& env);

// Same, from text already read (`file` is used for %(here)s and messages).
absl::StatusOr<BrokerConfig> ParseBrokerConfig(const std::string& text,
                                               const std::filesystem::path& file,
                                               const Environment& env);

// The environment variable that overrides `key` (tracim's rule).
std::string EnvVarForKey(const std::string& key);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_CONFIG_BROKER_CONFIG_H_
