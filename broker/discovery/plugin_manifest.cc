// Parsing and validation of plugin.json. Boost.JSON does the syntax; every
// field is then checked by hand so that each error names the field. Checks
// that only look at the text come first, the file system checks (command and
// library resolution) last, so a manifest with several problems always
// reports the same one.
#include "broker/discovery/plugin_manifest.h"

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <exception>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "boost/json/error.hpp"
#include "boost/json/parser.hpp"
#include "boost/json/value.hpp"
#include "broker/common/status_macros.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Upper bound for start_timeout_ms and shutdown_grace_ms: one hour. Anything
// longer is a typo (seconds written as milliseconds the other way round).
constexpr uint64_t kMaxTimeoutMs = 3'600'000;

constexpr absl::string_view kTopLevelFields[] = {
    "command", "library", "version", "description", "start_timeout_ms", "shutdown_grace_ms",
    "env",     "limits",  "user",    "group",       "restart",          "health",
};

constexpr absl::string_view kRestartFields[] = {
    "backoff_initial_ms",
    "backoff_max_ms",
    "max_failures",
    "failure_window_ms",
};

constexpr absl::string_view kHealthFields[] = {
    "interval_ms",
    "timeout_ms",
    "failures",
};

constexpr absl::string_view kLimitFields[] = {
    "memory_bytes",
    "cpu_seconds",
    "open_files",
    "processes",
};

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

absl::string_view ToView(json::string_view s) { return absl::string_view(s.data(), s.size()); }

// 1-based line and column (in bytes) of `offset` in `text`.
std::pair<size_t, size_t> LineAndColumn(absl::string_view text, size_t offset) {
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, offset - line_start + 1};
}

// The character at `offset` as shown in an error: 'x' when printable ASCII,
// otherwise its byte value.
std::string DescribeByte(absl::string_view text, size_t offset) {
  const unsigned char c = static_cast<unsigned char>(text[offset]);
  if (c >= 0x20 && c < 0x7f)
    return absl::StrCat("'", absl::string_view(text.data() + offset, 1), "'");
  constexpr char kHex[] = "0123456789abcdef";
  return absl::StrCat("byte 0x", std::string{kHex[c >> 4], kHex[c & 0xf]});
}

// Boost.JSON reports the number of bytes it consumed before the error; turn
// that into "invalid JSON at line L, column C: <reason>". Boost's own messages
// ("syntax error") do not say where or what, hence the rewording.
absl::Status JsonSyntaxError(absl::string_view text, size_t consumed,
                             const boost::system::error_code& ec) {
  size_t offset = consumed;
  std::string reason;
  if (ec == json::error::incomplete) {
    offset = text.size();
    reason = "unexpected end of input";
  } else if (ec == json::error::extra_data) {
    while (offset < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[offset]))) {
      ++offset;
    }
    reason = "unexpected data after the JSON value";
  } else if (ec == json::error::syntax && offset < text.size()) {
    reason = absl::StrCat("syntax error at ", DescribeByte(text, offset));
  } else {
    reason = ec.message();
  }
  const auto [line, column] = LineAndColumn(text, offset);
  return Invalid(absl::StrCat("invalid JSON at line ", line, ", column ", column, ": ", reason));
}

absl::StatusOr<json::value> ParseJson(absl::string_view text) {
  json::parser parser;
  boost::system::error_code ec;
  const size_t consumed = parser.write(text.data(), text.size(), ec);
  if (ec) return JsonSyntaxError(text, consumed, ec);
  return parser.release();
}

// Reports the first member of `object` (in document order) whose key is not
// in `known`; `prefix` is "" at the top level and "limits." for nested ones.
absl::Status CheckKnownFields(const json::object& object, absl::Span<const absl::string_view> known,
                              absl::string_view prefix) {
  for (const auto& member : object) {
    const absl::string_view key = ToView(member.key());
    bool found = false;
    for (absl::string_view k : known) found = found || k == key;
    if (!found) return Invalid(absl::StrCat("unknown field '", prefix, key, "'"));
  }
  return absl::OkStatus();
}

