// Tests for ParsePluginManifest: every field rule with its exact message, the
// JSON syntax error positions, and command / library resolution against real
// files in a per-test temporary folder.
#include "broker/discovery/plugin_manifest.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Pair;

// Each test's folder: tracim::testing::TempDir, named after this file.
class TempDir : public tracim::testing::TempDir {
 public:
  TempDir() : tracim::testing::TempDir("plugin_manifest_test") {}
};

// Sets PATH for the duration of a test and restores it.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& value) {
    if (const char* old = std::getenv("PATH")) old_ = old;
    ::setenv("PATH", value.c_str(), 1);
  }
  ~ScopedPath() {
    if (old_) {
      ::setenv("PATH", old_->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }

 private:
  std::optional<std::string> old_;
};

class PluginManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The executable most manifests below point at.
    WriteFile("hello", "#!/bin/sh\n", 0755);
  }

  fs::path Folder() const { return dir_.path(); }

  void WriteFile(const fs::path& relative, const std::string& content, mode_t mode) {
    const fs::path path = Folder() / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  absl::StatusOr<PluginManifest> Parse(const std::string& json) {
    return ParsePluginManifest(json, Folder(), "hello");
  }

  void ExpectInvalid(const std::string& json, const std::string& message) {
    const absl::StatusOr<PluginManifest> manifest = Parse(json);
    EXPECT_EQ(manifest.status(), absl::InvalidArgumentError(message)) << json;
  }

 private:
  TempDir dir_;
};

TEST_F(PluginManifestTest, ParsesEveryFieldOfAFullManifest) {
  const absl::StatusOr<PluginManifest> manifest = Parse(R"({
    "command": ["./hello", "--verbose", "x y"],
    "version": "1.0.0",
    "description": "Says hello",
    "start_timeout_ms": 5000,
    "shutdown_grace_ms": 2000,
    "env": {"GREETING": "hi", "_under": "", "lower_case": "ok"},
    "limits": {"memory_bytes": 268435456, "cpu_seconds": 60,
               "open_files": 256, "processes": 64},
    "user": "tracim-plugins",
    "group": "tracim-group",
    "restart": {"backoff_initial_ms": 50, "backoff_max_ms": 1000, "max_failures": 0,
                "failure_window_ms": 60000},
    "health": {"interval_ms": 1000, "timeout_ms": 500, "failures": 2}
  })");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->name, "hello");
  EXPECT_EQ(manifest->folder, Folder());
  EXPECT_THAT(manifest->command, ElementsAre((Folder() / "hello").string(), "--verbose", "x y"));
  EXPECT_TRUE(manifest->library.empty());
  EXPECT_EQ(manifest->version, "1.0.0");
  EXPECT_EQ(manifest->description, "Says hello");
  EXPECT_EQ(manifest->start_timeout, absl::Milliseconds(5000));
  EXPECT_EQ(manifest->shutdown_grace, absl::Seconds(2));
  EXPECT_THAT(manifest->env,
              ElementsAre(Pair("GREETING", "hi"), Pair("_under", ""), Pair("lower_case", "ok")));
  EXPECT_EQ(manifest->limits.memory_bytes, 268435456u);
  EXPECT_EQ(manifest->limits.cpu_seconds, 60u);
  EXPECT_EQ(manifest->limits.open_files, 256u);
  EXPECT_EQ(manifest->limits.processes, 64u);
  EXPECT_EQ(manifest->user, "tracim-plugins");
  EXPECT_EQ(manifest->group, "tracim-group");
  EXPECT_EQ(manifest->restart.backoff_initial, absl::Milliseconds(50));
  EXPECT_EQ(manifest->restart.backoff_max, absl::Seconds(1));
  EXPECT_EQ(manifest->restart.max_failures, 0);
  EXPECT_EQ(manifest->restart.failure_window, absl::Minutes(1));
  EXPECT_EQ(manifest->health.interval, absl::Seconds(1));
  EXPECT_EQ(manifest->health.timeout, absl::Milliseconds(500));
  EXPECT_EQ(manifest->health.failures, 2);
}

TEST_F(PluginManifestTest, LeavesRestartAndHealthOverridesUnsetWhenAbsent) {
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["./hello"], "version": "1", "restart": {}, "health": {}})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->restart.backoff_initial, std::nullopt);
  EXPECT_EQ(manifest->restart.max_failures, std::nullopt);
  EXPECT_EQ(manifest->health.interval, std::nullopt);
  EXPECT_EQ(manifest->health.failures, std::nullopt);
}

