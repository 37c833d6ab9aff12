// Tests for opening the SQLite store: schema migrations on a new file, on an
// existing one, with a later migration added, failing, or facing a newer
// file; connection settings; file and folder modes; errors naming the file.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "broker/store/schema_migrations.h"
#include "broker/store/sqlite_connection.h"
#include "broker/store/sqlite_store.h"
#include "broker/store/testing/temp_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

int Mode(const fs::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::unique_ptr<SqliteConnection> Connect(const fs::path& file) {
  auto db = SqliteConnection::Open(file.string(), absl::Seconds(5));
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

// Rows of a one-column query, as text.
std::vector<std::string> Column(SqliteConnection& db, absl::string_view sql) {
  std::vector<std::string> values;
  auto stmt = db.Prepare(sql);
  EXPECT_TRUE(stmt.ok()) << stmt.status();
  if (!stmt.ok()) return values;
  while (true) {
    auto row = stmt->Step();
    EXPECT_TRUE(row.ok()) << row.status();
    if (!row.ok() || !*row) return values;
    values.push_back(stmt->Text(0));
  }
}

std::vector<std::string> Tables(SqliteConnection& db) {
  return Column(db,
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name");
}

// The store's migrations plus `extra` ones.
std::vector<Migration> WithExtra(std::vector<Migration> extra) {
  std::vector<Migration> all(SqliteSchemaMigrations().begin(), SqliteSchemaMigrations().end());
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

TEST(StoreMigrations, NewFileGetsEveryTableAndTheLatestVersion) {
  TempDir dir;
  FakeClock clock;
  const fs::path file = dir.path() / "broker.sqlite3";
  ASSERT_TRUE(SqliteStore::Open(file, TestStoreOptions(&clock)).ok());
  auto db = Connect(file);
  ASSERT_NE(db, nullptr);
  auto version = SchemaVersion(*db);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1);
  EXPECT_EQ(static_cast<int>(SqliteSchemaMigrations().size()), 1);
  EXPECT_THAT(Tables(*db), ElementsAre("api_keys", "contents", "memberships", "plugin_kv",
                                       "schema_version", "users", "workspaces"));
  EXPECT_THAT(Column(*db, "SELECT description FROM schema_version"),
              ElementsAre("users, workspaces, memberships, contents, api_keys, plugin_kv"));
}

TEST(StoreMigrations, ReopeningKeepsDataAndAppliesNothingTwice) {
  TempDir dir;
  FakeClock clock;
  const fs::path file = dir.path() / "broker.sqlite3";
  {
    auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->KvSet("p", "k", "v").ok());
  }
  auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
  ASSERT_TRUE(store.ok()) << store.status();
  auto value = (*store)->KvGet("p", "k");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "v");
  auto db = Connect(file);
  ASSERT_NE(db, nullptr);
  EXPECT_THAT(Column(*db, "SELECT version FROM schema_version"), ElementsAre("1"));
}

TEST(StoreMigrations, LaterMigrationIsAppliedToAnExistingFileInOrder) {
  TempDir dir;
  const fs::path file = dir.path() / "db.sqlite3";
  {
    auto db = Connect(file);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(ApplyMigrations(*db, SqliteSchemaMigrations()).ok());
    ASSERT_TRUE(db->Exec("INSERT INTO plugin_kv VALUES ('p', 'k', x'00')").ok());
  }
  auto db = Connect(file);
  ASSERT_NE(db, nullptr);
  const auto migrations = WithExtra({
      {2, "add notes", "CREATE TABLE notes (text TEXT NOT NULL) STRICT;"},
      {3, "note one", "INSERT INTO notes VALUES ('from 3');"},
  });
  ASSERT_TRUE(ApplyMigrations(*db, migrations).ok());
  EXPECT_EQ(*SchemaVersion(*db), 3);
  EXPECT_THAT(Column(*db, "SELECT text FROM notes"), ElementsAre("from 3"));
  EXPECT_THAT(Column(*db, "SELECT key FROM plugin_kv"), ElementsAre("k"));
  EXPECT_THAT(Column(*db, "SELECT description FROM schema_version ORDER BY version"),
              ElementsAre("users, workspaces, memberships, contents, api_keys, plugin_kv",
                          "add notes", "note one"));
  // Once more: nothing left to do.
  ASSERT_TRUE(ApplyMigrations(*db, migrations).ok());
  EXPECT_THAT(Column(*db, "SELECT text FROM notes"), ElementsAre("from 3"));
}

TEST(StoreMigrations, FailingMigrationLeavesTheFileAtTheLastCompleteVersion) {
  TempDir dir;
  const fs::path file = dir.path() / "db.sqlite3";
  auto db = Connect(file);
  ASSERT_NE(db, nullptr);
  const auto migrations = WithExtra({
      {2, "half done", "CREATE TABLE half (x INTEGER); INSERT INTO missing VALUES (1);"},
  });
  const absl::Status status = ApplyMigrations(*db, migrations);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(status.message(), "schema migration 2 (half done) failed: exec: " + file.string() +
                                  ": no such table: missing");
  EXPECT_EQ(*SchemaVersion(*db), 1);
  EXPECT_THAT(Tables(*db), ::testing::Not(::testing::Contains("half")));
  EXPECT_THAT(Tables(*db), ::testing::Contains("users"));
}

TEST(StoreMigrations, FileNewerThanTheCodeIsRefused) {
  TempDir dir;
  FakeClock clock;
  const fs::path file = dir.path() / "broker.sqlite3";
  {
    auto db = Connect(file);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(ApplyMigrations(*db, WithExtra({{2, "future", "SELECT 1;"}})).ok());
  }
  auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
  EXPECT_EQ(store.status(),
            absl::FailedPreconditionError(file.string() +
                                          " has schema version 2, newer than this broker's 1"));
}

TEST(StoreMigrations, MisnumberedMigrationsAreRefusedBeforeTouchingTheFile) {
  TempDir dir;
  auto db = Connect(dir.path() / "db.sqlite3");
  ASSERT_NE(db, nullptr);
  const Migration gap[] = {{1, "one", "SELECT 1;"}, {3, "three", "SELECT 1;"}};
  EXPECT_EQ(ApplyMigrations(*db, gap),
            absl::InvalidArgumentError("migration #2 has version 3, expected 2"));
  EXPECT_EQ(*SchemaVersion(*db), 0);
}

TEST(StoreOpen, ConnectionUsesWalAndForeignKeys) {
  TempDir dir;
  auto db = Connect(dir.path() / "db.sqlite3");
  ASSERT_NE(db, nullptr);
  EXPECT_THAT(Column(*db, "PRAGMA journal_mode"), ElementsAre("wal"));
  EXPECT_THAT(Column(*db, "PRAGMA foreign_keys"), ElementsAre("1"));
  EXPECT_THAT(Column(*db, "PRAGMA synchronous"), ElementsAre("2"));  // FULL
  EXPECT_THAT(Column(*db, "PRAGMA busy_timeout"), ElementsAre("5000"));
}

TEST(StoreConnection, FailedTransactionBodyRollsBackItsWrites) {
  TempDir dir;
  auto db = Connect(dir.path() / "db.sqlite3");
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (x INTEGER NOT NULL)").ok());
  const absl::Status status = db->InTransaction([&]() -> absl::Status {
    absl::Status inserted = db->Exec("INSERT INTO t VALUES (1)");
    if (!inserted.ok()) return inserted;
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(status, absl::AbortedError("changed my mind"));
  EXPECT_THAT(Column(*db, "SELECT count(*) FROM t"), ElementsAre("0"));
  // And a later transaction still commits.
  ASSERT_TRUE(db->InTransaction([&] { return db->Exec("INSERT INTO t VALUES (2)"); }).ok());
  EXPECT_THAT(Column(*db, "SELECT x FROM t"), ElementsAre("2"));
}

TEST(StoreConnection, FailingStatementInATransactionRollsBackEarlierWrites) {
  TempDir dir;
  auto db = Connect(dir.path() / "db.sqlite3");
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  const absl::Status status = db->InTransaction([&]() -> absl::Status {
    absl::Status inserted = db->Exec("INSERT INTO t VALUES (2)");
    if (!inserted.ok()) return inserted;
    return db->Exec("INSERT INTO t VALUES (1)");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(status.message(), HasSubstr("UNIQUE constraint failed: t.x"));
  EXPECT_THAT(Column(*db, "SELECT x FROM t"), ElementsAre("1"));
}

TEST(StoreConnection, SameStatementCanBeSteppedTwiceAtOnce) {
  TempDir dir;
  auto db = Connect(dir.path() / "db.sqlite3");
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);").ok());
  constexpr absl::string_view kSql = "SELECT x FROM t ORDER BY x";
  std::vector<std::string> pairs;
  {
    auto outer = db->Prepare(kSql);
    ASSERT_TRUE(outer.ok()) << outer.status();
    while (*outer->Step()) {
      // The cached statement is busy: this one is a private copy.
      auto inner = db->Prepare(kSql);
      ASSERT_TRUE(inner.ok()) << inner.status();
      while (*inner->Step()) pairs.push_back(outer->Text(0) + inner->Text(0));
    }
  }
  EXPECT_THAT(pairs, ElementsAre("11", "12", "21", "22"));
  // The cached statement was handed back, reset.
  EXPECT_THAT(Column(*db, kSql), ElementsAre("1", "2"));
}

TEST(StoreOpen, CreatesMissingFoldersWith0700AndTheFileWith0600) {
  TempDir dir;
  FakeClock clock;
  const fs::path state = dir.path() / "var" / "state";
  const fs::path file = state / "broker.sqlite3";
  auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->KvSet("p", "k", "v").ok());
  EXPECT_EQ(Mode(dir.path() / "var"), 0700);
  EXPECT_EQ(Mode(state), 0700);
  EXPECT_EQ(Mode(file), 0600);
  // SQLite gives the write-ahead log the database's mode.
  EXPECT_EQ(Mode(fs::path(file.string() + "-wal")), 0600);
}

TEST(StoreOpen, LeavesAnExistingFolderAndFileModeAlone) {
  TempDir dir;
  FakeClock clock;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0750), 0);
  const fs::path file = dir.path() / "broker.sqlite3";
  std::ofstream(file).close();
  ASSERT_EQ(::chmod(file.c_str(), 0640), 0);
  ASSERT_TRUE(SqliteStore::Open(file, TestStoreOptions(&clock)).ok());
  EXPECT_EQ(Mode(dir.path()), 0750);
  EXPECT_EQ(Mode(file), 0640);
}

TEST(StoreOpen, FileThatIsNotADatabaseIsAFailedPreconditionNamingIt) {
  TempDir dir;
  FakeClock clock;
  const fs::path file = dir.path() / "broker.sqlite3";
  std::ofstream(file) << std::string(4096, 'x');
  auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
  EXPECT_EQ(store.status(), absl::FailedPreconditionError("cannot open database: " + file.string() +
                                                          ": file is not a database"));
}

TEST(StoreOpen, FolderThatCannotBeCreatedIsAFailedPreconditionNamingIt) {
  TempDir dir;
  FakeClock clock;
  std::ofstream(dir.path() / "plain").close();
  const fs::path folder = dir.path() / "plain" / "state";
  auto store = SqliteStore::Open(folder / "broker.sqlite3", TestStoreOptions(&clock));
  EXPECT_EQ(store.status(), absl::FailedPreconditionError("cannot create folder " +
                                                          folder.string() + ": Not a directory"));
}

TEST(StoreOpen, UnopenableFileIsAFailedPreconditionWithSqlitesMessage) {
  TempDir dir;
  FakeClock clock;
  // A folder where the file should be.
  const fs::path file = dir.path() / "broker.sqlite3";
  fs::create_directory(file);
  auto store = SqliteStore::Open(file, TestStoreOptions(&clock));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(file.string()));
  EXPECT_THAT(store.status().message(), HasSubstr("unable to open database file"));
}

}  // namespace
}  // namespace tracim::broker
