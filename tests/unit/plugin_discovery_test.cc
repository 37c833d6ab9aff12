// Tests for DiscoverPlugins against real plugin folders built in a per-test
// temporary directory: what is found, what is ignored, what becomes a
// problem, ordering, and errors about the scanned folder itself.
#include "broker/discovery/plugin_discovery.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Each test's folder: tracim::testing::TempDir, named after this file.
class TempDir : public tracim::testing::TempDir {
 public:
  TempDir() : tracim::testing::TempDir("plugin_discovery_test") {}
};

constexpr char kValidManifest[] = R"({"command": ["./run"], "version": "1.0"})";

class PluginDiscoveryTest : public ::testing::Test {
 protected:
  // The scanned folder (plugin.folder_path).
  fs::path Plugins() const { return dir_.path() / "plugins"; }
  fs::path Elsewhere() const { return dir_.path() / "elsewhere"; }

  void SetUp() override {
    fs::create_directory(Plugins());
    fs::create_directory(Elsewhere());
  }

  static void WriteFile(const fs::path& path, const std::string& content, mode_t mode = 0644) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  // A complete plugin folder <parent>/<folder_name> with an executable ./run.
  static fs::path MakePlugin(const fs::path& parent, const std::string& folder_name,
                             const std::string& manifest = kValidManifest) {
    const fs::path folder = parent / folder_name;
    WriteFile(folder / "run", "#!/bin/sh\n", 0755);
    WriteFile(folder / "plugin.json", manifest);
    return folder;
  }

  static std::vector<std::string> Names(const DiscoveryResult& result) {
    std::vector<std::string> names;
    for (const PluginManifest& m : result.plugins) names.push_back(m.name);
    return names;
  }

 private:
  TempDir dir_;
};

TEST_F(PluginDiscoveryTest, FindsNothingInAnEmptyFolder) {
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->plugins, IsEmpty());
  EXPECT_THAT(result->problems, IsEmpty());
}

TEST_F(PluginDiscoveryTest, ReturnsParsedManifestsSortedByName) {
  MakePlugin(Plugins(), "tracim_backend_zeta");
  MakePlugin(Plugins(), "tracim_backend_alpha");
  const fs::path mid = MakePlugin(Plugins(), "tracim_backend_mid_2",
                                  R"({"command": ["./run", "-x"], "version": "3",
                                      "description": "middle"})");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Names(*result), ElementsAre("alpha", "mid_2", "zeta"));
  EXPECT_THAT(result->problems, IsEmpty());
  const PluginManifest& m = result->plugins[1];
  EXPECT_EQ(m.folder, mid);
  EXPECT_THAT(m.command, ElementsAre((mid / "run").string(), "-x"));
  EXPECT_EQ(m.version, "3");
  EXPECT_EQ(m.description, "middle");
}

TEST_F(PluginDiscoveryTest, IgnoresUnprefixedEntriesAndPrefixedFiles) {
  MakePlugin(Plugins(), "other_plugin");         // no prefix, even with a manifest
  MakePlugin(Plugins(), "Tracim_backend_caps");  // prefix is case-sensitive
  WriteFile(Plugins() / "tracim_backend_file", kValidManifest);
  WriteFile(Plugins() / "README", "hi");
  fs::create_symlink(Elsewhere() / "gone", Plugins() / "tracim_backend_dangling");
  MakePlugin(Plugins(), "tracim_backend_ok");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Names(*result), ElementsAre("ok"));
  EXPECT_THAT(result->problems, IsEmpty());
}

TEST_F(PluginDiscoveryTest, DoesNotLookIntoSubfolders) {
  MakePlugin(Plugins() / "nested", "tracim_backend_deep");
  MakePlugin(Plugins(), "tracim_backend_outer");
  MakePlugin(Plugins() / "tracim_backend_outer", "tracim_backend_inner");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Names(*result), ElementsAre("outer"));
}

TEST_F(PluginDiscoveryTest, FollowsASymlinkedPluginFolder) {
  MakePlugin(Elsewhere(), "real_folder");
  fs::create_directory_symlink(Elsewhere() / "real_folder", Plugins() / "tracim_backend_linked");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_THAT(Names(*result), ElementsAre("linked"));
  EXPECT_EQ(result->plugins[0].folder, Plugins() / "tracim_backend_linked");
  EXPECT_THAT(result->plugins[0].command,
              ElementsAre((Plugins() / "tracim_backend_linked" / "run").string()));
}

TEST_F(PluginDiscoveryTest, ReportsAPrefixedFolderWithoutManifest) {
  fs::create_directory(Plugins() / "tracim_backend_empty");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->plugins, IsEmpty());
  ASSERT_EQ(result->problems.size(), 1u);
  EXPECT_EQ(result->problems[0].name, "empty");
  EXPECT_EQ(result->problems[0].manifest, Plugins() / "tracim_backend_empty");
  EXPECT_EQ(result->problems[0].message, "missing plugin.json");
}

TEST_F(PluginDiscoveryTest, ReportsAFolderNamedOnlyThePrefix) {
  MakePlugin(Plugins(), "tracim_backend_");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->plugins, IsEmpty());
  ASSERT_EQ(result->problems.size(), 1u);
  EXPECT_EQ(result->problems[0].name, "");
  EXPECT_EQ(result->problems[0].manifest, Plugins() / "tracim_backend_");
  EXPECT_EQ(result->problems[0].message,
            "plugin name is empty: the folder name must continue after 'tracim_backend_'");
}