TEST_F(PluginManifestTest, LeavesOptionalFieldsUnsetInAMinimalManifest) {
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["./hello"], "version": "0.1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_THAT(manifest->command, ElementsAre((Folder() / "hello").string()));
  EXPECT_EQ(manifest->description, "");
  EXPECT_EQ(manifest->start_timeout, std::nullopt);
  EXPECT_EQ(manifest->shutdown_grace, std::nullopt);
  EXPECT_TRUE(manifest->env.empty());
  EXPECT_EQ(manifest->limits.memory_bytes, std::nullopt);
  EXPECT_EQ(manifest->limits.cpu_seconds, std::nullopt);
  EXPECT_EQ(manifest->limits.open_files, std::nullopt);
  EXPECT_EQ(manifest->limits.processes, std::nullopt);
  EXPECT_EQ(manifest->user, std::nullopt);
  EXPECT_EQ(manifest->group, std::nullopt);
}

TEST_F(PluginManifestTest, AcceptsTheLargestTimeoutAndLimit) {
  const absl::StatusOr<PluginManifest> manifest = Parse(R"({
    "command": ["./hello"], "version": "1", "start_timeout_ms": 3600000,
    "shutdown_grace_ms": 1, "limits": {"memory_bytes": 18446744073709551615}})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->start_timeout, absl::Hours(1));
  EXPECT_EQ(manifest->shutdown_grace, absl::Milliseconds(1));
  EXPECT_EQ(manifest->limits.memory_bytes, 18446744073709551615u);
}

TEST_F(PluginManifestTest, KeepsTheLastValueOfADuplicatedKey) {
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["./hello"], "version": "1", "version": "2"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->version, "2");
}

// --- JSON syntax --------------------------------------------------------------

TEST_F(PluginManifestTest, ReportsLineAndColumnOfAMissingComma) {
  ExpectInvalid("{\n  \"version\": \"1\"\n  \"command\": [\"./hello\"]\n}",
                "invalid JSON at line 3, column 3: syntax error at '\"'");
}

TEST_F(PluginManifestTest, ReportsATrailingComma) {
  ExpectInvalid("{\"version\": \"1\",\n}", "invalid JSON at line 2, column 1: syntax error at '}'");
}

TEST_F(PluginManifestTest, ReportsAnEmptyFileAsUnexpectedEnd) {
  ExpectInvalid("", "invalid JSON at line 1, column 1: unexpected end of input");
}

TEST_F(PluginManifestTest, ReportsTruncatedInputAtItsEnd) {
  ExpectInvalid("{\n\"version\":", "invalid JSON at line 2, column 11: unexpected end of input");
}

TEST_F(PluginManifestTest, ReportsDataAfterTheObjectWhereItStarts) {
  ExpectInvalid("{}\n\n   x",
                "invalid JSON at line 3, column 4: unexpected data after the JSON value");
}

TEST_F(PluginManifestTest, ShowsANonPrintableByteAsHex) {
  ExpectInvalid("{\"version\": \"1\x01\"}",
                "invalid JSON at line 1, column 15: syntax error at byte 0x01");
}

TEST_F(PluginManifestTest, RefusesComments) {
  ExpectInvalid("{\n  // a comment\n}", "invalid JSON at line 2, column 3: syntax error at '/'");
}

TEST_F(PluginManifestTest, RequiresAnObjectAtTheRoot) {
  ExpectInvalid(R"(["./hello"])", "the manifest must be a JSON object");
  ExpectInvalid("null", "the manifest must be a JSON object");
}

// --- Field rules, one message each ---------------------------------------------

struct FieldCase {
  const char* test_name;
  const char* json;
  const char* message;
};

class PluginManifestFieldTest : public PluginManifestTest,
                                public ::testing::WithParamInterface<FieldCase> {};

TEST_P(PluginManifestFieldTest, RejectsWithExactMessage) {
  ExpectInvalid(GetParam().json, GetParam().message);
}

