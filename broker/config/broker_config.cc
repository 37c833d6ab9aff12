// Implementation of broker_config.h: the INI reader (ConfigParser-compatible
// subset, see docs/configuration.md) and the typed, validated BrokerConfig.
// Everything here is a pure function of its arguments (plus the file read in
// LoadBrokerConfig and `environ` in Environment::FromProcess).
#include "broker/config/broker_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "broker/common/status_macros.h"

extern char** environ;

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;

// ConfigParser's name for the section whose keys every section inherits.
constexpr char kDefaultSection[] = "DEFAULT";
constexpr char kEnvPrefix[] = "TRACIM_";
// Python stops at 10 levels; a little more room costs nothing, and a bound
// keeps a pathological chain of references from exhausting the stack.
constexpr int kMaxInterpolationDepth = 32;
// Bounds what a few self-doubling references (a = %(b)s%(b)s ...) can build.
constexpr size_t kMaxExpandedValueBytes = 1 << 20;
// A config file is small; this only stops `--config /dev/zero`.
constexpr size_t kMaxConfigFileBytes = 16 << 20;
constexpr int64_t kMaxPluginTimeoutMs = 3600 * 1000;  // one hour

// ---------------------------------------------------------------------------
// INI text → raw (unexpanded) sections.

struct RawValue {
  std::string key;
  std::vector<std::string> lines;  // first line, then continuation lines
  int line = 0;                    // 1-based line of the key
  size_t indent = 0;               // indentation of the key line
  std::string Joined() const {
    // As ConfigParser: lines joined with "\n", trailing blank lines dropped.
    std::string joined = absl::StrJoin(lines, "\n");
    joined.erase(absl::StripTrailingAsciiWhitespace(joined).size());
    return joined;
  }
};

struct RawSection {
  int line = 0;
  std::map<std::string, RawValue> values;
};

using RawIni = std::map<std::string, RawSection>;

absl::Status LineError(int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", message));
}

bool IsCommentStart(char c) { return c == '#' || c == ';'; }

absl::StatusOr<RawIni> ReadRawIni(absl::string_view text) {
  // A UTF-8 byte order mark (some editors write one) is not part of line 1.
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");
  RawIni ini;
  RawSection* section = nullptr;
  std::string section_name;
  RawValue* value = nullptr;  // the key that indented lines continue
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::ConsumeSuffix(&line, "\r");  // CRLF files
    const absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty()) {
      // Blank lines inside a multi-line value are kept (ConfigParser's
      // empty_lines_in_values); trailing ones are dropped when joining.
      if (value != nullptr) value->lines.emplace_back();
      continue;
    }
    if (IsCommentStart(stripped.front())) continue;  // also inside a value
    const size_t indent = line.size() - absl::StripLeadingAsciiWhitespace(line).size();
    if (value != nullptr && indent > value->indent) {
      value->lines.emplace_back(stripped);
      continue;
    }
    value = nullptr;

    if (stripped.front() == '[') {
      const size_t close = stripped.rfind(']');
      if (close == absl::string_view::npos) {
        return LineError(line_number, absl::StrCat("unterminated section header '", stripped,
                                                   "' (expected [name])"));
      }
      const absl::string_view after = absl::StripAsciiWhitespace(stripped.substr(close + 1));
      if (!after.empty() && !IsCommentStart(after.front())) {
        return LineError(line_number,
                         absl::StrCat("unexpected text '", after, "' after section header"));
      }
      section_name = std::string(absl::StripAsciiWhitespace(stripped.substr(1, close - 1)));
      if (section_name.empty()) return LineError(line_number, "empty section name");
      auto [it, inserted] = ini.try_emplace(section_name);
      if (!inserted) {
        return LineError(line_number, absl::StrCat("duplicate section [", section_name,
                                                   "] (first on line ", it->second.line, ")"));
      }
      it->second.line = line_number;
      section = &it->second;
      continue;
    }

    // ConfigParser splits at the first delimiter, so "a = b:c" is a → "b:c".
    const size_t delimiter = stripped.find_first_of("=:");
    if (delimiter == absl::string_view::npos) {
      return LineError(
          line_number,
          absl::StrCat("expected [section], 'key = value' or 'key: value', got '", stripped, "'"));
    }
    const std::string key(absl::StripAsciiWhitespace(stripped.substr(0, delimiter)));
    if (key.empty()) {
      return LineError(line_number,
                       absl::StrCat("missing key before '", stripped.substr(delimiter, 1), "'"));
    }
    if (section == nullptr) {
      return LineError(line_number, absl::StrCat("key '", key,
                                                 "' before any [section] header (a file "
                                                 "starts with one, e.g. [app:main])"));
    }
    auto [it, inserted] = section->values.try_emplace(key);
    if (!inserted) {
      return LineError(line_number,
                       absl::StrCat("duplicate key '", key, "' in section [", section_name,
                                    "] (first set on line ", it->second.line, ")"));
    }
    value = &it->second;
    value->key = key;
    value->line = line_number;
    value->indent = indent;
    value->lines.emplace_back(absl::StripAsciiWhitespace(stripped.substr(delimiter + 1)));
  }
  return ini;
}

