// Store: the embedded backend's persistent state (users, workspaces,
// memberships, contents, API keys, and each plugin's key-value store) behind a
// pure interface, so that PostgreSQL can come later as another implementation.
// Implementations are thread-safe: any method may be called from any thread.
//
//   ASSIGN_OR_RETURN(User user, store.CreateUser({.email = "bob@x.org", .password = pw}));
//   events.Publish(UserCreated(user));   // after the call returned: it committed
//
// Contracts shared by every method:
// - Each call is atomic: it commits entirely or, when it returns an error,
//   changes nothing.
// - Mutations return the entity as stored after the change (or, for a
//   removal, as it was), ready to be published in a hook after commit.
// - Error codes are deliberate and stable (the REST layer maps them):
//     NOT_FOUND            an unknown id, or an id referenced by a field
//                          ("parent workspace 9 not found"); ids <= 0 are unknown
//     ALREADY_EXISTS       duplicate email, username or membership
//     INVALID_ARGUMENT     an empty required field, a malformed value
//     FAILED_PRECONDITION  the state forbids it: a deleted entity, a parent in
//                          another workspace, a cycle
//     UNAUTHENTICATED      VerifyPassword / VerifyApiKey failed
//     UNAVAILABLE          the database is busy (another process); retry
//     INTERNAL             anything else the database reports
// - Soft delete: Delete* sets is_deleted and returns the entity. Get* still
//   finds deleted entities (the caller decides who may see them); List*
//   skip them unless asked; updating a deleted entity, or deleting it again,
//   is FAILED_PRECONDITION. Emails and usernames of deleted users stay taken.
#ifndef TRACIM_BROKER_STORE_STORE_H_
#define TRACIM_BROKER_STORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/store/entities.h"

namespace tracim::broker {

// The first administrator, created on an empty database (tracim's default login).
inline constexpr absl::string_view kAdminEmail = "admin@admin.admin";
inline constexpr absl::string_view kAdminUsername = "admin";
inline constexpr absl::string_view kAdminPublicName = "Global manager";

// Plugin key-value store limits: a misbehaving plugin cannot fill the disk
// one huge value at a time. Keys are non-empty UTF-8 strings.
inline constexpr size_t kMaxKvKeyBytes = 1024;
inline constexpr size_t kMaxKvValueBytes = 1 << 20;

class Store {
 public:
  virtual ~Store() = default;

  // --- Users --------------------------------------------------------------
  // Emails must look like local@domain; usernames are 3 to 255 of
  // [A-Za-z0-9._-] (so a login with '@' is always an email). Both are unique,
  // case-insensitively: ALREADY_EXISTS names the one taken. Hashes the
  // password (slow by design, outside the store's lock).
  virtual absl::StatusOr<User> CreateUser(const NewUser& user) = 0;
  virtual absl::StatusOr<User> GetUser(int64_t user_id) = 0;
  // Case-insensitive lookups. NOT_FOUND: `no user with email "x"`.
  virtual absl::StatusOr<User> GetUserByEmail(absl::string_view email) = 0;
  virtual absl::StatusOr<User> GetUserByUsername(absl::string_view username) = 0;
  // Ordered by user_id.
  virtual absl::StatusOr<std::vector<User>> ListUsers(bool include_deleted) = 0;
  virtual absl::StatusOr<User> UpdateUser(int64_t user_id, const UserUpdate& update) = 0;
  virtual absl::StatusOr<User> DeleteUser(int64_t user_id) = 0;
  // `login` is an email (contains '@') or a username. Returns the user when
  // the password matches and the user is active and not deleted; otherwise
  // UNAUTHENTICATED "invalid login or password", whatever the reason, in
  // about the same time (an unknown login still costs one hash).
  virtual absl::StatusOr<User> VerifyPassword(absl::string_view login,
                                              absl::string_view password) = 0;
  // On a database without any user, creates admin@admin.admin (username
  // "admin", public name "Global manager", administrators) with `password`
  // and returns it; otherwise returns nullopt and changes nothing.
  // Idempotent; call once at start-up, before serving.
  virtual absl::StatusOr<std::optional<User>> EnsureAdmin(absl::string_view password) = 0;

  // --- API keys (Tracim-Api-Key + Tracim-Api-Login) -----------------------
  // A new random key for an existing, not deleted user. The key is in the
  // result only: the store keeps its SHA-256.
  virtual absl::StatusOr<CreatedApiKey> CreateApiKey(int64_t user_id, absl::string_view label) = 0;
  // Ordered by api_key_id; NOT_FOUND for an unknown user.
  virtual absl::StatusOr<std::vector<ApiKey>> ListApiKeys(int64_t user_id) = 0;
  // Returns the removed key. NOT_FOUND "api key 3 not found for user 2".
  virtual absl::StatusOr<ApiKey> DeleteApiKey(int64_t user_id, int64_t api_key_id) = 0;
  // The key's owner when it matches `login` (email or username) and is
  // active and not deleted; otherwise UNAUTHENTICATED "invalid login or API key".
  virtual absl::StatusOr<User> VerifyApiKey(absl::string_view login, absl::string_view key) = 0;

