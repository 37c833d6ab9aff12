#include "broker/store/sqlite_connection.h"

#include <sqlite3.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"

namespace tracim::broker {

// --- Statement ---------------------------------------------------------------

Statement::Statement(SqliteConnection* connection, sqlite3_stmt* stmt, bool* in_use)
    : connection_(connection), stmt_(stmt), in_use_(in_use) {}

Statement::Statement(Statement&& other) noexcept
    : connection_(other.connection_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      in_use_(std::exchange(other.in_use_, nullptr)) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (in_use_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

absl::Status Statement::BindOne(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) return connection_->ErrorStatus(rc, "bind");
  return absl::OkStatus();
}

absl::Status Statement::BindOne(int index, absl::string_view value) {
  // A null data pointer would bind NULL instead of "".
  const char* data = value.data() != nullptr ? value.data() : "";
  const int rc =
      sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return connection_->ErrorStatus(rc, "bind");
  return absl::OkStatus();
}

absl::Status Statement::BindOne(int index, const Blob& value) {
  const int rc = value.bytes.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                                     : sqlite3_bind_blob64(stmt_, index, value.bytes.data(),
                                                           value.bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return connection_->ErrorStatus(rc, "bind");
  return absl::OkStatus();
}

absl::Status Statement::BindOne(int index, std::nullopt_t) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) return connection_->ErrorStatus(rc, "bind");
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return connection_->ErrorStatus(rc, sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  ASSIGN_OR_RETURN(const bool row, Step());
  if (row) {
    return absl::InternalError(
        absl::StrCat(connection_->file(), ": statement returned a row: ", sqlite3_sql(stmt_)));
  }
  return absl::OkStatus();
}

int64_t Statement::Int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  // Works for TEXT and BLOB alike; the pointer is null for NULL and for
  // zero-length values. Read the pointer before the size (SQLite's rule).
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// --- SqliteConnection ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(
    const std::string& file, absl::Duration busy_timeout) {
  sqlite3* db = nullptr;
  // NOMUTEX: the owner serialises calls, SQLite need not lock again.
  const int rc = sqlite3_open_v2(
      file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    // SQLite usually returns a handle even on failure, carrying the message.
    SqliteConnection failed(file, db);
    return failed.ErrorStatus(rc, "cannot open database");
  }
  std::unique_ptr<SqliteConnection> connection(new SqliteConnection(file, db));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));

  // The first statement reads the file: one that is not a database fails here.
  std::string journal_mode;
  const int wal_rc = sqlite3_exec(
      db, "PRAGMA journal_mode=WAL",
      [](void* out, int columns, char** values, char**) {
        if (columns > 0 && values[0] != nullptr) *static_cast<std::string*>(out) = values[0];
        return 0;
      },
      &journal_mode, nullptr);
  if (wal_rc != SQLITE_OK) return connection->ErrorStatus(wal_rc, "cannot open database");
  if (journal_mode != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open database: ", file, ": journal mode is ", journal_mode, ", not wal"));
  }
  RETURN_IF_ERROR(connection->Exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;"));
  return connection;
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  // close_v2: never fails with BUSY; the handle is released once unused.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::Status SqliteConnection::Exec(absl::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return ErrorStatus(rc, "exec");
  return absl::OkStatus();
}

absl::StatusOr<Statement> SqliteConnection::Prepare(absl::string_view sql) {
  auto [it, inserted] = cache_.try_emplace(std::string(sql));
  CachedStatement& slot = it->second;
  if (slot.stmt == nullptr) {
    const int rc = sqlite3_prepare_v3(db_, it->first.data(), static_cast<int>(it->first.size()),
                                      SQLITE_PREPARE_PERSISTENT, &slot.stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(slot.stmt);
      cache_.erase(it);
      return ErrorStatus(rc, absl::StrCat("prepare \"", sql, "\""));
    }
  }
  if (!slot.in_use) {
    slot.in_use = true;
    return Statement(this, slot.stmt, &slot.in_use);
  }
  // The cached one is being stepped (a nested query): use a private copy.
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v2(db_, it->first.data(), static_cast<int>(it->first.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return ErrorStatus(rc, absl::StrCat("prepare \"", sql, "\""));
  }
  return Statement(this, stmt, nullptr);
}

absl::Status SqliteConnection::InTransaction(absl::FunctionRef<absl::Status()> body) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = body();
  if (status.ok()) status = Exec("COMMIT");
  // Some errors (e.g. SQLITE_FULL) already rolled back: only roll back an
  // open transaction.
  if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
    (void)Exec("ROLLBACK");
  }
  return status;
}

absl::Status SqliteConnection::ErrorStatus(int rc, absl::string_view context) const {
  const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string text = absl::StrCat(context, ": ", file_, ": ", message);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(text);
      }
      return absl::InternalError(text);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(text);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::InternalError(text);
  }
}

}  // namespace tracim::broker
