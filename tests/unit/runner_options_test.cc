// Tests for the runner's command line: both launch forms, every refusal with
// its exact message, and FormatRunnerOptions → ParseRunnerOptions giving back
// the same options.
#include "plugin_runner/runner_options.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::runner {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;

using Args = std::vector<std::string>;

// The required options, to which each test appends the rest.
Args Required() { return {"--parent-pid", "4242", "--dir", "/plugins/tracim_backend_x"}; }

Args Concat(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void ExpectInvalid(const Args& args, const std::string& message) {
  absl::StatusOr<RunnerOptions> o = ParseRunnerOptions(args);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(o.status().message()), message);
}

void ExpectSameOptions(const RunnerOptions& a, const RunnerOptions& b) {
  EXPECT_EQ(a.parent_pid, b.parent_pid);
  EXPECT_EQ(a.dir, b.dir);
  EXPECT_EQ(a.rlimit_as, b.rlimit_as);
  EXPECT_EQ(a.rlimit_cpu, b.rlimit_cpu);
  EXPECT_EQ(a.rlimit_nofile, b.rlimit_nofile);
  EXPECT_EQ(a.rlimit_nproc, b.rlimit_nproc);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.library, b.library);
  EXPECT_EQ(a.command, b.command);
}

// --- Accepted command lines -------------------------------------------------