  // --- Workspaces ---------------------------------------------------------
  virtual absl::StatusOr<Workspace> CreateWorkspace(const NewWorkspace& workspace) = 0;
  virtual absl::StatusOr<Workspace> GetWorkspace(int64_t workspace_id) = 0;
  // Ordered by workspace_id.
  virtual absl::StatusOr<std::vector<Workspace>> ListWorkspaces(bool include_deleted) = 0;
  // A new parent must not be the workspace itself or one of its descendants.
  virtual absl::StatusOr<Workspace> UpdateWorkspace(int64_t workspace_id,
                                                    const WorkspaceUpdate& update) = 0;
  // Child workspaces, memberships and contents are left as they are.
  virtual absl::StatusOr<Workspace> DeleteWorkspace(int64_t workspace_id) = 0;

  // --- Memberships --------------------------------------------------------
  // The user and the workspace must exist and not be deleted.
  // ALREADY_EXISTS "user 3 is already a member of workspace 4".
  virtual absl::StatusOr<Membership> AddMembership(int64_t workspace_id, int64_t user_id,
                                                   WorkspaceRole role) = 0;
  // Changes the role of an existing membership.
  // NOT_FOUND "user 3 is not a member of workspace 4".
  virtual absl::StatusOr<Membership> UpdateMembership(int64_t workspace_id, int64_t user_id,
                                                      WorkspaceRole role) = 0;
  // Adds, or changes the role of, a membership (the host API's AddMember).
  virtual absl::StatusOr<MembershipChange> SetMembership(int64_t workspace_id, int64_t user_id,
                                                         WorkspaceRole role) = 0;
  virtual absl::StatusOr<Membership> GetMembership(int64_t workspace_id, int64_t user_id) = 0;
  // Every membership of the workspace (deleted users included), ordered by
  // user_id. NOT_FOUND for an unknown workspace.
  virtual absl::StatusOr<std::vector<Membership>> ListWorkspaceMembers(int64_t workspace_id) = 0;
  // Every membership of the user (deleted workspaces included), ordered by
  // workspace_id. NOT_FOUND for an unknown user.
  virtual absl::StatusOr<std::vector<Membership>> ListUserMemberships(int64_t user_id) = 0;
  // Removes the membership (a real delete, as tracim does) and returns it.
  virtual absl::StatusOr<Membership> RemoveMembership(int64_t workspace_id, int64_t user_id) = 0;

  // --- Contents (comments are contents of type comment) -------------------
  // The workspace and the author must exist and not be deleted; a parent must
  // exist, not be deleted, be in the same workspace and be a folder (or, for
  // a comment, anything but a comment). created == modified.
  virtual absl::StatusOr<Content> CreateContent(const NewContent& content) = 0;
  virtual absl::StatusOr<Content> GetContent(int64_t content_id) = 0;
  // NOT_FOUND for an unknown workspace (a deleted one still lists).
  virtual absl::StatusOr<std::vector<Content>> ListContents(int64_t workspace_id,
                                                            const ContentFilter& filter) = 0;
  // Sets modified and revision_type: "edition" if label, raw_content,
  // file_name or file_mimetype changed, else "move" if the parent changed,
  // else "status-update" if the status changed, else "archiving" /
  // "unarchiving", else (nothing changed) "edition".
  virtual absl::StatusOr<Content> UpdateContent(int64_t content_id,
                                                const ContentUpdate& update) = 0;
  // revision_type "deletion". Children are left as they are.
  virtual absl::StatusOr<Content> DeleteContent(int64_t content_id) = 0;

  // --- Plugin key-value store ---------------------------------------------
  // Each plugin (by name) sees only its own keys. Values are bytes.
  virtual absl::StatusOr<std::optional<std::string>> KvGet(absl::string_view plugin,
                                                           absl::string_view key) = 0;
  // Creates or replaces.
  virtual absl::Status KvSet(absl::string_view plugin, absl::string_view key,
                             absl::string_view value) = 0;
  // Whether the key existed.
  virtual absl::StatusOr<bool> KvDelete(absl::string_view plugin, absl::string_view key) = 0;
  // Keys starting with `prefix` (empty: all), in byte order.
  virtual absl::StatusOr<std::vector<std::string>> KvList(absl::string_view plugin,
                                                          absl::string_view prefix) = 0;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_STORE_H_
