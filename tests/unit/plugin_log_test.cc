// Unit tests for broker/supervisor/plugin_log: reading levels from plugin
// output lines, the per-plugin rate limit and its summaries. Time comes from
// a fake clock, so every count and every summary is exact.
#include "broker/supervisor/plugin_log.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"

// Counts every operator new of the test binary while `g_counting` is set, to
// show that dropping a line allocates nothing.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// GCC sees operator new inlined into callers and takes the free() below for
// a mismatch; it is this file's own matching pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace tracim::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Level = spdlog::level::level_enum;

// ---------------------------------------------------------------------------
// ParsePluginLogLine

struct Parsed {
  Level level;
  std::string text;
  bool operator==(const Parsed&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Parsed& p) {
    return os << spdlog::level::to_string_view(p.level).data() << " \"" << p.text << "\"";
  }
};

Parsed Parse(absl::string_view line, OutputStream stream = OutputStream::kStdout) {
  PluginLogRecord record = ParsePluginLogLine(stream, line);
  return Parsed{record.level, record.text};
}

TEST(ParsePluginLogLine, PlainLinesTakeTheStreamLevelInfoForStdoutWarnForStderr) {
  EXPECT_EQ(Parse("listening on :8080"), (Parsed{Level::info, "listening on :8080"}));
  EXPECT_EQ(Parse("Traceback (most recent call last):", OutputStream::kStderr),
            (Parsed{Level::warn, "Traceback (most recent call last):"}));
  EXPECT_EQ(Parse(""), (Parsed{Level::info, ""}));
}

TEST(ParsePluginLogLine, HclogJsonGivesItsLevelModuleMessageAndFields) {
  EXPECT_EQ(
      Parse(R"({"@level":"debug","@message":"serving","@module":"plugin.hello",)"
            R"("@timestamp":"2021-01-01T00:00:00.000000Z","port":8080,"socket":"/run/x.sock"})",
            OutputStream::kStderr),
      (Parsed{Level::debug, "plugin.hello: serving port=8080 socket=/run/x.sock"}));
}

TEST(ParsePluginLogLine, HclogLevelNamesInAnyCase) {
  const std::vector<std::pair<std::string, Level>> cases = {
      {"trace", Level::trace}, {"debug", Level::debug},    {"info", Level::info},
      {"warn", Level::warn},   {"WARNING", Level::warn},   {"error", Level::err},
      {"Error", Level::err},   {"fatal", Level::critical}, {"critical", Level::critical},
  };
  for (const auto& [name, level] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(Parse(R"({"@level":")" + name + R"(","@message":"m"})"), (Parsed{level, "m"}));
  }
}

TEST(ParsePluginLogLine, UnknownJsonLevelKeepsTheStreamLevelAndStaysAsAField) {
  EXPECT_EQ(Parse(R"({"@level":"verbose","@message":"m"})"),
            (Parsed{Level::info, "m @level=verbose"}));
  EXPECT_EQ(Parse(R"({"@level":"verbose","@message":"m"})", OutputStream::kStderr),
            (Parsed{Level::warn, "m @level=verbose"}));
  EXPECT_EQ(Parse(R"({"@level":3,"@message":"m"})"), (Parsed{Level::info, "m @level=3"}));
}

TEST(ParsePluginLogLine, MalformedJsonIsTheRawLineAtTheStreamLevel) {
  const std::string cut = R"({"@level":"error","@message":"half a li [line truncated])";
  EXPECT_EQ(Parse(cut), (Parsed{Level::info, cut}));
  EXPECT_EQ(Parse(cut, OutputStream::kStderr), (Parsed{Level::warn, cut}));
  EXPECT_EQ(Parse("{not json"), (Parsed{Level::info, "{not json"}));
  EXPECT_EQ(Parse(R"({"@level":"error"} trailing)"),
            (Parsed{Level::info, R"({"@level":"error"} trailing)"}));
}

TEST(ParsePluginLogLine, JsonThatIsNotALogRecordIsRaw) {
  EXPECT_EQ(Parse(R"({"users":[1,2],"ok":true})"),
            (Parsed{Level::info, R"({"users":[1,2],"ok":true})"}));
  EXPECT_EQ(Parse(R"(["a","b"])"), (Parsed{Level::info, R"(["a","b"])"}));
}

