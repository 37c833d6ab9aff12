// What happens to one line a plugin wrote on stdout or stderr: its level is
// read from the line (hclog JSON, "[LEVEL]" prefixes, Python's default
// format), it is rate limited per plugin (token bucket; dropped lines are
// counted and summarised), and it is logged tagged "[name pid=N]".
//
// Thread-safety: thread-safe (one absl::Mutex, never held while waiting on
// anything but the logger's sinks). In the broker, Line() is called from the
// child's launcher callback and Tick() from the supervisor's strand.
//
//   PluginLog log("hello", {.rate = 200, .burst = 1000}, spdlog::default_logger());
//   log.Line(OutputStream::kStderr, R"({"@level":"warn","@message":"slow"})", pid);
//     → warn "[hello pid=42 stderr] slow"
//   every second: log.Tick();   when the process has exited: log.Flush();
#ifndef TRACIM_BROKER_SUPERVISOR_PLUGIN_LOG_H_
#define TRACIM_BROKER_SUPERVISOR_PLUGIN_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broker/process/process_launcher.h"
#include "spdlog/common.h"

namespace spdlog {
class logger;
}

namespace tracim::broker {

// The level a line asks for and its text once the level markup is removed.
struct PluginLogRecord {
  spdlog::level::level_enum level = spdlog::level::info;
  std::string text;
};

// Reads the level of one output line. Formats, tried in this order:
//  - a JSON object with "@level" and/or "@message" (hashicorp hclog):
//    "<@module>: <@message> key=value ..."; "@timestamp" is dropped (the
//    broker's log has its own). Also "level" + "msg"/"message" (Go slog,
//    logrus, zap; pino's numeric levels 10..60), dropping "time"/"ts"/
//    "timestamp". Other fields follow as key=value in the object's order:
//    strings bare unless they need quotes, everything else as compact JSON.
//    An unknown level keeps the stream's level and stays as a field.
//  - "[LEVEL] text", optionally after a timestamp (hclog's text format
//    "2021-01-01T00:00:00.000Z [INFO]  text", Go's log "2009/11/10 23:00:00
//    [WARN] text"): the timestamp, the prefix and the blanks after it go.
//  - Python logging's default "LEVEL:logger:message" → "logger: message".
// Level names, any case ([...] and JSON) or upper case (Python): trace,
// debug, info, warn/warning, error/err, critical/crit/fatal/panic.
// Anything else (invalid JSON included) is returned whole at the stream's
// level: info for stdout, warn for stderr.
// Control characters (but tab) in the result are escaped (\n, \r, \xNN) so
// that a plugin cannot forge or split the broker's log lines.
PluginLogRecord ParsePluginLogLine(OutputStream stream, absl::string_view line);

class PluginLog {
 public:
  struct Options {
    // Sustained lines per second let through; 0 disables the limit.
    uint32_t rate = 200;
    // Lines let through at once after a quiet period (bucket size; >= 1).
    uint32_t burst = 1000;
    // Drops are summarised at most this often.
    absl::Duration summary_interval = absl::Seconds(1);
  };
  // Monotonic time; only differences are used.
  using Clock = std::function<absl::Time()>;
  // The default clock: std::chrono::steady_clock as an absl::Time.
  static absl::Time SteadyNow();

  PluginLog(std::string plugin_name, Options options, std::shared_ptr<spdlog::logger> logger,
            Clock clock = &PluginLog::SteadyNow);
  // Flush()es.
  ~PluginLog();

  PluginLog(const PluginLog&) = delete;
  PluginLog& operator=(const PluginLog&) = delete;

  // One line of output of process `pid` (without its "\n"). Over budget, the
  // line is only counted: no allocation, no parsing, no formatting. Before
  // the line, emits a due summary (see Tick).
  void Line(OutputStream stream, absl::string_view line, int pid);

  // Emits what is due: a summary of the lines dropped since the last one, once
  // summary_interval has passed since it (or since the first drop):
  //   warn "plugin 'X': dropped 12345 output lines in the last 1.0 s (rate
  //         limit 200 lines/s, burst 1000)"
  // and, after a whole interval without drops, the end of the flood:
  //   info "plugin 'X': output back under the rate limit after dropping
  //         54321 lines in 12.3 s" (first drop to last drop).
  // Line() does the same, so a timer is needed only to close a flood when
  // the plugin goes quiet: call it about every summary_interval.
  void Tick();

  // Emits at once, whatever the interval, the summary of lines dropped and
  // not reported yet and the end of the flood. For the end of a process's
  // output (it exited) and for shutdown. Idempotent.
  void Flush();

  // Lines logged, and lines dropped by the rate limit, since construction.
  uint64_t lines_logged() const;
  uint64_t lines_dropped() const;

 private:
  void Refill(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the current summary window if due (or `force`).
  void Summarize(absl::Time now, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const Options options_;
  const std::shared_ptr<spdlog::logger> logger_;
  const Clock clock_;
  // Bucket content in billionths of a line: refilling adds rate × elapsed
  // nanoseconds, exactly, with no rounding drift.
  const int64_t capacity_;

  mutable absl::Mutex mu_;
  int64_t credit_ ABSL_GUARDED_BY(mu_);
  absl::Time last_refill_ ABSL_GUARDED_BY(mu_);
  uint64_t logged_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // A flood: from its first drop until a whole summary interval passes
  // without one.
  bool flooding_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time flood_start_ ABSL_GUARDED_BY(mu_);
  absl::Time last_drop_ ABSL_GUARDED_BY(mu_);
  uint64_t flood_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  // The current summary window: since the flood began or the last summary.
  absl::Time window_start_ ABSL_GUARDED_BY(mu_);
  uint64_t window_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_LOG_H_