// ---------------------------------------------------------------------------
// Interpolation, as ConfigParser's BasicInterpolation: a reference is looked
// up in the section being read, then [DEFAULT], then the built-in `here`;
// the referenced value is expanded in that same section's context.

class Interpolator {
 public:
  Interpolator(const RawIni& ini, const std::string& here) : ini_(ini), here_(here) {}

  // The expanded value of `value`, a key of `section`.
  absl::StatusOr<std::string> Expand(const std::string& section, const RawValue& value) {
    return ExpandIn(section, value, 0);
  }

 private:
  const RawValue* Lookup(const std::string& section, const std::string& name) const {
    for (const std::string* candidate : {&section, &default_name_}) {
      auto s = ini_.find(*candidate);
      if (s == ini_.end()) continue;
      auto v = s->second.values.find(name);
      if (v != s->second.values.end()) return &v->second;
    }
    return nullptr;
  }

  absl::StatusOr<std::string> ExpandIn(const std::string& section, const RawValue& value,
                                       int depth) {
    const auto cache_key = std::make_pair(section, value.key);
    if (auto cached = cache_.find(cache_key); cached != cache_.end()) return cached->second;
    if (depth > kMaxInterpolationDepth) {
      return LineError(value.line,
                       absl::StrCat("interpolation nested deeper than ", kMaxInterpolationDepth,
                                    " levels in key '", value.key, "'"));
    }
    active_.insert(value.key);
    absl::StatusOr<std::string> result = Substitute(section, value, depth);
    active_.erase(value.key);
    if (result.ok()) cache_.emplace(cache_key, *result);
    return result;
  }

  absl::StatusOr<std::string> Substitute(const std::string& section, const RawValue& value,
                                         int depth) {
    const std::string raw = value.Joined();
    std::string out;
    size_t pos = 0;
    while (pos < raw.size()) {
      const size_t percent = raw.find('%', pos);
      if (percent == std::string::npos) {
        out.append(raw, pos);
        break;
      }
      out.append(raw, pos, percent - pos);
      const char next = percent + 1 < raw.size() ? raw[percent + 1] : '\0';
      if (next == '%') {
        out.push_back('%');
        pos = percent + 2;
        continue;
      }
      if (next != '(') {
        return LineError(value.line, absl::StrCat("'%' must be followed by '%' or '(' in key '",
                                                  value.key, "' (write %% for a literal %)"));
      }
      const size_t close = raw.find(')', percent + 2);
      if (close == std::string::npos || close == percent + 2 || close + 1 >= raw.size() ||
          raw[close + 1] != 's') {
        const size_t end = close == std::string::npos ? raw.size() : close + 2;
        return LineError(value.line,
                         absl::StrCat("bad interpolation '", raw.substr(percent, end - percent),
                                      "' in key '", value.key, "' (expected %(name)s)"));
      }
      const std::string name = raw.substr(percent + 2, close - percent - 2);
      pos = close + 2;
      if (const RawValue* referenced = Lookup(section, name); referenced != nullptr) {
        if (active_.count(name) != 0) {
          return LineError(value.line, absl::StrCat("circular interpolation %(", name,
                                                    ")s in key '", value.key, "'"));
        }
        ASSIGN_OR_RETURN(const std::string expanded, ExpandIn(section, *referenced, depth + 1));
        out += expanded;
      } else if (name == "here") {
        out += here_;
      } else {
        return LineError(value.line, absl::StrCat("unknown interpolation %(", name, ")s in key '",
                                                  value.key, "'"));
      }
      if (out.size() > kMaxExpandedValueBytes) {
        return LineError(value.line,
                         absl::StrCat("key '", value.key, "' is longer than ",
                                      kMaxExpandedValueBytes, " bytes after interpolation"));
      }
    }
    return out;
  }