constexpr FieldCase kFieldCases[] = {
    // Unknown fields, checked before anything else.
    {"UnknownTopLevelField", R"({"comand": ["./hello"], "version": "1"})",
     "unknown field 'comand'"},
    {"UnknownLimitsField", R"({"command": ["./hello"], "version": "1", "limits": {"memory": 1}})",
     "unknown field 'limits.memory'"},
    {"EmptyKey", R"({"command": ["./hello"], "version": "1", "": 1})", "unknown field ''"},
    // command XOR library.
    {"NeitherCommandNorLibrary", R"({"version": "1"})",
     "exactly one of 'command' or 'library' is required"},
    {"BothCommandAndLibrary", R"({"command": ["./hello"], "library": "libx.so", "version": "1"})",
     "exactly one of 'command' or 'library' is required"},
    {"CommandAsString", R"({"command": "./hello", "version": "1"})",
     "'command' must be a non-empty array of strings"},
    {"CommandEmptyArray", R"({"command": [], "version": "1"})",
     "'command' must be a non-empty array of strings"},
    {"CommandWithNumber", R"({"command": ["./hello", 3], "version": "1"})",
     "'command' must be a non-empty array of strings"},
    {"CommandWithEmptyProgram", R"({"command": [""], "version": "1"})",
     "'command[0]' must be a non-empty string"},
    {"CommandWithEmptyArgument", R"({"command": ["./hello", "-v", ""], "version": "1"})",
     "'command[2]' must be a non-empty string"},
    {"CommandWithNul", R"({"command": ["./hello", "a\u0000b"], "version": "1"})",
     "'command[1]' must not contain a NUL character"},
    {"LibraryEmpty", R"({"library": "", "version": "1"})", "'library' must be a non-empty string"},
    {"LibraryAsArray", R"({"library": ["libx.so"], "version": "1"})",
     "'library' must be a non-empty string"},
    // version.
    {"VersionMissing", R"({"command": ["./hello"]})", "'version' is required"},
    {"VersionAsNumber", R"({"command": ["./hello"], "version": 1})",
     "'version' must be a non-empty string"},
    {"VersionEmpty", R"({"command": ["./hello"], "version": ""})",
     "'version' must be a non-empty string"},
    // description.
    {"DescriptionAsNumber", R"({"command": ["./hello"], "version": "1", "description": 2})",
     "'description' must be a string"},
    // Timeouts.
    {"StartTimeoutZero", R"({"command": ["./hello"], "version": "1", "start_timeout_ms": 0})",
     "'start_timeout_ms' must be a positive integer"},
    {"StartTimeoutNegative", R"({"command": ["./hello"], "version": "1", "start_timeout_ms": -5})",
     "'start_timeout_ms' must be a positive integer"},
    {"StartTimeoutFraction",
     R"({"command": ["./hello"], "version": "1", "start_timeout_ms": 5000.0})",
     "'start_timeout_ms' must be a positive integer"},
    {"StartTimeoutString", R"({"command": ["./hello"], "version": "1", "start_timeout_ms": "5"})",
     "'start_timeout_ms' must be a positive integer"},
    {"StartTimeoutBool", R"({"command": ["./hello"], "version": "1", "start_timeout_ms": true})",
     "'start_timeout_ms' must be a positive integer"},
    {"StartTimeoutTooLong",
     R"({"command": ["./hello"], "version": "1", "start_timeout_ms": 3600001})",
     "'start_timeout_ms' must be at most 3600000"},
    {"ShutdownGraceZero", R"({"command": ["./hello"], "version": "1", "shutdown_grace_ms": 0})",
     "'shutdown_grace_ms' must be a positive integer"},
    {"ShutdownGraceHuge",
     R"({"command": ["./hello"], "version": "1", "shutdown_grace_ms": 18446744073709551615})",
     "'shutdown_grace_ms' must be at most 3600000"},
    // env.
    {"EnvAsArray", R"({"command": ["./hello"], "version": "1", "env": ["A=1"]})",
     "'env' must be an object"},
    {"EnvValueNumber", R"({"command": ["./hello"], "version": "1", "env": {"A": 1}})",
     "'env.A' must be a string"},
    {"EnvValueWithNul", R"({"command": ["./hello"], "version": "1", "env": {"A": "\u0000"}})",
     "'env.A' must not contain a NUL character"},
    {"EnvNameStartsWithDigit", R"({"command": ["./hello"], "version": "1", "env": {"1A": "x"}})",
     "'env' name '1A' must match [A-Za-z_][A-Za-z0-9_]*"},
    {"EnvNameWithDash", R"({"command": ["./hello"], "version": "1", "env": {"A-B": "x"}})",
     "'env' name 'A-B' must match [A-Za-z_][A-Za-z0-9_]*"},
    {"EnvNameWithEquals", R"({"command": ["./hello"], "version": "1", "env": {"A=B": "x"}})",
     "'env' name 'A=B' must match [A-Za-z_][A-Za-z0-9_]*"},
    {"EnvNameEmpty", R"({"command": ["./hello"], "version": "1", "env": {"": "x"}})",
     "'env' name '' must match [A-Za-z_][A-Za-z0-9_]*"},
    {"EnvNameReserved",
     R"({"command": ["./hello"], "version": "1", "env": {"TRACIM_PLUGIN_SECRET": "x"}})",
     "'env' name 'TRACIM_PLUGIN_SECRET' must not start with TRACIM_"},
    {"EnvNameReservedExactPrefix",
     R"({"command": ["./hello"], "version": "1", "env": {"TRACIM_": "x"}})",
     "'env' name 'TRACIM_' must not start with TRACIM_"},
    // limits.
    {"LimitsAsNumber", R"({"command": ["./hello"], "version": "1", "limits": 5})",
     "'limits' must be an object"},
    {"MemoryZero", R"({"command": ["./hello"], "version": "1", "limits": {"memory_bytes": 0}})",
     "'limits.memory_bytes' must be a positive integer"},
    {"CpuNegative", R"({"command": ["./hello"], "version": "1", "limits": {"cpu_seconds": -1}})",
     "'limits.cpu_seconds' must be a positive integer"},
    {"OpenFilesString",
     R"({"command": ["./hello"], "version": "1", "limits": {"open_files": "9"}})",
     "'limits.open_files' must be a positive integer"},
    {"ProcessesFraction",
     R"({"command": ["./hello"], "version": "1", "limits": {"processes": 1.5}})",
     "'limits.processes' must be a positive integer"},
    // user / group.
    {"UserEmpty", R"({"command": ["./hello"], "version": "1", "user": ""})",
     "'user' must be a non-empty string"},
    {"UserNumber", R"({"command": ["./hello"], "version": "1", "user": 1000})",
     "'user' must be a non-empty string"},
    {"GroupEmpty", R"({"command": ["./hello"], "version": "1", "group": ""})",
     "'group' must be a non-empty string"},
    {"GroupNull", R"({"command": ["./hello"], "version": "1", "group": null})",
     "'group' must be a non-empty string"},
    // restart / health.
    {"RestartNotObject", R"({"command": ["./hello"], "version": "1", "restart": 5})",
     "'restart' must be an object"},
    {"RestartUnknownField",
     R"({"command": ["./hello"], "version": "1", "restart": {"max_failure": 1}})",
     "unknown field 'restart.max_failure'"},
    {"RestartMaxFailuresTooLarge",
     R"({"command": ["./hello"], "version": "1", "restart": {"max_failures": 1001}})",
     "'restart.max_failures' must be an integer from 0 to 1000"},
    {"RestartMaxFailuresNegative",
     R"({"command": ["./hello"], "version": "1", "restart": {"max_failures": -1}})",
     "'restart.max_failures' must be an integer from 0 to 1000"},
    {"RestartBackoffZero",
     R"({"command": ["./hello"], "version": "1", "restart": {"backoff_initial_ms": 0}})",
     "'restart.backoff_initial_ms' must be a positive integer"},
    {"RestartWindowTooLong",
     R"({"command": ["./hello"], "version": "1", "restart": {"failure_window_ms": 3600001}})",
     "'restart.failure_window_ms' must be at most 3600000"},
    {"HealthNotObject", R"({"command": ["./hello"], "version": "1", "health": []})",
     "'health' must be an object"},
    {"HealthFailuresZero", R"({"command": ["./hello"], "version": "1", "health": {"failures": 0}})",
     "'health.failures' must be an integer from 1 to 100"},
    {"HealthIntervalString",
     R"({"command": ["./hello"], "version": "1", "health": {"interval_ms": "5s"}})",
     "'health.interval_ms' must be a positive integer"},
    // Text checks win over file system checks: ./nope does not exist.
    {"TextErrorBeforeMissingCommand", R"({"command": ["./nope"], "version": 1})",
     "'version' must be a non-empty string"},
};