TEST_F(PluginDiscoveryTest, ReportsInvalidPluginNames) {
  MakePlugin(Plugins(), "tracim_backend_Upper");
  MakePlugin(Plugins(), "tracim_backend_with-dash");
  MakePlugin(Plugins(), "tracim_backend_dot.disabled");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->plugins, IsEmpty());
  ASSERT_EQ(result->problems.size(), 3u);
  EXPECT_EQ(result->problems[0].name, "Upper");
  EXPECT_EQ(result->problems[0].manifest, Plugins() / "tracim_backend_Upper");
  EXPECT_EQ(result->problems[0].message, "invalid plugin name 'Upper': must match [a-z0-9_]+");
  EXPECT_EQ(result->problems[1].name, "dot.disabled");
  EXPECT_EQ(result->problems[1].message,
            "invalid plugin name 'dot.disabled': must match [a-z0-9_]+");
  EXPECT_EQ(result->problems[2].name, "with-dash");
  EXPECT_EQ(result->problems[2].message, "invalid plugin name 'with-dash': must match [a-z0-9_]+");
}

TEST_F(PluginDiscoveryTest, ReportsABrokenManifestWithTheParserMessageAndKeepsTheOthers) {
  MakePlugin(Plugins(), "tracim_backend_a");
  MakePlugin(Plugins(), "tracim_backend_b_broken", R"({"command": ["./run"], "version": 1})");
  MakePlugin(Plugins(), "tracim_backend_c_syntax", "{\n  \"version\": \"1\",\n}");
  MakePlugin(Plugins(), "tracim_backend_d");
  MakePlugin(Plugins(), "tracim_backend_e_nocmd", R"({"command": ["./nope"], "version": "1"})");
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Names(*result), ElementsAre("a", "d"));
  ASSERT_EQ(result->problems.size(), 3u);
  EXPECT_EQ(result->problems[0].name, "b_broken");
  EXPECT_EQ(result->problems[0].manifest, Plugins() / "tracim_backend_b_broken" / "plugin.json");
  EXPECT_EQ(result->problems[0].message, "'version' must be a non-empty string");
  EXPECT_EQ(result->problems[1].name, "c_syntax");
  EXPECT_EQ(result->problems[1].message, "invalid JSON at line 3, column 1: syntax error at '}'");
  EXPECT_EQ(result->problems[2].name, "e_nocmd");
  EXPECT_EQ(result->problems[2].message, "command './nope' not found in the plugin folder");
}

TEST_F(PluginDiscoveryTest, ReportsAManifestThatIsNotARegularFile) {
  fs::create_directories(Plugins() / "tracim_backend_dir" / "plugin.json");
  fs::create_directory(Plugins() / "tracim_backend_fifo");
  // Opening a FIFO for reading would block without a writer: discovery must not.
  ASSERT_EQ(::mkfifo((Plugins() / "tracim_backend_fifo" / "plugin.json").c_str(), 0644), 0);
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->problems.size(), 2u);
  EXPECT_EQ(result->problems[0].name, "dir");
  EXPECT_EQ(result->problems[0].manifest, Plugins() / "tracim_backend_dir" / "plugin.json");
  EXPECT_EQ(result->problems[0].message, "plugin.json is not a regular file");
  EXPECT_EQ(result->problems[1].name, "fifo");
  EXPECT_EQ(result->problems[1].message, "plugin.json is not a regular file");
}

TEST_F(PluginDiscoveryTest, ReportsAnOversizedManifest) {
  MakePlugin(Plugins(), "tracim_backend_big", std::string(kMaxManifestBytes + 1, ' '));
  MakePlugin(
      Plugins(), "tracim_backend_fits",
      std::string(kMaxManifestBytes - std::string(kValidManifest).size(), ' ') + kValidManifest);
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(Names(*result), ElementsAre("fits"));
  ASSERT_EQ(result->problems.size(), 1u);
  EXPECT_EQ(result->problems[0].message, "plugin.json is larger than 1048576 bytes");
}

TEST_F(PluginDiscoveryTest, ReportsAnUnreadableManifest) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  MakePlugin(Plugins(), "tracim_backend_secret");
  ASSERT_EQ(::chmod((Plugins() / "tracim_backend_secret" / "plugin.json").c_str(), 0), 0);
  const absl::StatusOr<DiscoveryResult> result = DiscoverPlugins(Plugins());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->problems.size(), 1u);
  EXPECT_EQ(result->problems[0].message, "cannot read plugin.json: Permission denied");
}

TEST_F(PluginDiscoveryTest, FailsWhenTheFolderDoesNotExist) {
  const fs::path missing = Plugins() / "missing";
  EXPECT_EQ(DiscoverPlugins(missing).status(),
            absl::NotFoundError("plugin folder '" + missing.string() +
                                "' (plugin.folder_path) does not exist"));
}

TEST_F(PluginDiscoveryTest, FailsWhenTheFolderIsAFile) {
  const fs::path file = Plugins() / "file";
  WriteFile(file, "x");
  EXPECT_EQ(DiscoverPlugins(file).status(),
            absl::FailedPreconditionError("plugin folder '" + file.string() +
                                          "' (plugin.folder_path) is not a directory"));
}

TEST_F(PluginDiscoveryTest, FailsWhenTheFolderIsNotReadable) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any folder";
  ASSERT_EQ(::chmod(Plugins().c_str(), 0300), 0);
  EXPECT_EQ(DiscoverPlugins(Plugins()).status(),
            absl::PermissionDeniedError("plugin folder '" + Plugins().string() +
                                        "' (plugin.folder_path) is not readable: "
                                        "Permission denied"));
}

}  // namespace
}  // namespace tracim::broker
