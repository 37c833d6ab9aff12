// SqliteStore: the Store on one SQLite file (WAL, foreign keys, prepared
// statements, one IMMEDIATE transaction per mutation, schema migrations at
// Open). Thread-safe: one connection behind a mutex, so calls from the Asio
// thread and from gRPC threads serialise; password and key hashing run
// outside the mutex.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<SqliteStore> store,
//                    SqliteStore::Open(state_dir / kSqliteStoreFileName));
//   ASSIGN_OR_RETURN(std::optional<User> admin, store->EnsureAdmin(password));
#ifndef TRACIM_BROKER_STORE_SQLITE_STORE_H_
#define TRACIM_BROKER_STORE_SQLITE_STORE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/store/entities.h"
#include "broker/store/sqlite_connection.h"
#include "broker/store/store.h"

namespace tracim::broker {

// The database's name under broker.state_dir.
inline constexpr absl::string_view kSqliteStoreFileName = "broker.sqlite3";

struct SqliteStoreOptions {
  // yescrypt cost for new password hashes; 0 is libxcrypt's default. Tests
  // lower it to 1 to stay fast.
  int password_cost = 0;
  // How long a call waits for a lock held by another process before
  // UNAVAILABLE.
  absl::Duration busy_timeout = absl::Seconds(5);
  // The clock for created / modified (tests pin it).
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class SqliteStore final : public Store {
 public:
  // Opens `file`, creating it (mode 0600) and its missing folders (mode
  // 0700) if needed; an existing file keeps its mode. Applies the pending
  // schema migrations. Errors name the file and, when SQLite fails, carry its
  // message: FAILED_PRECONDITION for a folder or file that cannot be
  // created or opened, a file that is not a database, or a schema newer than
  // this code; UNAVAILABLE when another process holds the lock too long.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::filesystem::path& file,
                                                           SqliteStoreOptions options = {});

  // Users
  absl::StatusOr<User> CreateUser(const NewUser& user) override;
  absl::StatusOr<User> GetUser(int64_t user_id) override;
  absl::StatusOr<User> GetUserByEmail(absl::string_view email) override;
  absl::StatusOr<User> GetUserByUsername(absl::string_view username) override;
  absl::StatusOr<std::vector<User>> ListUsers(bool include_deleted) override;
  absl::StatusOr<User> UpdateUser(int64_t user_id, const UserUpdate& update) override;
  absl::StatusOr<User> DeleteUser(int64_t user_id) override;
  absl::StatusOr<User> VerifyPassword(absl::string_view login, absl::string_view password) override;
  absl::StatusOr<std::optional<User>> EnsureAdmin(absl::string_view password) override;

  // API keys
  absl::StatusOr<CreatedApiKey> CreateApiKey(int64_t user_id, absl::string_view label) override;
  absl::StatusOr<std::vector<ApiKey>> ListApiKeys(int64_t user_id) override;
  absl::StatusOr<ApiKey> DeleteApiKey(int64_t user_id, int64_t api_key_id) override;
  absl::StatusOr<User> VerifyApiKey(absl::string_view login, absl::string_view key) override;

  // Workspaces
  absl::StatusOr<Workspace> CreateWorkspace(const NewWorkspace& workspace) override;
  absl::StatusOr<Workspace> GetWorkspace(int64_t workspace_id) override;
  absl::StatusOr<std::vector<Workspace>> ListWorkspaces(bool include_deleted) override;
  absl::StatusOr<Workspace> UpdateWorkspace(int64_t workspace_id,
                                            const WorkspaceUpdate& update) override;
  absl::StatusOr<Workspace> DeleteWorkspace(int64_t workspace_id) override;