TEST(ParsePluginLogLine, FieldsAreCompactAndQuotedOnlyWhenNeeded) {
  EXPECT_EQ(
      Parse(R"({"@level":"info","@message":"m","name":"a b","eq":"x=y","empty":"",)"
            R"("obj":{"a":[1,2.5,null]},"f":1.5,"n":-3,"big":18446744073709551615,)"
            R"("t":true,"nil":null,"a key":1,"café":"crème"})"),
      (Parsed{Level::info, R"(m name="a b" eq="x=y" empty="" obj={"a":[1,2.5,null]} f=1.5 n=-3 )"
                           R"(big=18446744073709551615 t=true nil=null "a key"=1 café=crème)"}));
}

TEST(ParsePluginLogLine, JsonRecordWithoutMessageShowsItsFields) {
  EXPECT_EQ(Parse(R"({"@level":"warn","retries":3})"), (Parsed{Level::warn, "retries=3"}));
  EXPECT_EQ(Parse(R"({"@level":"warn","@module":"m","n":1})"), (Parsed{Level::warn, "m n=1"}));
  EXPECT_EQ(Parse(R"({"@level":"warn","@message":"","n":1})"), (Parsed{Level::warn, "n=1"}));
  EXPECT_EQ(Parse(R"({"@level":"info","@message":{"a":1}})"), (Parsed{Level::info, R"({"a":1})"}));
}

TEST(ParsePluginLogLine, PlainJsonLoggersSlogZapAndPino) {
  // Go log/slog.
  EXPECT_EQ(Parse(R"({"time":"2023-08-01T10:00:00Z","level":"WARN","msg":"disk low","free":12})"),
            (Parsed{Level::warn, "disk low free=12"}));
  // zap.
  EXPECT_EQ(Parse(R"({"level":"error","ts":1690884000.5,"caller":"main.go:12","msg":"boom"})"),
            (Parsed{Level::err, "boom caller=main.go:12"}));
  // pino (numeric levels).
  EXPECT_EQ(Parse(R"({"level":50,"time":1690884000000,"pid":7,"hostname":"h","msg":"failed"})"),
            (Parsed{Level::err, "failed pid=7 hostname=h"}));
  EXPECT_EQ(Parse(R"({"level":30,"msg":"ok"})"), (Parsed{Level::info, "ok"}));
  // "message" works as well as "msg"; hclog keys are not special here.
  EXPECT_EQ(Parse(R"({"level":"debug","message":"hi","@timestamp":"x"})"),
            (Parsed{Level::debug, "hi @timestamp=x"}));
}