INSTANTIATE_TEST_SUITE_P(Fields, PluginManifestFieldTest, ::testing::ValuesIn(kFieldCases),
                         [](const ::testing::TestParamInfo<FieldCase>& info) {
                           return std::string(info.param.test_name);
                         });

// --- command resolution -------------------------------------------------------

TEST_F(PluginManifestTest, ResolvesACommandInASubfolderToAnAbsoluteNormalPath) {
  WriteFile("bin/server", "#!/bin/sh\n", 0700);
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["bin/../bin/./server"], "version": "1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_THAT(manifest->command, ElementsAre((Folder() / "bin" / "server").string()));
}

TEST_F(PluginManifestTest, KeepsAnAbsoluteCommand) {
  const std::string absolute = (Folder() / "hello").string();
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": [")" + absolute + R"(", "arg"], "version": "1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_THAT(manifest->command, ElementsAre(absolute, "arg"));
}

TEST_F(PluginManifestTest, AcceptsACommandThatIsASymlinkToAnExecutable) {
  fs::create_symlink("hello", Folder() / "link");
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["./link"], "version": "1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_THAT(manifest->command, ElementsAre((Folder() / "link").string()));
}

TEST_F(PluginManifestTest, RejectsAMissingRelativeCommand) {
  ExpectInvalid(R"({"command": ["./nope"], "version": "1"})",
                "command './nope' not found in the plugin folder");
}