// Reads a string value. A NUL character can reach us through "\u0000" but
// cannot survive execve, getpwnam or setenv, so it is refused everywhere.
absl::StatusOr<std::string> ReadString(const json::value& value, absl::string_view field,
                                       bool allow_empty) {
  const json::string* s = value.if_string();
  if (s == nullptr || (!allow_empty && s->empty())) {
    return Invalid(
        absl::StrCat("'", field, "' must be a ", allow_empty ? "" : "non-empty ", "string"));
  }
  if (ToView(*s).find('\0') != absl::string_view::npos) {
    return Invalid(absl::StrCat("'", field, "' must not contain a NUL character"));
  }
  return std::string(s->data(), s->size());
}

// Reads an integer in [1, max]. Doubles (5000.0, 1e3) are refused: the
// schema speaks of integers and silent truncation would hide typos.
absl::StatusOr<uint64_t> ReadPositiveInteger(const json::value& value, absl::string_view field,
                                             uint64_t max) {
  uint64_t n = 0;
  if (const int64_t* i = value.if_int64(); i != nullptr && *i > 0) {
    n = static_cast<uint64_t>(*i);
  } else if (const uint64_t* u = value.if_uint64(); u != nullptr && *u > 0) {
    n = *u;
  } else {
    return Invalid(absl::StrCat("'", field, "' must be a positive integer"));
  }
  if (n > max) return Invalid(absl::StrCat("'", field, "' must be at most ", max));
  return n;
}

absl::StatusOr<std::vector<std::string>> ReadCommand(const json::value& value) {
  const json::array* array = value.if_array();
  bool all_strings = array != nullptr && !array->empty();
  for (size_t i = 0; all_strings && i < array->size(); ++i) {
    all_strings = (*array)[i].is_string();
  }
  if (!all_strings) return Invalid("'command' must be a non-empty array of strings");
  std::vector<std::string> command;
  for (size_t i = 0; i < array->size(); ++i) {
    ASSIGN_OR_RETURN(std::string arg,
                     ReadString((*array)[i], absl::StrCat("command[", i, "]"), false));
    command.push_back(std::move(arg));
  }
  return command;
}