  // Memberships
  absl::StatusOr<Membership> AddMembership(int64_t workspace_id, int64_t user_id,
                                           WorkspaceRole role) override;
  absl::StatusOr<Membership> UpdateMembership(int64_t workspace_id, int64_t user_id,
                                              WorkspaceRole role) override;
  absl::StatusOr<MembershipChange> SetMembership(int64_t workspace_id, int64_t user_id,
                                                 WorkspaceRole role) override;
  absl::StatusOr<Membership> GetMembership(int64_t workspace_id, int64_t user_id) override;
  absl::StatusOr<std::vector<Membership>> ListWorkspaceMembers(int64_t workspace_id) override;
  absl::StatusOr<std::vector<Membership>> ListUserMemberships(int64_t user_id) override;
  absl::StatusOr<Membership> RemoveMembership(int64_t workspace_id, int64_t user_id) override;

  // Contents
  absl::StatusOr<Content> CreateContent(const NewContent& content) override;
  absl::StatusOr<Content> GetContent(int64_t content_id) override;
  absl::StatusOr<std::vector<Content>> ListContents(int64_t workspace_id,
                                                    const ContentFilter& filter) override;
  absl::StatusOr<Content> UpdateContent(int64_t content_id, const ContentUpdate& update) override;
  absl::StatusOr<Content> DeleteContent(int64_t content_id) override;

  // Plugin key-value store
  absl::StatusOr<std::optional<std::string>> KvGet(absl::string_view plugin,
                                                   absl::string_view key) override;
  absl::Status KvSet(absl::string_view plugin, absl::string_view key,
                     absl::string_view value) override;
  absl::StatusOr<bool> KvDelete(absl::string_view plugin, absl::string_view key) override;
  absl::StatusOr<std::vector<std::string>> KvList(absl::string_view plugin,
                                                  absl::string_view prefix) override;

 private:
  // A user row with its password hash (empty without one).
  struct UserWithHash {
    User user;
    std::string password_hash;
  };

  SqliteStore(std::unique_ptr<SqliteConnection> db, SqliteStoreOptions options,
              std::string dummy_hash);

  int64_t NowMicros() const;

  // Loaders: NOT_FOUND "<noun> <id> not found"; the Live variants also
  // refuse a deleted entity with FAILED_PRECONDITION "<noun> <id> is deleted".
  absl::StatusOr<User> LoadUser(int64_t user_id, absl::string_view noun)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<User> LoadLiveUser(int64_t user_id, absl::string_view noun)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<UserWithHash>> FindUserByLogin(absl::string_view login)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Workspace> LoadWorkspace(int64_t workspace_id, absl::string_view noun)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Workspace> LoadLiveWorkspace(int64_t workspace_id, absl::string_view noun)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<Membership>> FindMembership(int64_t workspace_id, int64_t user_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Content> LoadContent(int64_t content_id, absl::string_view noun)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ALREADY_EXISTS when another user (not `except_user_id`) has the email or
  // the username.
  absl::Status CheckUnique(const std::string& email, const std::string& username,
                           int64_t except_user_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<User> InsertUser(const NewUser& user, const std::optional<std::string>& hash)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Membership> InsertMembership(int64_t workspace_id, int64_t user_id,
                                              WorkspaceRole role)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Membership> WriteMembershipRole(int64_t workspace_id, int64_t user_id,
                                                 WorkspaceRole role)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // FAILED_PRECONDITION if `parent_id` is `workspace_id` or one of its descendants.
  absl::Status CheckWorkspaceParent(int64_t workspace_id, int64_t parent_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Where a content of `type` may go under `parent_id` (> 0) in
  // `workspace_id`; `moving_id` is the content being moved, 0 on creation.
  absl::Status CheckContentParent(int64_t workspace_id, int64_t parent_id, ContentType type,
                                  int64_t moving_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes every mutable column of `content` (found by its id); returns the row.
  absl::StatusOr<Content> WriteContent(const Content& content) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const SqliteStoreOptions options_;
  // A hash of a random password, checked against on unknown logins so they
  // cost as much as wrong passwords.
  const std::string dummy_hash_;
  absl::Mutex mu_;
  std::unique_ptr<SqliteConnection> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_SQLITE_STORE_H_