TEST_F(PluginManifestTest, RejectsAMissingAbsoluteCommand) {
  const std::string absolute = (Folder() / "x" / "y").string();
  ExpectInvalid(R"({"command": [")" + absolute + R"("], "version": "1"})",
                "command '" + absolute + "' not found");
}

TEST_F(PluginManifestTest, RejectsADanglingSymlinkAsNotFound) {
  fs::create_symlink("gone", Folder() / "dangling");
  ExpectInvalid(R"({"command": ["./dangling"], "version": "1"})",
                "command './dangling' not found in the plugin folder");
}

TEST_F(PluginManifestTest, RejectsACommandWithoutExecuteBits) {
  WriteFile("README", "hello\n", 0644);
  ExpectInvalid(R"({"command": ["./README"], "version": "1"})",
                "command './README' is not executable");
}

TEST_F(PluginManifestTest, RejectsADirectoryAsCommand) {
  fs::create_directory(Folder() / "sub");
  ExpectInvalid(R"({"command": ["./sub"], "version": "1"})",
                "command './sub' is not a regular file");
}

TEST_F(PluginManifestTest, LooksUpABareCommandInPath) {
  WriteFile("first/tool", "not executable\n", 0644);
  WriteFile("second/tool", "#!/bin/sh\n", 0755);
  WriteFile("third/tool", "#!/bin/sh\n", 0755);
  const ScopedPath path("::relative:" + (Folder() / "first").string() + ":" +
                        (Folder() / "second").string() + ":" + (Folder() / "third").string());
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"command": ["tool", "--flag"], "version": "1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  // first/tool is skipped (not executable), second/tool wins over third/tool.
  EXPECT_THAT(manifest->command, ElementsAre((Folder() / "second" / "tool").string(), "--flag"));
}

TEST_F(PluginManifestTest, IgnoresRelativePathEntries) {
  // "hello" is in the working directory, but PATH entries must be absolute.
  const fs::path old_cwd = fs::current_path();
  fs::current_path(Folder());
  {
    const ScopedPath path(".:");
    ExpectInvalid(R"({"command": ["hello"], "version": "1"})", "command 'hello' not found in PATH");
  }
  fs::current_path(old_cwd);
}

TEST_F(PluginManifestTest, RejectsABareCommandMissingFromPath) {
  const ScopedPath path((Folder() / "empty").string() + ":/nonexistent");
  ExpectInvalid(R"({"command": ["python9"], "version": "1"})",
                "command 'python9' not found in PATH");
}

// --- library resolution ---------------------------------------------------------

TEST_F(PluginManifestTest, ResolvesALibraryRelativeToTheFolder) {
  WriteFile("lib/libhello.so", "ELF", 0644);
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"library": "lib/libhello.so", "version": "2.0"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_TRUE(manifest->command.empty());
  EXPECT_EQ(manifest->library, Folder() / "lib" / "libhello.so");
  EXPECT_EQ(manifest->version, "2.0");
}

TEST_F(PluginManifestTest, KeepsAnAbsoluteLibrary) {
  WriteFile("libhello.so", "ELF", 0644);
  const fs::path absolute = Folder() / "libhello.so";
  const absl::StatusOr<PluginManifest> manifest =
      Parse(R"({"library": ")" + absolute.string() + R"(", "version": "1"})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->library, absolute);
}

TEST_F(PluginManifestTest, RejectsAMissingLibrary) {
  ExpectInvalid(R"({"library": "libx.so", "version": "1"})",
                "library 'libx.so' not found in the plugin folder");
  const std::string absolute = (Folder() / "libx.so").string();
  ExpectInvalid(R"({"library": ")" + absolute + R"(", "version": "1"})",
                "library '" + absolute + "' not found");
}

TEST_F(PluginManifestTest, RejectsADirectoryAsLibrary) {
  fs::create_directory(Folder() / "libx.so");
  ExpectInvalid(R"({"library": "libx.so", "version": "1"})",
                "library 'libx.so' is not a regular file");
}

}  // namespace
}  // namespace tracim::broker
