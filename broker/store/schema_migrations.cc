#include "broker/store/schema_migrations.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/common/status_macros.h"

namespace tracim::broker {
namespace {

// Times are microseconds since the Unix epoch (columns named *_us); ids use
// AUTOINCREMENT so an id is never given twice, even after a row is gone
// (plugins keep ids in their key-value stores). Booleans are 0/1. Emails and
// usernames compare case-insensitively (ASCII), so "Bob" cannot shadow "bob".
// Enum columns hold tracim's names; the CHECKs back the store's validation.
constexpr absl::string_view kMigration1 = R"sql(
CREATE TABLE users (
  user_id       INTEGER PRIMARY KEY AUTOINCREMENT,
  email         TEXT COLLATE NOCASE UNIQUE,
  username      TEXT COLLATE NOCASE UNIQUE,
  public_name   TEXT NOT NULL,
  profile       TEXT NOT NULL
                CHECK (profile IN ('nobody', 'users', 'trusted-users', 'administrators')),
  password_hash TEXT,
  is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  is_deleted    INTEGER NOT NULL DEFAULT 0 CHECK (is_deleted IN (0, 1)),
  lang          TEXT NOT NULL DEFAULT '',
  timezone      TEXT NOT NULL DEFAULT '',
  created_us    INTEGER NOT NULL,
  CHECK (email IS NOT NULL OR username IS NOT NULL)
) STRICT;

CREATE TABLE workspaces (
  workspace_id      INTEGER PRIMARY KEY AUTOINCREMENT,
  label             TEXT NOT NULL CHECK (label <> ''),
  description       TEXT NOT NULL DEFAULT '',
  access_type       TEXT NOT NULL CHECK (access_type IN ('confidential', 'on_request', 'open')),
  default_user_role TEXT NOT NULL CHECK (default_user_role IN
                      ('reader', 'contributor', 'content-manager', 'workspace-manager')),
  parent_id         INTEGER REFERENCES workspaces (workspace_id),
  owner_id          INTEGER REFERENCES users (user_id),
  is_deleted        INTEGER NOT NULL DEFAULT 0 CHECK (is_deleted IN (0, 1)),
  created_us        INTEGER NOT NULL
) STRICT;
CREATE INDEX workspaces_by_parent ON workspaces (parent_id);

CREATE TABLE memberships (
  workspace_id INTEGER NOT NULL REFERENCES workspaces (workspace_id),
  user_id      INTEGER NOT NULL REFERENCES users (user_id),
  role         TEXT NOT NULL
               CHECK (role IN ('reader', 'contributor', 'content-manager', 'workspace-manager')),
  created_us   INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, workspace_id);

CREATE TABLE contents (
  content_id     INTEGER PRIMARY KEY AUTOINCREMENT,
  workspace_id   INTEGER NOT NULL REFERENCES workspaces (workspace_id),
  parent_id      INTEGER REFERENCES contents (content_id),
  content_type   TEXT NOT NULL
                 CHECK (content_type IN ('folder', 'file', 'html-document', 'thread', 'comment')),
  label          TEXT NOT NULL DEFAULT '',
  raw_content    TEXT NOT NULL DEFAULT '',
  file_name      TEXT NOT NULL DEFAULT '',
  file_extension TEXT NOT NULL DEFAULT '',
  file_mimetype  TEXT NOT NULL DEFAULT '',
  status         TEXT NOT NULL CHECK (status IN
                   ('open', 'closed-validated', 'closed-unvalidated', 'closed-deprecated')),
  is_deleted     INTEGER NOT NULL DEFAULT 0 CHECK (is_deleted IN (0, 1)),
  is_archived    INTEGER NOT NULL DEFAULT 0 CHECK (is_archived IN (0, 1)),
  author_id      INTEGER NOT NULL REFERENCES users (user_id),
  revision_type  TEXT NOT NULL CHECK (revision_type IN ('creation', 'edition', 'deletion',
                   'archiving', 'unarchiving', 'status-update', 'move')),
  created_us     INTEGER NOT NULL,
  modified_us    INTEGER NOT NULL
) STRICT;
CREATE INDEX contents_by_workspace ON contents (workspace_id, parent_id);
CREATE INDEX contents_by_parent ON contents (parent_id);
CREATE INDEX contents_by_author ON contents (author_id);

-- key_hash: SHA-256 of the key (see api_key_secret.h); the key is never stored.
CREATE TABLE api_keys (
  api_key_id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id    INTEGER NOT NULL REFERENCES users (user_id),
  key_hash   BLOB NOT NULL UNIQUE,
  label      TEXT NOT NULL DEFAULT '',
  created_us INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_by_user ON api_keys (user_id);

-- Keys compare bytewise (BINARY collation): KvList's order is byte order.
CREATE TABLE plugin_kv (
  plugin TEXT NOT NULL,
  key    TEXT NOT NULL,
  value  BLOB NOT NULL,
  PRIMARY KEY (plugin, key)
) STRICT, WITHOUT ROWID;
)sql";

constexpr Migration kMigrations[] = {
    {1, "users, workspaces, memberships, contents, api_keys, plugin_kv", kMigration1},
};

constexpr absl::string_view kCreateVersionTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (
  version     INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_us  INTEGER NOT NULL
) STRICT;
)sql";

}  // namespace

absl::Span<const Migration> SqliteSchemaMigrations() { return kMigrations; }

absl::StatusOr<int> SchemaVersion(SqliteConnection& db) {
  {
    ASSIGN_OR_RETURN(Statement exists,
                     db.Prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                                "name = 'schema_version'"));
    ASSIGN_OR_RETURN(const bool found, exists.Step());
    if (!found) return 0;
  }
  ASSIGN_OR_RETURN(Statement max,
                   db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version"));
  ASSIGN_OR_RETURN(const bool row, max.Step());
  return row ? static_cast<int>(max.Int64(0)) : 0;
}

absl::Status ApplyMigrations(SqliteConnection& db, absl::Span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(absl::StrCat("migration #", i + 1, " has version ",
                                                     migrations[i].version, ", expected ", i + 1));
    }
  }
  const int latest = static_cast<int>(migrations.size());
  bool done = false;
  while (!done) {
    // The version is read inside the write transaction: another process
    // opening the same file at the same moment cannot apply a migration twice.
    RETURN_IF_ERROR(db.InTransaction([&]() -> absl::Status {
      RETURN_IF_ERROR(db.Exec(kCreateVersionTable));
      ASSIGN_OR_RETURN(const int current, SchemaVersion(db));
      if (current > latest) {
        return absl::FailedPreconditionError(absl::StrCat(
            db.file(), " has schema version ", current, ", newer than this broker's ", latest));
      }
      if (current == latest) {
        done = true;
        return absl::OkStatus();
      }
      const Migration& next = migrations[current];
      absl::Status applied = db.Exec(next.sql);
      if (!applied.ok()) {
        return absl::Status(applied.code(),
                            absl::StrCat("schema migration ", next.version, " (", next.description,
                                         ") failed: ", applied.message()));
      }
      ASSIGN_OR_RETURN(Statement record,
                       db.Prepare("INSERT INTO schema_version (version, description, applied_us) "
                                  "VALUES (?, ?, ?)"));
      RETURN_IF_ERROR(
          record.BindAll(next.version, next.description, absl::ToUnixMicros(absl::Now())));
      return record.Run();
    }));
  }
  return absl::OkStatus();
}

}  // namespace tracim::broker
