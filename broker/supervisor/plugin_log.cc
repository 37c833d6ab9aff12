#include "broker/supervisor/plugin_log.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/json/monotonic_resource.hpp"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value.hpp"
#include "spdlog/fmt/fmt.h"
#include "spdlog/logger.h"

namespace tracim::broker {
namespace {

namespace json = boost::json;
using Level = spdlog::level::level_enum;

// One line's worth of bucket credit (see PluginLog::capacity_).
constexpr int64_t kLine = 1'000'000'000;

std::optional<Level> LevelFromName(absl::string_view name) {
  struct Name {
    absl::string_view name;
    Level level;
  };
  static constexpr Name kNames[] = {
      {"trace", Level::trace},    {"debug", Level::debug},       {"info", Level::info},
      {"warn", Level::warn},      {"warning", Level::warn},      {"error", Level::err},
      {"err", Level::err},        {"critical", Level::critical}, {"crit", Level::critical},
      {"fatal", Level::critical}, {"panic", Level::critical},
  };
  for (const Name& n : kNames) {
    if (absl::EqualsIgnoreCase(name, n.name)) return n.level;
  }
  return std::nullopt;
}

// pino (Node.js) writes numeric levels.
std::optional<Level> LevelFromNumber(int64_t n) {
  switch (n) {
    case 10:
      return Level::trace;
    case 20:
      return Level::debug;
    case 30:
      return Level::info;
    case 40:
      return Level::warn;
    case 50:
      return Level::err;
    case 60:
      return Level::critical;
    default:
      return std::nullopt;
  }
}

Level StreamLevel(OutputStream stream) {
  return stream == OutputStream::kStderr ? Level::warn : Level::info;
}

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

// Appends `text` with control characters escaped: a plugin's text must not
// start a new log line nor drive the operator's terminal.
void AppendEscaped(std::string* out, absl::string_view text) {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!IsControl(text[i])) continue;
    out->append(text.data() + start, i - start);
    switch (text[i]) {
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        absl::StrAppendFormat(out, "\\x%02x", static_cast<unsigned char>(text[i]));
    }
    start = i + 1;
  }
  out->append(text.data() + start, text.size() - start);
}

std::string Escaped(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendEscaped(&out, text);
  return out;
}

absl::string_view View(json::string_view s) { return absl::string_view(s.data(), s.size()); }

// A key or string value can go bare in key=value when nothing in it could be
// mistaken for a separator.
bool IsBare(absl::string_view s) {
  if (s.empty()) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '"' || c == '=';
  });
}

void AppendKeyOrString(std::string* out, absl::string_view s) {
  if (IsBare(s)) {
    out->append(s.data(), s.size());
  } else {
    // JSON quoting escapes quotes and control characters.
    out->append(json::serialize(json::string_view(s.data(), s.size())));
  }
}

// Compact JSON, with numbers as a person writes them (Boost.JSON's own
// serializer writes 1.5 as "1.5E0").
void AppendJson(std::string* out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      out->push_back('{');
      bool first = true;
      for (const json::key_value_pair& field : v.get_object()) {
        if (!first) out->push_back(',');
        first = false;
        out->append(json::serialize(field.key()));
        out->push_back(':');
        AppendJson(out, field.value());
      }
      out->push_back('}');
      break;
    }
    case json::kind::array: {
      out->push_back('[');
      bool first = true;
      for (const json::value& element : v.get_array()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(out, element);
      }
      out->push_back(']');
      break;
    }
    case json::kind::double_:
      fmt::format_to(std::back_inserter(*out), "{}", v.get_double());
      break;
    default:  // strings (quoted and escaped), integers, bools, null
      out->append(json::serialize(v));
  }
}

void AppendValue(std::string* out, const json::value& v) {
  if (v.is_string()) {
    AppendKeyOrString(out, View(v.get_string()));
  } else {
    AppendJson(out, v);
  }
}

std::optional<Level> LevelOfValue(const json::value& v) {
  if (v.is_string()) return LevelFromName(View(v.get_string()));
  if (v.is_int64()) return LevelFromNumber(v.get_int64());
  if (v.is_uint64() && v.get_uint64() <= 100) {
    return LevelFromNumber(static_cast<int64_t>(v.get_uint64()));
  }
  return std::nullopt;
}

// Keys of hclog's records, else the plain ones of slog, logrus, zap and pino.
bool IsLevelKey(bool hclog, absl::string_view key) { return key == (hclog ? "@level" : "level"); }
bool IsMessageKey(bool hclog, absl::string_view key) {
  return hclog ? key == "@message" : key == "msg" || key == "message";
}
bool IsTimeKey(bool hclog, absl::string_view key) {
  return hclog ? key == "@timestamp" : key == "time" || key == "ts" || key == "timestamp";
}

