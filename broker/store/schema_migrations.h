// The SQLite store's schema as an ordered list of migrations, and the code
// that brings a database file up to date with them. Runs on a connection its
// caller owns exclusively (SqliteStore::Open): not thread-safe.
//
// To change the schema, append a migration (version N+1) to
// SqliteSchemaMigrations(); never edit one that has shipped.
#ifndef TRACIM_BROKER_STORE_SCHEMA_MIGRATIONS_H_
#define TRACIM_BROKER_STORE_SCHEMA_MIGRATIONS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "broker/store/sqlite_connection.h"

namespace tracim::broker {

struct Migration {
  // 1, 2, 3, ... without gaps.
  int version;
  // Recorded in schema_version, for people reading the file.
  absl::string_view description;
  // One or more statements. Runs inside a transaction with foreign keys on.
  absl::string_view sql;
};

// The store's migrations, in order.
absl::Span<const Migration> SqliteSchemaMigrations();

// The version recorded in the file's schema_version table; 0 for a file
// without one (new).
absl::StatusOr<int> SchemaVersion(SqliteConnection& db);

// Applies, in order, each migration newer than the file's version, each in
// its own transaction together with its schema_version row, so a crash or a
// failure leaves the file at the last complete version.
// Errors: INVALID_ARGUMENT if `migrations` are not numbered 1, 2, ...;
// FAILED_PRECONDITION when the file is newer than the last migration known
// ("<file> has schema version 3, newer than this broker's 2"); a failing
// migration's error names its version and SQLite's message.
absl::Status ApplyMigrations(SqliteConnection& db, absl::Span<const Migration> migrations);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_SCHEMA_MIGRATIONS_H_
