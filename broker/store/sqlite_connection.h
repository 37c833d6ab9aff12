// SqliteConnection: one SQLite connection with cached prepared statements,
// typed binds and reads, IMMEDIATE transactions, and SQLite result codes
// mapped to absl::Status. The building block of SqliteStore.
// Not thread-safe: its owner serialises every call, Statements included
// (SqliteStore holds its mutex around each use).
//
//   ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT label FROM workspaces WHERE workspace_id =
//   ?")); RETURN_IF_ERROR(stmt.BindAll(workspace_id)); ASSIGN_OR_RETURN(bool row, stmt.Step()); if
//   (row) label = stmt.Text(0);
#ifndef TRACIM_BROKER_STORE_SQLITE_CONNECTION_H_
#define TRACIM_BROKER_STORE_SQLITE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tracim::broker {

// Bytes bound as a BLOB (a plain string_view binds as TEXT).
struct Blob {
  absl::string_view bytes;
};

// A prepared statement borrowed from its connection's cache (or, when the
// cached one is already in use, a private one). Destroying it resets it and
// clears its bindings. Must not outlive its connection.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Binds parameters 1..N in order. Accepts integers, bool, strings (TEXT),
  // Blob, std::nullopt (NULL) and std::optional of those.
  template <typename... Args>
  absl::Status BindAll(const Args&... args) {
    int index = 0;
    absl::Status status;
    // Stops at the first failure.
    (void)((status = BindOne(++index, args)).ok() && ...);
    return status;
  }

  // Advances: true with a row to read, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no row (INSERT, UPDATE, DELETE).
  absl::Status Run();

  // Column readers for the current row (0-based). NULL reads as 0 or "".
  int64_t Int64(int column) const;
  bool Bool(int column) const { return Int64(column) != 0; }
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class SqliteConnection;
  Statement(class SqliteConnection* connection, sqlite3_stmt* stmt, bool* in_use);

  absl::Status BindOne(int index, int64_t value);
  absl::Status BindOne(int index, int value) { return BindOne(index, int64_t{value}); }
  absl::Status BindOne(int index, bool value) { return BindOne(index, int64_t{value ? 1 : 0}); }
  absl::Status BindOne(int index, absl::string_view value);
  absl::Status BindOne(int index, const std::string& value) {
    return BindOne(index, absl::string_view(value));
  }
  absl::Status BindOne(int index, const char* value) {
    return BindOne(index, absl::string_view(value));
  }
  absl::Status BindOne(int index, const Blob& value);
  absl::Status BindOne(int index, std::nullopt_t);
  template <typename T>
  absl::Status BindOne(int index, const std::optional<T>& value) {
    return value.has_value() ? BindOne(index, *value) : BindOne(index, std::nullopt);
  }

  class SqliteConnection* connection_;
  sqlite3_stmt* stmt_;
  // The cache slot's flag when borrowed from the cache; null for a private
  // statement, finalized on destruction.
  bool* in_use_;
};

class SqliteConnection {
 public:
  // Opens (creating if missing) `file` in WAL mode with foreign keys on,
  // synchronous=FULL (a commit that fired a hook survives a power cut) and
  // `busy_timeout` for locks held by other processes. Errors name the file
  // and carry SQLite's message, with the code from ErrorStatus.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(const std::string& file,
                                                                absl::Duration busy_timeout);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  // Runs one or more statements without parameters (schema, pragmas).
  absl::Status Exec(absl::string_view sql);

  // A statement for `sql`, prepared once and cached by its text.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // Runs `body` between BEGIN IMMEDIATE and COMMIT (IMMEDIATE: the write lock
  // is taken up front, so a transaction never fails half-way on a lock). When
  // `body` or COMMIT fails, rolls back and returns that error: nothing
  // changed. Not reentrant.
  absl::Status InTransaction(absl::FunctionRef<absl::Status()> body);

  // The status for SQLite result code `rc`, with `context`, the file and
  // SQLite's latest message:
  //   BUSY, LOCKED                                   → UNAVAILABLE (retry)
  //   CONSTRAINT_UNIQUE, CONSTRAINT_PRIMARYKEY       → ALREADY_EXISTS
  //   CANTOPEN, PERM, READONLY, NOTADB, CORRUPT, AUTH → FAILED_PRECONDITION
  //   FULL                                           → RESOURCE_EXHAUSTED
  //   anything else                                  → INTERNAL
  absl::Status ErrorStatus(int rc, absl::string_view context) const;

  const std::string& file() const { return file_; }
  sqlite3* handle() { return db_; }

 private:
  struct CachedStatement {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  SqliteConnection(std::string file, sqlite3* db) : file_(std::move(file)), db_(db) {}

  std::string file_;
  sqlite3* db_;
  // Node-based: a Statement keeps a pointer to its slot's in_use flag.
  std::unordered_map<std::string, CachedStatement> cache_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_SQLITE_CONNECTION_H_