  const RawIni& ini_;
  const std::string here_;
  const std::string default_name_ = kDefaultSection;
  std::set<std::string> active_;  // keys being expanded (cycle detection)
  std::map<std::pair<std::string, std::string>, std::string> cache_;
};

// ---------------------------------------------------------------------------
// BrokerConfig.

// One effective value and where it came from (for messages).
struct Setting {
  std::string value;
  std::string section;  // file section, when from the file
  std::string env_var;  // variable name, when from the environment
};

// "broker.listen" or "broker.listen (from TRACIM_BROKER__LISTEN)".
absl::Status ValueError(const std::string& key, const Setting& setting, absl::string_view message) {
  std::string where = key;
  if (!setting.env_var.empty()) absl::StrAppend(&where, " (from ", setting.env_var, ")");
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", message));
}

bool IsPluginName(absl::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

// plugin.<name>.<setting>: three or more dot-separated parts.
bool IsPluginSettingKey(absl::string_view key) {
  return absl::StartsWith(key, "plugin.") && std::count(key.begin(), key.end(), '.') >= 2;
}

// A relative path is relative to the config file's folder, as in tracim.
absl::StatusOr<fs::path> ResolvePath(const std::string& key, const Setting& setting,
                                     const fs::path& here) {
  if (setting.value.empty()) {
    return ValueError(key, setting, "empty path (expected a path, relative to the config file)");
  }
  return (here / setting.value).lexically_normal();
}

// Empty means "unset" for the optional keys: lets an override clear a value
// the file sets (TRACIM_BROKER__RUNTIME_DIR=).
absl::StatusOr<std::optional<fs::path>> ResolveOptionalPath(const std::string& key,
                                                            const Setting& setting,
                                                            const fs::path& here) {
  if (setting.value.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(fs::path path, ResolvePath(key, setting, here));
  return path;
}

constexpr char kListenExpected[] = "(expected host:port, port 0-65535)";
constexpr char kIpv6ListenExpected[] = "(expected [IPv6 address]:port)";

bool ParsePort(absl::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return false;
  }
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Checks `value` ("host:port" or "[v6]:port") and returns a message without
// the key, or sets host (without brackets) and port.
std::string ParseListen(const std::string& value, std::string* host, uint16_t* port) {
  absl::string_view host_text;
  absl::string_view port_text;
  if (value.empty()) return absl::StrCat("empty value ", kListenExpected);
  if (value.front() == '[') {
    const size_t close = value.find(']');
    if (close == std::string::npos) {
      return absl::StrCat("unterminated '[' in '", value, "' ", kIpv6ListenExpected);
    }
    host_text = absl::string_view(value).substr(1, close - 1);
    const absl::string_view after = absl::string_view(value).substr(close + 1);
    if (after.empty()) return absl::StrCat("missing port in '", value, "' ", kIpv6ListenExpected);
    if (after.front() != ':') {
      return absl::StrCat("unexpected text after ']' in '", value, "' ", kIpv6ListenExpected);
    }
    in6_addr address;
    if (inet_pton(AF_INET6, std::string(host_text).c_str(), &address) != 1) {
      return absl::StrCat("invalid IPv6 address '", host_text, "' ", kIpv6ListenExpected);
    }
    port_text = after.substr(1);
  } else {
    const size_t colon = value.rfind(':');
    if (colon == std::string::npos) {
      return absl::StrCat("missing port in '", value, "' ", kListenExpected);
    }
    host_text = absl::string_view(value).substr(0, colon);
    port_text = absl::string_view(value).substr(colon + 1);
    if (host_text.empty()) return absl::StrCat("missing host in '", value, "' ", kListenExpected);
    if (absl::StrContains(host_text, ':')) {
      return absl::StrCat("IPv6 address must be in brackets in '", value, "' ",
                          kIpv6ListenExpected);
    }
    const bool looks_numeric = std::all_of(host_text.begin(), host_text.end(), [](char c) {
      return absl::ascii_isdigit(c) || c == '.';
    });
    if (looks_numeric) {
      in_addr address;
      if (inet_pton(AF_INET, std::string(host_text).c_str(), &address) != 1) {
        return absl::StrCat("invalid IPv4 address '", host_text, "' ", kListenExpected);
      }
    } else if (!std::all_of(host_text.begin(), host_text.end(), [](char c) {
                 return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_';
               })) {
      return absl::StrCat("invalid host '", host_text, "' ", kListenExpected);
    }
  }
  if (!ParsePort(port_text, port)) {
    return absl::StrCat("invalid port '", port_text, "' ", kListenExpected);
  }
  *host = std::string(host_text);
  return "";
}

absl::StatusOr<absl::Duration> ParseMillis(const std::string& key, const Setting& setting) {
  int64_t ms = 0;
  const std::string& v = setting.value;
  const bool digits = !v.empty() && v.size() <= 10 && std::all_of(v.begin(), v.end(), [](char c) {
    return absl::ascii_isdigit(c);
  });
  if (!digits || !absl::SimpleAtoi(v, &ms) || ms < 1 || ms > kMaxPluginTimeoutMs) {
    return ValueError(key, setting,
                      absl::StrCat("invalid value '", v,
                                   "' (expected an integer number of milliseconds from 1 to ",
                                   kMaxPluginTimeoutMs, ")"));
  }
  return absl::Milliseconds(ms);
}

// A decimal integer from `min` to `max` (at most 10 digits).
absl::StatusOr<int64_t> ParseBoundedInteger(const std::string& key, const Setting& setting,
                                            int64_t min, int64_t max) {
  int64_t n = 0;
  const std::string& v = setting.value;
  const bool digits = !v.empty() && v.size() <= 10 && std::all_of(v.begin(), v.end(), [](char c) {
    return absl::ascii_isdigit(c);
  });
  if (!digits || !absl::SimpleAtoi(v, &n) || n < min || n > max) {
    return ValueError(
        key, setting,
        absl::StrCat("invalid value '", v, "' (expected an integer from ", min, " to ", max, ")"));
  }
  return n;
}

using ApplyFn = absl::Status (*)(const std::string& key, const Setting& setting,
                                 BrokerConfig& config);

struct KnownKey {
  const char* name;
  ApplyFn apply;
};

// Every fixed key the broker reads; docs/configuration.md lists the same.
const KnownKey kKnownKeys[] = {
    {"plugin.folder_path",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.plugin_folder, ResolvePath(key, s, c.here));
       return absl::OkStatus();
     }},
    {"broker.listen",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       std::string host;
       uint16_t port = 0;
       if (std::string error = ParseListen(s.value, &host, &port); !error.empty()) {
         return ValueError(key, s, error);
       }
       c.listen_host = std::move(host);
       c.listen_port = port;
       return absl::OkStatus();
     }},
    {"broker.state_dir",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.state_dir, ResolvePath(key, s, c.here));
       return absl::OkStatus();
     }},
    {"broker.runtime_dir",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.runtime_dir, ResolveOptionalPath(key, s, c.here));
       return absl::OkStatus();
     }},
    {"backend.admin_password",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       if (s.value.empty()) {
         c.admin_password.reset();
       } else {
         c.admin_password = s.value;
       }
       return absl::OkStatus();
     }},
    {"broker.log_level",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       std::string level = absl::AsciiStrToLower(s.value);
       if (level == "warning") level = "warn";  // Python logging's spelling
       static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                     "error", "critical", "off"};
       if (kLevels.count(level) == 0) {
         return ValueError(key, s,
                           absl::StrCat("invalid level '", s.value,
                                        "' (expected trace, debug, info, warn, error, "
                                        "critical or off)"));
       }
       c.log_level = std::move(level);
       return absl::OkStatus();
     }},
    {"broker.plugin_start_timeout_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.plugin_start_timeout, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.plugin_shutdown_grace_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.plugin_shutdown_grace, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.plugin_runner",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.plugin_runner, ResolveOptionalPath(key, s, c.here));
       return absl::OkStatus();
     }},
    {"broker.backend_token",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       if (s.value.empty()) {
         c.backend_token.reset();
       } else if (s.value.size() < 16) {
         return ValueError(key, s, "too short (at least 16 characters)");
       } else {
         c.backend_token = s.value;
       }
       return absl::OkStatus();
     }},
    {"broker.max_body_bytes",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       uint64_t n = 0;
       const bool digits = !s.value.empty() && s.value.size() <= 13 &&
                           std::all_of(s.value.begin(), s.value.end(),
                                       [](char ch) { return absl::ascii_isdigit(ch); });
       if (!digits || !absl::SimpleAtoi(s.value, &n) || n < 1 || n > kMaxBodyBytesLimit) {
         return ValueError(key, s,
                           absl::StrCat("invalid value '", s.value,
                                        "' (expected an integer number of bytes from 1 to ",
                                        kMaxBodyBytesLimit, ")"));
       }
       c.max_body_bytes = n;
       return absl::OkStatus();
     }},
    {"broker.route_timeout_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.route_timeout, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.idle_poll_us",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(int64_t n, ParseBoundedInteger(key, s, 0, kMaxIdlePollMicros));
       c.idle_poll = absl::Microseconds(n);
       return absl::OkStatus();
     }},
    {"broker.event_queue_size",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       uint64_t n = 0;
       const bool digits = !s.value.empty() && s.value.size() <= 9 &&
                           std::all_of(s.value.begin(), s.value.end(),
                                       [](char ch) { return absl::ascii_isdigit(ch); });
       if (!digits || !absl::SimpleAtoi(s.value, &n) || n < 1 || n > kMaxEventQueueSize) {
         return ValueError(
             key, s,
             absl::StrCat("invalid value '", s.value, "' (expected an integer from 1 to ",
                          kMaxEventQueueSize, ")"));
       }
       c.event_queue_size = n;
       return absl::OkStatus();
     }},
    {"broker.event_ack_timeout_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.event_ack_timeout, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.plugin_log_rate",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(int64_t n, ParseBoundedInteger(key, s, 0, kMaxPluginLogLines));
       c.plugin_log_rate = static_cast<uint32_t>(n);
       return absl::OkStatus();
     }},
    {"broker.plugin_log_burst",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(int64_t n, ParseBoundedInteger(key, s, 1, kMaxPluginLogLines));
       c.plugin_log_burst = static_cast<uint32_t>(n);
       return absl::OkStatus();
     }},
    {"broker.restart_backoff_initial_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.restart_backoff_initial, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.restart_backoff_max_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.restart_backoff_max, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.restart_max_failures",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(int64_t n, ParseBoundedInteger(key, s, 0, 1000));
       c.restart_max_failures = static_cast<int>(n);
       return absl::OkStatus();
     }},
    {"broker.restart_failure_window_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.restart_failure_window, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.health_interval_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.health_interval, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.health_timeout_ms",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(c.health_timeout, ParseMillis(key, s));
       return absl::OkStatus();
     }},
    {"broker.health_failures",
     [](const std::string& key, const Setting& s, BrokerConfig& c) -> absl::Status {
       ASSIGN_OR_RETURN(int64_t n, ParseBoundedInteger(key, s, 1, 100));
       c.health_failures = static_cast<int>(n);
       return absl::OkStatus();
     }},
};