TEST(ParseRunnerOptions, ParsesTheCommandForm) {
  absl::StatusOr<RunnerOptions> o =
      ParseRunnerOptions(Concat(Required(), {"--", "/abs/plugin", "--port", "0"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->parent_pid, 4242);
  EXPECT_EQ(o->dir, "/plugins/tracim_backend_x");
  EXPECT_THAT(o->command, ElementsAre("/abs/plugin", "--port", "0"));
  EXPECT_EQ(o->library, "");
  EXPECT_EQ(o->rlimit_as, std::nullopt);
  EXPECT_EQ(o->rlimit_cpu, std::nullopt);
  EXPECT_EQ(o->rlimit_nofile, std::nullopt);
  EXPECT_EQ(o->rlimit_nproc, std::nullopt);
  EXPECT_EQ(o->user, std::nullopt);
  EXPECT_EQ(o->group, std::nullopt);
}

TEST(ParseRunnerOptions, ParsesTheLibraryFormWithEveryOption) {
  absl::StatusOr<RunnerOptions> o =
      ParseRunnerOptions({"--rlimit-as", "1073741824", "--rlimit-cpu", "60", "--rlimit-nofile",
                          "256", "--rlimit-nproc", "32", "--user", "nobody", "--group", "nogroup",
                          "--library", "/plugins/tracim_backend_x/libx.so", "--dir",
                          "/plugins/tracim_backend_x", "--parent-pid", "1"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->parent_pid, 1);
  EXPECT_EQ(o->dir, "/plugins/tracim_backend_x");
  EXPECT_EQ(o->rlimit_as, 1073741824u);
  EXPECT_EQ(o->rlimit_cpu, 60u);
  EXPECT_EQ(o->rlimit_nofile, 256u);
  EXPECT_EQ(o->rlimit_nproc, 32u);
  EXPECT_EQ(o->user, "nobody");
  EXPECT_EQ(o->group, "nogroup");
  EXPECT_EQ(o->library, "/plugins/tracim_backend_x/libx.so");
  EXPECT_THAT(o->command, IsEmpty());
}

TEST(ParseRunnerOptions, TakesEverythingAfterTheSeparatorAsTheCommand) {
  absl::StatusOr<RunnerOptions> o =
      ParseRunnerOptions(Concat(Required(), {"--", "/abs/plugin", "--dir", "--", "--library"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->dir, "/plugins/tracim_backend_x");
  EXPECT_EQ(o->library, "");
  EXPECT_THAT(o->command, ElementsAre("/abs/plugin", "--dir", "--", "--library"));
}

TEST(ParseRunnerOptions, AcceptsTheLargestRlimit) {
  absl::StatusOr<RunnerOptions> o = ParseRunnerOptions(
      Concat(Required(), {"--rlimit-as", "18446744073709551615", "--library", "/l.so"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->rlimit_as, 18446744073709551615u);
}

// --- Refused command lines --------------------------------------------------

TEST(ParseRunnerOptions, RequiresTheParentPid) {
  ExpectInvalid({}, "--parent-pid is required");
  ExpectInvalid({"--dir", "/d", "--library", "/l.so"}, "--parent-pid is required");
}

TEST(ParseRunnerOptions, RequiresTheDir) {
  ExpectInvalid({"--parent-pid", "1", "--library", "/l.so"}, "--dir is required");
  ExpectInvalid({"--parent-pid", "1", "--dir", "", "--library", "/l.so"}, "--dir is required");
}

TEST(ParseRunnerOptions, RequiresALibraryOrACommand) {
  ExpectInvalid(Required(), "exactly one of --library or -- COMMAND is required");
}

TEST(ParseRunnerOptions, RefusesBothALibraryAndACommand) {
  ExpectInvalid(Concat(Required(), {"--library", "/l.so", "--", "/abs/plugin"}),
                "exactly one of --library or -- COMMAND is required");
}

TEST(ParseRunnerOptions, RefusesASeparatorWithoutACommand) {
  ExpectInvalid(Concat(Required(), {"--"}), "--: missing command");
}

TEST(ParseRunnerOptions, RefusesAnOptionWithoutItsValue) {
  for (const char* option : {"--parent-pid", "--dir", "--library", "--user", "--group",
                             "--rlimit-as", "--rlimit-cpu", "--rlimit-nofile", "--rlimit-nproc"}) {
    ExpectInvalid(Concat(Required(), {option}), std::string(option) + ": missing value");
  }
}

TEST(ParseRunnerOptions, RefusesAParentPidThatIsNotAPositiveInteger) {
  for (const char* value : {"abc", "0", "-5", "", "12x", "1.5"}) {
    ExpectInvalid({"--parent-pid", value, "--dir", "/d", "--library", "/l.so"},
                  std::string("--parent-pid: expected a positive integer, got '") + value + "'");
  }
}

TEST(ParseRunnerOptions, RefusesAnRlimitThatIsNotAPositiveInteger) {
  for (const char* option : {"--rlimit-as", "--rlimit-cpu", "--rlimit-nofile", "--rlimit-nproc"}) {
    for (const char* value : {"0", "-1", "x", "", "18446744073709551616"}) {
      ExpectInvalid(Concat(Required(), {option, value, "--library", "/l.so"}),
                    std::string(option) + ": expected a positive integer, got '" + value + "'");
    }
  }
}

TEST(ParseRunnerOptions, RefusesAnUnknownOptionFollowedByAValue) {
  ExpectInvalid(Concat(Required(), {"--bogus", "x", "--library", "/l.so"}),
                "unknown option '--bogus'");
}

TEST(ParseRunnerOptions, RefusesACommandGivenWithoutTheSeparator) {
  ExpectInvalid(Concat(Required(), {"/abs/plugin", "arg"}), "unknown option '/abs/plugin'");
}

// An unknown option (or a stray word) that is the last argument is reported
// as unknown, not as an option missing its value.
TEST(ParseRunnerOptions, RefusesAnUnknownOptionThatIsTheLastArgument) {
  ExpectInvalid(Concat(Required(), {"--library", "/l.so", "--verbose"}),
                "unknown option '--verbose'");
  ExpectInvalid(Concat(Required(), {"/abs/plugin"}), "unknown option '/abs/plugin'");
}

// A parent pid beyond pid_t must not wrap: 4294967297 would become pid 1
// (init, the parent of every orphan, so the runner's "the broker exited
// during the spawn" check would pass).
TEST(ParseRunnerOptions, RefusesAParentPidBeyondPidT) {
  for (const char* value : {"2147483648", "4294967296", "4294967297"}) {
    absl::StatusOr<RunnerOptions> o =
        ParseRunnerOptions({"--parent-pid", value, "--dir", "/d", "--library", "/l.so"});
    if (o.ok()) {
      ADD_FAILURE() << value << " parsed as pid " << o->parent_pid;
      continue;
    }
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), StartsWith("--parent-pid: "))
        << value << ": " << o.status();
  }
}

// --- FormatRunnerOptions ----------------------------------------------------

TEST(FormatRunnerOptions, WritesTheOptionsInAFixedOrder) {
  RunnerOptions o;
  o.parent_pid = 4242;
  o.dir = "/p/tracim_backend_x";
  o.rlimit_as = 1048576;
  o.rlimit_cpu = 10;
  o.rlimit_nofile = 64;
  o.rlimit_nproc = 8;
  o.user = "nobody";
  o.group = "nogroup";
  o.library = "/p/tracim_backend_x/libx.so";
  EXPECT_THAT(
      FormatRunnerOptions(o),
      ElementsAre("--parent-pid", "4242", "--dir", "/p/tracim_backend_x", "--rlimit-as", "1048576",
                  "--rlimit-cpu", "10", "--rlimit-nofile", "64", "--rlimit-nproc", "8", "--user",
                  "nobody", "--group", "nogroup", "--library", "/p/tracim_backend_x/libx.so"));
}

TEST(FormatRunnerOptions, EndsWithTheSeparatorAndTheCommand) {
  RunnerOptions o;
  o.parent_pid = 7;
  o.dir = "/p";
  o.command = {"/p/plugin", "--flag"};
  EXPECT_THAT(FormatRunnerOptions(o),
              ElementsAre("--parent-pid", "7", "--dir", "/p", "--", "/p/plugin", "--flag"));
}

TEST(FormatRunnerOptions, RoundTripsTheLibraryFormWithEveryOption) {
  RunnerOptions o;
  o.parent_pid = 4194304;
  o.dir = "/plugins/tracim_backend_x";
  o.rlimit_as = 18446744073709551615u;
  o.rlimit_cpu = 1;
  o.rlimit_nofile = 1024;
  o.rlimit_nproc = 64;
  o.user = "plugin user";
  o.group = "";
  o.library = "/plugins/tracim_backend_x/lib x.so";
  absl::StatusOr<RunnerOptions> parsed = ParseRunnerOptions(FormatRunnerOptions(o));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameOptions(*parsed, o);
}

TEST(FormatRunnerOptions, RoundTripsTheCommandFormWithOptionLikeArguments) {
  RunnerOptions o;
  o.parent_pid = 1;
  o.dir = "/plugins/tracim_backend_y";
  o.rlimit_nofile = 16;
  o.command = {"/usr/bin/python3", "--", "--dir", "", "plugin.py"};
  absl::StatusOr<RunnerOptions> parsed = ParseRunnerOptions(FormatRunnerOptions(o));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameOptions(*parsed, o);
}

TEST(RunnerExitCodes, AreDistinctAndFollowTheShellForExecFailures) {
  EXPECT_EQ(kExitNotExecutable, 126);
  EXPECT_EQ(kExitNotFound, 127);
  EXPECT_EQ(kExitSetupFailed, 125);
  EXPECT_EQ(kExitParentGone, 124);
  EXPECT_EQ(kExitLibraryFailed, 123);
}

}  // namespace
}  // namespace tracim::runner