bool IsValidEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (c != '_' && !absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<std::map<std::string, std::string>> ReadEnv(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return Invalid("'env' must be an object");
  std::map<std::string, std::string> env;
  for (const auto& member : *object) {
    const absl::string_view name = ToView(member.key());
    if (!IsValidEnvName(name)) {
      return Invalid(absl::StrCat("'env' name '", name, "' must match [A-Za-z_][A-Za-z0-9_]*"));
    }
    // TRACIM_* carries the handshake (socket, secret, protocol versions): a
    // plugin must not be able to override what the broker hands it.
    if (absl::StartsWith(name, "TRACIM_")) {
      return Invalid(absl::StrCat("'env' name '", name, "' must not start with TRACIM_"));
    }
    ASSIGN_OR_RETURN(std::string v, ReadString(member.value(), absl::StrCat("env.", name), true));
    env.emplace(std::string(name), std::move(v));
  }
  return env;
}

absl::StatusOr<ResourceLimits> ReadLimits(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return Invalid("'limits' must be an object");
  RETURN_IF_ERROR(CheckKnownFields(*object, kLimitFields, "limits."));
  ResourceLimits limits;
  const std::pair<absl::string_view, std::optional<uint64_t>*> fields[] = {
      {"memory_bytes", &limits.memory_bytes},
      {"cpu_seconds", &limits.cpu_seconds},
      {"open_files", &limits.open_files},
      {"processes", &limits.processes},
  };
  for (const auto& [key, target] : fields) {
    const json::value* v = object->if_contains(json::string_view(key.data(), key.size()));
    if (v == nullptr) continue;
    ASSIGN_OR_RETURN(*target, ReadPositiveInteger(*v, absl::StrCat("limits.", key), UINT64_MAX));
  }
  return limits;
}

absl::StatusOr<uint64_t> ReadBoundedInteger(const json::value& value, absl::string_view field,
                                            uint64_t min, uint64_t max) {
  uint64_t n = 0;
  if (const int64_t* i = value.if_int64(); i != nullptr && *i >= 0) {
    n = static_cast<uint64_t>(*i);
  } else if (const uint64_t* u = value.if_uint64(); u != nullptr) {
    n = *u;
  } else {
    return Invalid(absl::StrCat("'", field, "' must be an integer from ", min, " to ", max));
  }
  if (n < min || n > max) {
    return Invalid(absl::StrCat("'", field, "' must be an integer from ", min, " to ", max));
  }
  return n;
}

absl::StatusOr<std::optional<absl::Duration>> ReadOptionalMillis(const json::object& object,
                                                                 absl::string_view key,
                                                                 absl::string_view prefix) {
  const json::value* v = object.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::nullopt;
  ASSIGN_OR_RETURN(uint64_t ms, ReadPositiveInteger(*v, absl::StrCat(prefix, key), kMaxTimeoutMs));
  return absl::Milliseconds(ms);
}

absl::StatusOr<std::optional<int>> ReadOptionalCount(const json::object& object,
                                                     absl::string_view key,
                                                     absl::string_view prefix, uint64_t min,
                                                     uint64_t max) {
  const json::value* v = object.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::nullopt;
  ASSIGN_OR_RETURN(uint64_t n, ReadBoundedInteger(*v, absl::StrCat(prefix, key), min, max));
  return static_cast<int>(n);
}

absl::StatusOr<RestartOverrides> ReadRestart(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return Invalid("'restart' must be an object");
  RETURN_IF_ERROR(CheckKnownFields(*object, kRestartFields, "restart."));
  RestartOverrides r;
  ASSIGN_OR_RETURN(r.backoff_initial,
                   ReadOptionalMillis(*object, "backoff_initial_ms", "restart."));
  ASSIGN_OR_RETURN(r.backoff_max, ReadOptionalMillis(*object, "backoff_max_ms", "restart."));
  ASSIGN_OR_RETURN(r.max_failures, ReadOptionalCount(*object, "max_failures", "restart.", 0, 1000));
  ASSIGN_OR_RETURN(r.failure_window, ReadOptionalMillis(*object, "failure_window_ms", "restart."));
  return r;
}

absl::StatusOr<HealthOverrides> ReadHealth(const json::value& value) {
  const json::object* object = value.if_object();
  if (object == nullptr) return Invalid("'health' must be an object");
  RETURN_IF_ERROR(CheckKnownFields(*object, kHealthFields, "health."));
  HealthOverrides h;
  ASSIGN_OR_RETURN(h.interval, ReadOptionalMillis(*object, "interval_ms", "health."));
  ASSIGN_OR_RETURN(h.timeout, ReadOptionalMillis(*object, "timeout_ms", "health."));
  ASSIGN_OR_RETURN(h.failures, ReadOptionalCount(*object, "failures", "health.", 1, 100));
  return h;
}

// Builds the manifest from the JSON alone; command[0] and library are still
// as written.
absl::StatusOr<PluginManifest> ReadFields(const json::object& root) {
  RETURN_IF_ERROR(CheckKnownFields(root, kTopLevelFields, ""));
  PluginManifest manifest;

  const json::value* command = root.if_contains("command");
  const json::value* library = root.if_contains("library");
  if ((command == nullptr) == (library == nullptr)) {
    return Invalid("exactly one of 'command' or 'library' is required");
  }
  if (command != nullptr) {
    ASSIGN_OR_RETURN(manifest.command, ReadCommand(*command));
  } else {
    ASSIGN_OR_RETURN(std::string path, ReadString(*library, "library", false));
    manifest.library = path;
  }

  const json::value* version = root.if_contains("version");
  if (version == nullptr) return Invalid("'version' is required");
  ASSIGN_OR_RETURN(manifest.version, ReadString(*version, "version", false));

  if (const json::value* v = root.if_contains("description")) {
    ASSIGN_OR_RETURN(manifest.description, ReadString(*v, "description", true));
  }
  if (const json::value* v = root.if_contains("start_timeout_ms")) {
    ASSIGN_OR_RETURN(uint64_t ms, ReadPositiveInteger(*v, "start_timeout_ms", kMaxTimeoutMs));
    manifest.start_timeout = absl::Milliseconds(ms);
  }
  if (const json::value* v = root.if_contains("shutdown_grace_ms")) {
    ASSIGN_OR_RETURN(uint64_t ms, ReadPositiveInteger(*v, "shutdown_grace_ms", kMaxTimeoutMs));
    manifest.shutdown_grace = absl::Milliseconds(ms);
  }
  if (const json::value* v = root.if_contains("env")) {
    ASSIGN_OR_RETURN(manifest.env, ReadEnv(*v));
  }
  if (const json::value* v = root.if_contains("limits")) {
    ASSIGN_OR_RETURN(manifest.limits, ReadLimits(*v));
  }
  if (const json::value* v = root.if_contains("restart")) {
    ASSIGN_OR_RETURN(manifest.restart, ReadRestart(*v));
  }
  if (const json::value* v = root.if_contains("health")) {
    ASSIGN_OR_RETURN(manifest.health, ReadHealth(*v));
  }
  if (const json::value* v = root.if_contains("user")) {
    ASSIGN_OR_RETURN(manifest.user, ReadString(*v, "user", false));
  }
  if (const json::value* v = root.if_contains("group")) {
    ASSIGN_OR_RETURN(manifest.group, ReadString(*v, "group", false));
  }
  return manifest;
}

bool IsExecutableFile(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

// Looks `name` up in $PATH as execvp would, except that empty and relative
// entries are skipped: the result must be absolute and must not depend on
// the broker's working directory.
std::optional<fs::path> SearchPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty() || dir[0] != '/') continue;
    fs::path candidate = fs::path(std::string(dir)) / name;
    if (IsExecutableFile(candidate)) return candidate.lexically_normal();
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ResolveCommand(const std::string& command, const fs::path& folder) {
  if (command.find('/') == std::string::npos) {
    std::optional<fs::path> found = SearchPath(command);
    if (!found) return Invalid(absl::StrCat("command '", command, "' not found in PATH"));
    return found->string();
  }
  const fs::path written(command);
  const fs::path path = (written.is_absolute() ? written : folder / written).lexically_normal();
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return Invalid(absl::StrCat("command '", command, "' not found",
                                written.is_absolute() ? "" : " in the plugin folder"));
  }
  if (ec) return Invalid(absl::StrCat("command '", command, "' cannot be read: ", ec.message()));
  if (status.type() != fs::file_type::regular) {
    return Invalid(absl::StrCat("command '", command, "' is not a regular file"));
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return Invalid(absl::StrCat("command '", command, "' is not executable"));
  }
  return path.string();
}

