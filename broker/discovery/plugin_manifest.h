// A plugin's manifest (tracim_backend_<name>/plugin.json) and its parser.
// Pure functions: thread-safe.
//
//   {
//     "command": ["./hello_world", "--verbose"],   // or "library": "libx.so"
//     "version": "1.0.0",
//     "description": "Says hello",
//     "start_timeout_ms": 5000,
//     "shutdown_grace_ms": 2000,
//     "env": {"GREETING": "hi"},
//     "limits": {"memory_bytes": 268435456, "cpu_seconds": 60,
//                "open_files": 256, "processes": 64},
//     "user": "tracim-plugins", "group": "tracim-plugins",
//     "restart": {"backoff_initial_ms": 100, "backoff_max_ms": 30000,
//                 "max_failures": 5, "failure_window_ms": 300000},
//     "health": {"interval_ms": 5000, "timeout_ms": 2000, "failures": 3}
//   }
//
// The full schema is in docs/writing-plugins.md.
#ifndef TRACIM_BROKER_DISCOVERY_PLUGIN_MANIFEST_H_
#define TRACIM_BROKER_DISCOVERY_PLUGIN_MANIFEST_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tracim::broker {

// Resource limits applied by tracim-plugin-runner (setrlimit); unset = inherit.
struct ResourceLimits {
  std::optional<uint64_t> memory_bytes;  // RLIMIT_AS
  std::optional<uint64_t> cpu_seconds;   // RLIMIT_CPU
  std::optional<uint64_t> open_files;    // RLIMIT_NOFILE
  std::optional<uint64_t> processes;     // RLIMIT_NPROC
};

// Per-plugin overrides of the broker's restart policy and health checks
// (broker.restart_*, broker.health_* in the INI); unset = the INI's value.
struct RestartOverrides {
  std::optional<absl::Duration> backoff_initial;
  std::optional<absl::Duration> backoff_max;
  std::optional<int> max_failures;  // 0 to 1000
  std::optional<absl::Duration> failure_window;
};
struct HealthOverrides {
  std::optional<absl::Duration> interval;
  std::optional<absl::Duration> timeout;
  std::optional<int> failures;  // 1 to 100
};

struct PluginManifest {
  // The folder name without "tracim_backend_".
  std::string name;
  // Absolute path of the plugin's folder.
  std::filesystem::path folder;
  // Exactly one of command / library is set.
  // argv; command[0] is absolute after parsing: a path with a "/" is taken
  // relative to the folder, a bare name is looked up in PATH at parse time.
  std::vector<std::string> command;
  // Absolute path of a C++ shared library (relative paths: to the folder).
  std::filesystem::path library;
  std::string version;
  std::string description;
  std::optional<absl::Duration> start_timeout;
  std::optional<absl::Duration> shutdown_grace;
  // Extra environment variables for the plugin (names: [A-Za-z_][A-Za-z0-9_]*,
  // not starting with TRACIM_).
  std::map<std::string, std::string> env;
  ResourceLimits limits;
  RestartOverrides restart;
  HealthOverrides health;
  // Account to run as (only honoured when the broker runs as root).
  std::optional<std::string> user;
  std::optional<std::string> group;
};

// Parses plugin.json text. `folder` is the plugin's absolute folder, `name` its
// plugin name. Errors are INVALID_ARGUMENT with a message naming the field and
// the problem, without the file name (the caller adds it), e.g.
//   "invalid JSON at line 3, column 5: expected ','"
//   "'command' must be a non-empty array of strings"
//   "exactly one of 'command' or 'library' is required"
//   "'limits.memory_bytes' must be a positive integer"
//   "unknown field 'comand'"
//   "command './nope' not found in the plugin folder"
//   "command './README' is not executable"
// Precisely: JSON is strict (no comments, no trailing commas; a duplicated
// key keeps its last value); syntax error columns count bytes. Integers must
// be JSON integers (5000.0 is refused), timeouts at most 3600000 ms. Checks on
// the text come before the file system checks. command[0] must be an
// executable regular file (symlinks followed, path kept as written but
// normalised); the PATH lookup skips empty and relative PATH entries and
// files that are not executable, as execvp does. library must be a regular
// file. Only an allocation failure gives another code (INTERNAL).
absl::StatusOr<PluginManifest> ParsePluginManifest(const std::string& json,
                                                   const std::filesystem::path& folder,
                                                   const std::string& name);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_DISCOVERY_PLUGIN_MANIFEST_H_