std::optional<PluginLogRecord> RenderJsonRecord(OutputStream stream, const json::object& object) {
  const bool hclog = object.contains("@level") || object.contains("@message");
  PluginLogRecord record;
  record.level = StreamLevel(stream);
  bool recognized = false;
  const json::value* level = nullptr;
  const json::value* message = nullptr;
  const json::value* module = nullptr;
  for (const json::key_value_pair& field : object) {
    const absl::string_view key = View(field.key());
    if (IsLevelKey(hclog, key)) {
      recognized = true;
      // An unknown level stays visible as a field.
      if (std::optional<Level> l = LevelOfValue(field.value()); l && level == nullptr) {
        record.level = *l;
        level = &field.value();
      }
    } else if (message == nullptr && IsMessageKey(hclog, key)) {
      recognized = true;
      message = &field.value();
    } else if (hclog && module == nullptr && key == "@module" && field.value().is_string()) {
      module = &field.value();
    }
  }
  if (!recognized) return std::nullopt;

  // "module: message", or either alone; then the other fields.
  std::string& text = record.text;
  if (module != nullptr) AppendEscaped(&text, View(module->get_string()));
  if (message != nullptr && !(message->is_string() && message->get_string().empty())) {
    if (!text.empty()) text.append(": ");
    if (message->is_string()) {
      AppendEscaped(&text, View(message->get_string()));
    } else {
      AppendJson(&text, *message);
    }
  }
  for (const json::key_value_pair& field : object) {
    const json::value* v = &field.value();
    if (v == level || v == message || v == module) continue;
    if (IsTimeKey(hclog, View(field.key()))) continue;
    if (!text.empty()) text.push_back(' ');
    AppendKeyOrString(&text, View(field.key()));
    text.push_back('=');
    AppendValue(&text, *v);
  }
  return record;
}

// A JSON log record (see ParsePluginLogLine), or nullopt when `line` is not
// one.
std::optional<PluginLogRecord> ParseJsonRecord(OutputStream stream, absl::string_view line) {
  try {
    // Most records fit: parsing then allocates nothing but the result text.
    unsigned char buffer[4096];
    json::monotonic_resource resource(buffer);
    json::error_code ec;
    const json::value parsed =
        json::parse(json::string_view(line.data(), line.size()), ec, &resource);
    if (ec || !parsed.is_object()) return std::nullopt;
    return RenderJsonRecord(stream, parsed.get_object());
  } catch (const std::exception&) {
    return std::nullopt;  // out of memory: log the line as it is
  }
}

// "[LEVEL] text", optionally after a timestamp.
std::optional<PluginLogRecord> ParseBracketRecord(absl::string_view line) {
  size_t open = 0;
  if (!line.empty() && absl::ascii_isdigit(line[0])) {
    // A timestamp: digits and date/time punctuation, with a time in it, then
    // blanks. Bounded: the longest common formats are ~30 characters.
    constexpr absl::string_view kTimestampChars = "0123456789-/:.,+TZ ";
    const size_t end = line.find_first_not_of(kTimestampChars);
    if (end == absl::string_view::npos || end > 48 || line[end - 1] != ' ' ||
        !absl::StrContains(line.substr(0, end), ':')) {
      return std::nullopt;
    }
    open = end;
  }
  if (open >= line.size() || line[open] != '[') return std::nullopt;
  const size_t close = line.find(']', open);
  if (close == absl::string_view::npos) return std::nullopt;
  const std::optional<Level> level = LevelFromName(line.substr(open + 1, close - open - 1));
  if (!level) return std::nullopt;
  absl::string_view rest = line.substr(close + 1);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  return PluginLogRecord{*level, Escaped(rest)};
}

// Python logging's default format, "%(levelname)s:%(name)s:%(message)s".
std::optional<PluginLogRecord> ParsePythonRecord(absl::string_view line) {
  const size_t first = line.find(':');
  if (first == absl::string_view::npos) return std::nullopt;
  const absl::string_view name = line.substr(0, first);
  if (name.size() > 8 || !std::all_of(name.begin(), name.end(), absl::ascii_isupper)) {
    return std::nullopt;
  }
  const std::optional<Level> level = LevelFromName(name);
  if (!level) return std::nullopt;
  const size_t second = line.find(':', first + 1);
  if (second == absl::string_view::npos) return std::nullopt;
  const absl::string_view logger = line.substr(first + 1, second - first - 1);
  if (logger.empty() || std::any_of(logger.begin(), logger.end(),
                                    [](char c) { return static_cast<unsigned char>(c) <= 0x20; })) {
    return std::nullopt;
  }
  const absl::string_view message = line.substr(second + 1);
  std::string text = Escaped(logger);
  text.append(":");
  if (!message.empty()) {
    text.push_back(' ');
    AppendEscaped(&text, message);
  }
  return PluginLogRecord{*level, std::move(text)};
}