absl::StatusOr<fs::path> ResolveLibrary(const fs::path& library, const fs::path& folder) {
  const fs::path path = (library.is_absolute() ? library : folder / library).lexically_normal();
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return Invalid(absl::StrCat("library '", library.string(), "' not found",
                                library.is_absolute() ? "" : " in the plugin folder"));
  }
  if (ec) {
    return Invalid(absl::StrCat("library '", library.string(), "' cannot be read: ", ec.message()));
  }
  if (status.type() != fs::file_type::regular) {
    return Invalid(absl::StrCat("library '", library.string(), "' is not a regular file"));
  }
  return path;
}

absl::StatusOr<PluginManifest> Parse(const std::string& text, const fs::path& folder,
                                     const std::string& name) {
  ASSIGN_OR_RETURN(json::value root, ParseJson(text));
  const json::object* object = root.if_object();
  if (object == nullptr) return Invalid("the manifest must be a JSON object");
  ASSIGN_OR_RETURN(PluginManifest manifest, ReadFields(*object));

  std::error_code ec;
  manifest.folder = fs::absolute(folder, ec);
  if (ec) return Invalid(absl::StrCat("plugin folder cannot be resolved: ", ec.message()));
  manifest.name = name;
  if (!manifest.command.empty()) {
    ASSIGN_OR_RETURN(manifest.command[0], ResolveCommand(manifest.command[0], manifest.folder));
  } else {
    ASSIGN_OR_RETURN(manifest.library, ResolveLibrary(manifest.library, manifest.folder));
  }
  return manifest;
}

}  // namespace

absl::StatusOr<PluginManifest> ParsePluginManifest(const std::string& json,
                                                   const std::filesystem::path& folder,
                                                   const std::string& name) {
  // Nothing above throws on bad input; this only stops allocation failures
  // from crossing the API.
  try {
    return Parse(json, folder, name);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("parsing the manifest failed: ", e.what()));
  }
}

}  // namespace tracim::broker
