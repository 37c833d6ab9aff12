// Finds the plugins under plugin.folder_path: every folder whose name starts
// with "tracim_backend_" and holds a plugin.json. Reads the file system;
// no shared state: thread-safe.
#ifndef TRACIM_BROKER_DISCOVERY_PLUGIN_DISCOVERY_H_
#define TRACIM_BROKER_DISCOVERY_PLUGIN_DISCOVERY_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/discovery/plugin_manifest.h"

namespace tracim::broker {

inline constexpr char kPluginFolderPrefix[] = "tracim_backend_";
inline constexpr char kManifestFileName[] = "plugin.json";
// A larger plugin.json is reported as a problem instead of being read: the
// real ones are a few hundred bytes.
inline constexpr std::uintmax_t kMaxManifestBytes = 1 << 20;

// A plugin folder that could not be used; the others are unaffected.
struct DiscoveryProblem {
  std::string name;                // plugin name (folder without prefix)
  std::filesystem::path manifest;  // the plugin.json concerned (or the folder)
  std::string message;             // e.g. "'version' must be a string"
};

struct DiscoveryResult {
  // Valid plugins, sorted by name (the start order, as tracim sorts).
  std::vector<PluginManifest> plugins;
  // Broken ones, sorted by name, each to be reported and skipped.
  std::vector<DiscoveryProblem> problems;
};

// Scans `folder` (not recursively). Entries without the prefix are ignored,
// as are non-directories. A prefixed folder without plugin.json, an invalid
// plugin name (must match [a-z0-9_]+ after the prefix) or a broken manifest
// becomes a DiscoveryProblem. Only a missing or unreadable `folder` itself is
// an error (NOT_FOUND / PERMISSION_DENIED / FAILED_PRECONDITION if not a
// directory), with a message naming the folder and plugin.folder_path.
// Details: symlinks to plugin folders are followed (the manifest's folder is
// the path through the link); a prefixed regular file or dangling link is
// ignored. Problem messages: "missing plugin.json" (manifest = the folder),
// "plugin name is empty: ..." / "invalid plugin name 'X': must match
// [a-z0-9_]+" (manifest = the folder), "plugin.json is not a regular file",
// "plugin.json is larger than 1048576 bytes", "cannot read plugin.json: <errno
// text>", or ParsePluginManifest's message (manifest = the plugin.json).
absl::StatusOr<DiscoveryResult> DiscoverPlugins(const std::filesystem::path& folder);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_DISCOVERY_PLUGIN_DISCOVERY_H_