std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

absl::string_view Plural(uint64_t n) { return n == 1 ? "line" : "lines"; }

}  // namespace

PluginLogRecord ParsePluginLogLine(OutputStream stream, absl::string_view line) {
  std::optional<PluginLogRecord> record;
  if (!line.empty() && line.front() == '{') record = ParseJsonRecord(stream, line);
  if (!record) record = ParseBracketRecord(line);
  if (!record) record = ParsePythonRecord(line);
  if (!record) record = PluginLogRecord{StreamLevel(stream), Escaped(line)};
  return *std::move(record);
}

absl::Time PluginLog::SteadyNow() {
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

PluginLog::PluginLog(std::string plugin_name, Options options,
                     std::shared_ptr<spdlog::logger> logger, Clock clock)
    : name_(std::move(plugin_name)),
      options_(options),
      logger_(std::move(logger)),
      clock_(std::move(clock)),
      capacity_(static_cast<int64_t>(std::max<uint32_t>(options.burst, 1)) * kLine) {
  absl::MutexLock lock(&mu_);
  credit_ = capacity_;
  last_refill_ = clock_();
}

PluginLog::~PluginLog() { Flush(); }

void PluginLog::Line(OutputStream stream, absl::string_view line, int pid) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  Summarize(now, /*force=*/false);
  if (options_.rate > 0) {
    Refill(now);
    if (credit_ < kLine) {
      // The cheap path of a flood: counters and times only.
      ++dropped_;
      ++flood_dropped_;
      ++window_dropped_;
      last_drop_ = now;
      if (!flooding_) {
        flooding_ = true;
        flood_start_ = now;
        window_start_ = now;
      }
      return;
    }
    credit_ -= kLine;
  }
  ++logged_;
  const PluginLogRecord record = ParsePluginLogLine(stream, line);
  logger_->log(record.level, "[{} pid={}{}] {}", name_, pid,
               stream == OutputStream::kStderr ? " stderr" : "", record.text);
}

void PluginLog::Tick() {
  absl::MutexLock lock(&mu_);
  Summarize(clock_(), /*force=*/false);
}

void PluginLog::Flush() {
  absl::MutexLock lock(&mu_);
  Summarize(clock_(), /*force=*/true);
}

uint64_t PluginLog::lines_logged() const {
  absl::MutexLock lock(&mu_);
  return logged_;
}

uint64_t PluginLog::lines_dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void PluginLog::Refill(absl::Time now) {
  if (now <= last_refill_) return;  // a clock that stood still or went back
  const absl::Duration elapsed = now - last_refill_;
  last_refill_ = now;
  const int64_t room = capacity_ - credit_;
  if (room <= 0) return;
  const int64_t rate = options_.rate;
  // rate × elapsed nanoseconds would overflow after a long pause; a pause
  // long enough to fill the bucket simply fills it.
  const int64_t fill_ns = room / rate + 1;
  if (elapsed >= absl::Nanoseconds(fill_ns)) {
    credit_ = capacity_;
  } else {
    credit_ = std::min(capacity_, credit_ + rate * absl::ToInt64Nanoseconds(elapsed));
  }
}

void PluginLog::Summarize(absl::Time now, bool force) {
  if (!flooding_) return;
  if (!force && now - window_start_ < options_.summary_interval) return;
  if (window_dropped_ > 0) {
    logger_->warn(
        "plugin '{}': dropped {} output {} in the last {:.1f} s (rate limit {} lines/s, burst {})",
        name_, window_dropped_, Std(Plural(window_dropped_)),
        absl::ToDoubleSeconds(now - window_start_), options_.rate, options_.burst);
    window_dropped_ = 0;
    window_start_ = now;
    // The flood ends after a whole interval without drops (or now, forced).
    if (!force) return;
  }
  logger_->info("plugin '{}': output back under the rate limit after dropping {} {} in {:.1f} s",
                name_, flood_dropped_, Std(Plural(flood_dropped_)),
                absl::ToDoubleSeconds(last_drop_ - flood_start_));
  flooding_ = false;
  flood_dropped_ = 0;
}

}  // namespace tracim::broker