const KnownKey* FindKnownKey(absl::string_view key) {
  for (const KnownKey& known : kKnownKeys) {
    if (key == known.name) return &known;
  }
  return nullptr;
}

absl::Status ApplyPluginSetting(const std::string& key, const Setting& setting,
                                BrokerConfig& config) {
  const absl::string_view rest = absl::string_view(key).substr(sizeof("plugin.") - 1);
  const size_t dot = rest.find('.');
  const absl::string_view name = rest.substr(0, dot);
  const absl::string_view name_setting = rest.substr(dot + 1);
  if (!IsPluginName(name)) {
    return ValueError(key, setting,
                      absl::StrCat("invalid plugin name '", name, "' (expected [a-z0-9_]+)"));
  }
  if (name_setting.empty()) {
    return ValueError(key, setting, "missing setting name (expected plugin.<name>.<setting>)");
  }
  config.plugin_settings[std::string(name)][std::string(name_setting)] = setting.value;
  return absl::OkStatus();
}

// The key an override variable stands for (rest after TRACIM_, "__" → ".",
// lower case), or "" when the variable is not a config override.
std::string KeyForEnvVar(absl::string_view var) {
  if (!absl::ConsumePrefix(&var, kEnvPrefix) || !absl::StrContains(var, "__")) return "";
  return absl::AsciiStrToLower(absl::StrReplaceAll(var, {{"__", "."}}));
}

