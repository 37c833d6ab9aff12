// Tests for RuntimeDir::Prepare on real folders in a per-test temporary
// folder: the configured folder, $RUNTIME_DIRECTORY, and the private
// temporary folder removed by the destructor; always mode 0700.
#include "broker/app/runtime_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Each test's folder: tracim::testing::TempDir, named after this file.
class TempDir : public tracim::testing::TempDir {
 public:
  TempDir() : tracim::testing::TempDir("runtime_dir_test") {}
};

// Sets (or, with nullopt, unsets) an environment variable for the duration of
// a test and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The permission bits of `path`, or -1 if it cannot be stat'ed.
int Mode(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

void WriteFile(const fs::path& path) { std::ofstream(path) << "not a folder"; }

TEST(RuntimeDir, CreatesTheConfiguredFolderAndItsParentsWithMode0700) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "a" / "b" / "run";
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(dir, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path(), dir);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(Mode(dir), 0700);
}

TEST(RuntimeDir, MakesAnExistingConfiguredFolderPrivateAndKeepsItsContent) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "run";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // whatever the umask
  WriteFile(dir / "keep");
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(dir, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Mode(dir), 0700);
  EXPECT_TRUE(fs::exists(dir / "keep"));
}

TEST(RuntimeDir, LeavesTheConfiguredFolderInPlaceWhenDestroyed) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "run";
  {
    absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(dir, std::nullopt);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_TRUE(fs::is_directory(dir));
}

TEST(RuntimeDir, PrefersTheConfiguredFolderToTheSystemdOne) {
  TempDir tmp;
  const fs::path configured = tmp.path() / "configured";
  const fs::path systemd = tmp.path() / "systemd";
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(configured, systemd.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path(), configured);
  EXPECT_FALSE(fs::exists(systemd));
}

TEST(RuntimeDir, RefusesAConfiguredPathThatIsAFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "file";
  WriteFile(file);
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(file, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(r.status().message()),
            "broker.runtime_dir: cannot create '" + file.string() + "': Not a directory");
}

TEST(RuntimeDir, RefusesAConfiguredPathBelowAFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "file";
  WriteFile(file);
  const fs::path dir = file / "run";
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(dir, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(r.status().message()),
            "broker.runtime_dir: cannot create '" + dir.string() + "': Not a directory");
}

// Needs root to give a folder to another user.
TEST(RuntimeDir, RefusesAFolderOwnedByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown a folder to another user";
  TempDir tmp;
  const fs::path dir = tmp.path() / "theirs";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(dir, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(r.status().message()),
            "broker.runtime_dir: '" + dir.string() + "' belongs to another user (uid 65534)");
  EXPECT_EQ(Mode(dir), 0755);  // left untouched
}

TEST(RuntimeDir, UsesTheSystemdFolderWithMode0700) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "systemd";
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, dir.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path(), dir);
  EXPECT_EQ(Mode(dir), 0700);
}

TEST(RuntimeDir, UsesTheFirstOfSeveralSystemdFolders) {
  TempDir tmp;
  const fs::path first = tmp.path() / "a";
  const fs::path second = tmp.path() / "b";
  absl::StatusOr<RuntimeDir> r =
      RuntimeDir::Prepare(std::nullopt, first.string() + ":" + second.string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path(), first);
  EXPECT_EQ(Mode(first), 0700);
  EXPECT_FALSE(fs::exists(second));
}

TEST(RuntimeDir, LeavesTheSystemdFolderInPlaceWhenDestroyed) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "systemd";
  {
    absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, dir.string());
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_TRUE(fs::is_directory(dir));
}

TEST(RuntimeDir, RefusesASystemdFolderThatIsAFile) {
  TempDir tmp;
  const fs::path file = tmp.path() / "file";
  WriteFile(file);
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, file.string() + ":/elsewhere");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(r.status().message()),
            "broker.runtime_dir: cannot create '" + file.string() + "': Not a directory");
}

TEST(RuntimeDir, CreatesAPrivateTemporaryFolderUnderTmpdir) {
  TempDir tmp;
  ScopedEnv tmpdir("TMPDIR", tmp.path().string());
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path().parent_path(), tmp.path());
  EXPECT_THAT(r->path().filename().string(), MatchesRegex("tracim-broker-[A-Za-z0-9]{6}"));
  EXPECT_TRUE(fs::is_directory(r->path()));
  EXPECT_EQ(Mode(r->path()), 0700);
}

TEST(RuntimeDir, TreatsAnEmptySystemdValueAsUnset) {
  TempDir tmp;
  ScopedEnv tmpdir("TMPDIR", tmp.path().string());
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, std::string());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path().parent_path(), tmp.path());
}

TEST(RuntimeDir, FallsBackToSlashTmpWithoutTmpdir) {
  for (const std::optional<std::string>& value :
       {std::optional<std::string>(), std::optional<std::string>("")}) {
    ScopedEnv tmpdir("TMPDIR", value);
    absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, std::nullopt);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->path().parent_path(), fs::path("/tmp"));
    EXPECT_THAT(r->path().filename().string(), StartsWith("tracim-broker-"));
  }
}

TEST(RuntimeDir, RemovesTheTemporaryFolderAndItsContentWhenDestroyed) {
  TempDir tmp;
  ScopedEnv tmpdir("TMPDIR", tmp.path().string());
  fs::path path;
  {
    absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, std::nullopt);
    ASSERT_TRUE(r.ok()) << r.status();
    path = r->path();
    ASSERT_EQ(::mkdir((path / "sub").c_str(), 0700), 0);
    WriteFile(path / "sub" / "plugin.sock");
  }
  EXPECT_FALSE(path.empty());
  EXPECT_FALSE(fs::exists(path));
}

TEST(RuntimeDir, AMovedFromObjectDoesNotRemoveTheTemporaryFolder) {
  TempDir tmp;
  ScopedEnv tmpdir("TMPDIR", tmp.path().string());
  absl::StatusOr<RuntimeDir> prepared = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const fs::path path = prepared->path();

  std::optional<RuntimeDir> moved_from(*std::move(prepared));
  std::optional<RuntimeDir> owner(std::move(*moved_from));
  EXPECT_EQ(owner->path(), path);
  moved_from.reset();
  EXPECT_TRUE(fs::is_directory(path));
  owner.reset();
  EXPECT_FALSE(fs::exists(path));
}

TEST(RuntimeDir, ReportsATmpdirThatDoesNotExist) {
  TempDir tmp;
  const fs::path missing = tmp.path() / "missing";
  ScopedEnv tmpdir("TMPDIR", missing.string());
  absl::StatusOr<RuntimeDir> r = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  // mkdtemp leaves the name it tried in place of XXXXXX.
  EXPECT_THAT(std::string(r.status().message()),
              MatchesRegex("cannot create a runtime folder '" + missing.string() +
                           "/tracim-broker-[A-Za-z0-9]{6}': No such file or directory"));
}

}  // namespace
}  // namespace tracim::broker