TEST(ParsePluginLogLine, EscapesControlCharactersSoThePluginCannotForgeLogLines) {
  EXPECT_EQ(Parse(R"({"@level":"info","@message":"a\nINFO fake\r\u001b[31mred\tok"})"),
            (Parsed{Level::info, "a\\nINFO fake\\r\\x1b[31mred\tok"}));
  EXPECT_EQ(Parse("raw\x1b[2Jline\x7f\r"), (Parsed{Level::info, "raw\\x1b[2Jline\\x7f\\r"}));
  EXPECT_EQ(Parse(R"({"@level":"info","@message":"m","k":"v\nw"})"),
            (Parsed{Level::info, R"(m k="v\nw")"}));
}

TEST(ParsePluginLogLine, BracketPrefixGivesTheLevelAndIsStripped) {
  const std::vector<std::tuple<std::string, Level, std::string>> cases = {
      {"[TRACE] t", Level::trace, "t"},
      {"[DEBUG] d", Level::debug, "d"},
      {"[INFO] i", Level::info, "i"},
      {"[WARN] w", Level::warn, "w"},
      {"[WARNING] w", Level::warn, "w"},
      {"[ERROR] e", Level::err, "e"},
      {"[ERR] e", Level::err, "e"},
      {"[error] lower case", Level::err, "lower case"},
      {"[INFO]", Level::info, ""},
      // hclog's text format: level padded to five, then the module.
      {"2021-01-01T00:00:00.000Z [INFO]  plugin.hello: started: port=1", Level::info,
       "plugin.hello: started: port=1"},
      {"2021-01-01T00:00:00.000+0100 [WARN]  slow", Level::warn, "slow"},
      // Go's log package.
      {"2009/11/10 23:00:00 [ERROR] boom", Level::err, "boom"},
  };
  for (const auto& [line, level, text] : cases) {
    SCOPED_TRACE(line);
    EXPECT_EQ(Parse(line, OutputStream::kStderr), (Parsed{level, text}));
  }
}

TEST(ParsePluginLogLine, BracketsThatAreNotALevelPrefixAreRaw) {
  for (const std::string line :
       {"[1/3] building", "[NOTICE] n", "[INFO missing close", " [INFO] indented",
        "12 [ERROR] no time in the timestamp", "2021-01-01 x [INFO] text before",
        "2021-01-01T00:00:00Z[INFO] no blank", "see [INFO] later"}) {
    SCOPED_TRACE(line);
    EXPECT_EQ(Parse(line), (Parsed{Level::info, line}));
  }
}

TEST(ParsePluginLogLine, PythonDefaultFormat) {
  EXPECT_EQ(Parse("WARNING:root:disk low", OutputStream::kStderr),
            (Parsed{Level::warn, "root: disk low"}));
  EXPECT_EQ(Parse("ERROR:tracim.plugin:failed: x", OutputStream::kStderr),
            (Parsed{Level::err, "tracim.plugin: failed: x"}));
  EXPECT_EQ(Parse("DEBUG:asyncio:Using selector", OutputStream::kStderr),
            (Parsed{Level::debug, "asyncio: Using selector"}));
  EXPECT_EQ(Parse("INFO:root:", OutputStream::kStderr), (Parsed{Level::info, "root:"}));
  EXPECT_EQ(Parse("CRITICAL:root:gone", OutputStream::kStderr),
            (Parsed{Level::critical, "root: gone"}));
}

TEST(ParsePluginLogLine, ThingsThatLookLikePythonButAreNotAreRaw) {
  for (const std::string line :
       {"Warning:root:x", "NOTICE:root:x", "ERROR:two words:x", "ERROR::empty logger",
        "ERROR:no second colon", "http://example.com/", "INFO"}) {
    SCOPED_TRACE(line);
    EXPECT_EQ(Parse(line, OutputStream::kStderr), (Parsed{Level::warn, line}));
  }
}

// ---------------------------------------------------------------------------
// PluginLog

class PluginLogTest : public ::testing::Test {
 protected:
  PluginLogTest() {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_st>(out_);
    logger_ = std::make_shared<spdlog::logger>("test", sink_);
    logger_->set_pattern("%l %v");
    logger_->set_level(spdlog::level::trace);
  }

  std::unique_ptr<PluginLog> Make(uint32_t rate, uint32_t burst,
                                  absl::Duration interval = absl::Seconds(1)) {
    return std::make_unique<PluginLog>(
        "hello", PluginLog::Options{.rate = rate, .burst = burst, .summary_interval = interval},
        logger_, [this] { return now_; });
  }

  // Lines logged since the last call.
  std::vector<std::string> Take() {
    std::string text = out_.str();
    out_.str("");
    std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
    return lines;
  }

  void Lines(PluginLog& log, int n) {
    for (int i = 0; i < n; ++i) log.Line(OutputStream::kStdout, "x", 42);
  }

  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  absl::Time now_ = absl::UnixEpoch() + absl::Hours(1000);
};

TEST_F(PluginLogTest, TagsEveryLineWithNameAndPidAndMarksStderr) {
  auto log = Make(200, 1000);
  log->Line(OutputStream::kStdout, "hi", 42);
  log->Line(OutputStream::kStderr, "oops", 42);
  log->Line(OutputStream::kStderr, R"({"@level":"debug","@message":"x","@module":"m"})", 43);
  log->Line(OutputStream::kStdout, "[ERROR] bad", 43);
  log->Line(OutputStream::kStderr, "INFO:root:fine", 43);
  EXPECT_THAT(Take(), ElementsAre("info [hello pid=42] hi", "warning [hello pid=42 stderr] oops",
                                  "debug [hello pid=43 stderr] m: x", "error [hello pid=43] bad",
                                  "info [hello pid=43 stderr] root: fine"));
  EXPECT_EQ(log->lines_logged(), 5u);
  EXPECT_EQ(log->lines_dropped(), 0u);
}

TEST_F(PluginLogTest, BurstPassesThenLinesAreDroppedAndCounted) {
  auto log = Make(10, 5);
  Lines(*log, 8);
  EXPECT_EQ(Take().size(), 5u);
  EXPECT_EQ(log->lines_logged(), 5u);
  EXPECT_EQ(log->lines_dropped(), 3u);
}

TEST_F(PluginLogTest, RefillsExactlyAtTheRate) {
  auto log = Make(10, 5);  // one line per 100 ms
  Lines(*log, 5);
  now_ += absl::Milliseconds(99);
  Lines(*log, 1);
  EXPECT_EQ(log->lines_dropped(), 1u);
  now_ += absl::Milliseconds(1);
  Lines(*log, 2);
  EXPECT_EQ(log->lines_logged(), 6u);
  EXPECT_EQ(log->lines_dropped(), 2u);
  now_ += absl::Milliseconds(250);  // two lines and a half
  Lines(*log, 3);
  EXPECT_EQ(log->lines_logged(), 8u);
  now_ += absl::Milliseconds(50);  // the half left over, and this half
  Lines(*log, 2);
  EXPECT_EQ(log->lines_logged(), 9u);
  EXPECT_EQ(log->lines_dropped(), 4u);
}

TEST_F(PluginLogTest, BucketHoldsAtMostTheBurstAfterALongPause) {
  auto log = Make(1000, 3);
  Lines(*log, 3);
  now_ += absl::Hours(24 * 365);  // large enough to overflow rate × ns
  Lines(*log, 5);
  EXPECT_EQ(log->lines_logged(), 6u);
  EXPECT_EQ(log->lines_dropped(), 2u);
}

TEST_F(PluginLogTest, AClockGoingBackwardsGivesNoCredit) {
  auto log = Make(10, 1);
  Lines(*log, 1);
  now_ -= absl::Seconds(10);
  Lines(*log, 1);
  now_ += absl::Seconds(10);  // back where it was: still no time elapsed
  Lines(*log, 1);
  EXPECT_EQ(log->lines_logged(), 1u);
  now_ += absl::Milliseconds(100);
  Lines(*log, 1);
  EXPECT_EQ(log->lines_logged(), 2u);
}

TEST_F(PluginLogTest, RateZeroLetsEverythingThrough) {
  auto log = Make(0, 1);
  Lines(*log, 5000);
  EXPECT_EQ(log->lines_logged(), 5000u);
  EXPECT_EQ(log->lines_dropped(), 0u);
  log->Tick();
  EXPECT_EQ(Take().size(), 5000u);
}

TEST_F(PluginLogTest, SummarisesDropsOncePerIntervalWithExactText) {
  auto log = Make(10, 5);
  Lines(*log, 5);
  Lines(*log, 3);  // dropped; the flood begins now
  EXPECT_EQ(Take().size(), 5u);
  now_ += absl::Milliseconds(999);
  log->Tick();
  EXPECT_THAT(Take(), IsEmpty());
  now_ += absl::Milliseconds(1);
  log->Tick();
  EXPECT_THAT(Take(), ElementsAre("warning plugin 'hello': dropped 3 output lines in the last "
                                  "1.0 s (rate limit 10 lines/s, burst 5)"));
  log->Tick();
  EXPECT_THAT(Take(), IsEmpty());
}

TEST_F(PluginLogTest, SteadyFloodGivesOneSummaryPerIntervalAndPassesTheRate) {
  auto log = Make(10, 5);
  // 1000 lines/s for 3 s: 5 (burst) + 10/s pass.
  for (int i = 0; i < 3000; ++i) {
    Lines(*log, 1);
    now_ += absl::Milliseconds(1);
    if (i % 100 == 0) log->Tick();
  }
  std::vector<std::string> lines = Take();
  std::vector<std::string> summaries;
  int passed = 0;
  for (const std::string& line : lines) {
    if (absl::StartsWith(line, "info [hello pid=42] x")) {
      ++passed;
    } else {
      summaries.push_back(line);
    }
  }
  // Windows [5 ms, 1005 ms) and [1005 ms, 2005 ms): 1000 lines each, of
  // which 10 passed (one per 100 ms); the third is not over at 3000 ms.
  EXPECT_THAT(summaries,
              ElementsAre("warning plugin 'hello': dropped 990 output lines in the last 1.0 s "
                          "(rate limit 10 lines/s, burst 5)",
                          "warning plugin 'hello': dropped 990 output lines in the last 1.0 s "
                          "(rate limit 10 lines/s, burst 5)"));
  EXPECT_EQ(passed, 5 + 30 - 1);
  EXPECT_EQ(log->lines_logged(), 34u);
  EXPECT_EQ(log->lines_dropped(), 2966u);
}

TEST_F(PluginLogTest, SummaryComesBeforeTheLineThatFindsItDue) {
  auto log = Make(1, 1);
  Lines(*log, 2);
  now_ += absl::Seconds(1);
  log->Line(OutputStream::kStdout, "after", 42);
  EXPECT_THAT(Take(), ElementsAre("info [hello pid=42] x",
                                  "warning plugin 'hello': dropped 1 output line in the last 1.0 s "
                                  "(rate limit 1 lines/s, burst 1)",
                                  "info [hello pid=42] after"));
}

TEST_F(PluginLogTest, FloodEndsAfterAWholeIntervalWithoutDropsAndLinesPassAgain) {
  auto log = Make(10, 5);
  Lines(*log, 5);
  Lines(*log, 2);  // t = 0
  now_ += absl::Milliseconds(400);
  Lines(*log, 6);  // 4 pass, 2 dropped; last drop at t = 0.4 s
  now_ += absl::Milliseconds(600);
  log->Tick();  // t = 1.0 s
  Take();
  now_ += absl::Milliseconds(999);
  log->Tick();
  EXPECT_THAT(Take(), IsEmpty());
  now_ += absl::Milliseconds(1);
  log->Tick();  // t = 2.0 s: a whole interval without drops
  EXPECT_THAT(Take(), ElementsAre("info plugin 'hello': output back under the rate limit after "
                                  "dropping 4 lines in 0.4 s"));
  log->Tick();
  EXPECT_THAT(Take(), IsEmpty());
  // The bucket refilled: a burst passes again.
  Lines(*log, 5);
  EXPECT_EQ(Take().size(), 5u);
  // A new flood is counted from zero.
  Lines(*log, 1);
  now_ += absl::Seconds(1);
  log->Tick();
  EXPECT_THAT(Take(), ElementsAre("warning plugin 'hello': dropped 1 output line in the last 1.0 s "
                                  "(rate limit 10 lines/s, burst 5)"));
  EXPECT_EQ(log->lines_dropped(), 5u);
}

TEST_F(PluginLogTest, FlushReportsPendingDropsAndTheEndAtOnceAndOnlyOnce) {
  auto log = Make(10, 5);
  Lines(*log, 8);
  now_ += absl::Milliseconds(300);
  Take();
  log->Flush();
  EXPECT_THAT(Take(),
              ElementsAre("warning plugin 'hello': dropped 3 output lines in the last 0.3 s "
                          "(rate limit 10 lines/s, burst 5)",
                          "info plugin 'hello': output back under the rate limit after dropping "
                          "3 lines in 0.0 s"));
  log->Flush();
  log->Tick();
  EXPECT_THAT(Take(), IsEmpty());
}

TEST_F(PluginLogTest, DestructionFlushes) {
  auto log = Make(1, 1);
  Lines(*log, 2);
  Take();
  log.reset();
  EXPECT_THAT(Take(),
              ElementsAre("warning plugin 'hello': dropped 1 output line in the last 0.0 s "
                          "(rate limit 1 lines/s, burst 1)",
                          "info plugin 'hello': output back under the rate limit after dropping "
                          "1 line in 0.0 s"));
}

TEST_F(PluginLogTest, DroppingALineAllocatesNothing) {
  auto log = Make(1, 1);
  Lines(*log, 2);  // the flood has begun: no first-drop work left
  const std::string line(10000, 'x');
  const std::string json = R"({"@level":"error","@message":"not even parsed"})";
  g_allocations = 0;
  g_counting = true;
  // 0.5 s of lines: less than a line of credit, and no summary due.
  for (int i = 0; i < 10000; ++i) {
    now_ += absl::Microseconds(50);
    log->Line(OutputStream::kStderr, i % 2 == 0 ? line : json, 42);
  }
  log->Tick();
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_EQ(log->lines_dropped(), 10001u);
  // The counter itself sees allocations (the test would be void otherwise).
  g_counting = true;
  auto* probe = new std::string(100, 'x');
  g_counting = false;
  delete probe;
  EXPECT_GE(g_allocations.load(), 1);
}

}  // namespace
}  // namespace tracim::broker