absl::Status FileError(const fs::path& file, int error) {
  const std::string message = absl::StrCat("cannot read config file '", file.string(),
                                           "': ", std::generic_category().message(error));
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::FailedPreconditionError(message);
  }
}

absl::StatusOr<std::string> ReadConfigFile(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(file, errno);
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return FileError(file, error);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat("cannot read config file '", file.string(),
                                                        "': larger than ",
                                                        kMaxConfigFileBytes >> 20, " MiB"));
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

Environment Environment::FromProcess() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const absl::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals == absl::string_view::npos) continue;
    // try_emplace keeps the first of duplicate names, as getenv() does.
    env.vars.try_emplace(std::string(text.substr(0, equals)), text.substr(equals + 1));
  }
  return env;
}

absl::StatusOr<IniFile> ParseIni(const std::string& text, const std::string& here) {
  ASSIGN_OR_RETURN(const RawIni raw, ReadRawIni(text));
  // Expand in file order, so that the first error reported is the first in
  // the file.
  std::vector<std::tuple<int, const std::string*, const RawValue*>> order;
  for (const auto& [section_name, section] : raw) {
    for (const auto& [key, value] : section.values)
      order.emplace_back(value.line, &section_name, &value);
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  IniFile ini;
  for (const auto& [section_name, section] : raw) ini.sections[section_name];
  Interpolator interpolator(raw, here);
  for (const auto& [line, section_name, value] : order) {
    ASSIGN_OR_RETURN(ini.sections[*section_name][value->key],
                     interpolator.Expand(*section_name, *value));
  }
  return ini;
}

std::string EnvVarForKey(const std::string& key) {
  return absl::StrCat(kEnvPrefix, absl::AsciiStrToUpper(absl::StrReplaceAll(key, {{".", "__"}})));
}

absl::StatusOr<BrokerConfig> ParseBrokerConfig(const std::string& text,
                                               const std::filesystem::path& file,
                                               const Environment& env) {
  BrokerConfig config;
  // As PasteDeploy: here = dirname(abspath(file)).
  std::error_code ec;
  fs::path absolute = file.empty() ? fs::current_path(ec) / "" : fs::absolute(file, ec);
  if (ec) absolute = file;
  config.file = absolute.lexically_normal();
  config.here = config.file.parent_path();
  config.plugin_folder = config.here / "plugins";
  config.state_dir = config.here / "var";
  const std::string here = config.here.string();

  absl::StatusOr<IniFile> ini = ParseIni(text, here);
  if (!ini.ok()) {
    return absl::Status(ini.status().code(),
                        absl::StrCat(config.file.string(), ": ", ini.status().message()));
  }

  // The effective settings: [DEFAULT], then [app:main] (which wins, as every
  // ConfigParser section inherits DEFAULT's keys), then the environment.
  std::map<std::string, Setting> settings;
  for (const char* section_name : {kDefaultSection, kAppSection}) {
    auto section = ini->sections.find(section_name);
    if (section == ini->sections.end()) continue;
    for (const auto& [key, value] : section->second) {
      settings[key] = Setting{value, section_name, ""};
    }
  }
  const bool has_other_sections =
      std::any_of(ini->sections.begin(), ini->sections.end(),
                  [](const auto& section) { return section.first != kDefaultSection; });
  if (ini->sections.count(kAppSection) == 0 && has_other_sections) {
    config.warnings.push_back(absl::StrCat("no [", kAppSection, "] section in ",
                                           config.file.string(),
                                           " (other sections are ignored; using defaults)"));
  }

  std::vector<std::string> env_warnings;
  for (const auto& [var, value] : env.vars) {
    const std::string key = KeyForEnvVar(var);
    if (key.empty()) continue;
    if (FindKnownKey(key) == nullptr && !IsPluginSettingKey(key)) {
      env_warnings.push_back(
          absl::StrCat("unknown environment override ", var, " (no key '", key, "'; ignored)"));
      continue;
    }
    // Only %(here)s: other '%' stay literal, so secrets need no escaping.
    settings[key] = Setting{absl::StrReplaceAll(value, {{"%(here)s", here}}), "", var};
  }

  for (const auto& [key, setting] : settings) {
    if (const KnownKey* known = FindKnownKey(key); known != nullptr) {
      RETURN_IF_ERROR(known->apply(key, setting, config));
    } else if (IsPluginSettingKey(key)) {
      RETURN_IF_ERROR(ApplyPluginSetting(key, setting, config));
    } else if (setting.section != kDefaultSection) {
      // [DEFAULT] is shared by every section (server, logging, ...): keys
      // there that the broker does not know are not meant for it.
      config.warnings.push_back(absl::StrCat("unknown key '", key, "' in ", config.file.string(),
                                             " [", setting.section, "] (ignored)"));
    }
  }
  config.warnings.insert(config.warnings.end(), env_warnings.begin(), env_warnings.end());
  return config;
}

absl::StatusOr<BrokerConfig> LoadBrokerConfig(const std::filesystem::path& file,
                                              const Environment& env) {
  ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(file));
  return ParseBrokerConfig(text, file, env);
}

}  // namespace tracim::broker
