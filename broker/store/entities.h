// The embedded backend's entities as plain values: users, workspaces,
// memberships, contents and API keys, with tracim's enum names. Copyable
// values and pure functions only: thread-safe.
//
//   ASSIGN_OR_RETURN(Profile profile, ParseProfile(json_profile));  // "trusted-users"
//   if (user.profile >= Profile::kTrustedUsers) { ... }              // enums are ordered
//   out["profile"] = std::string(ToString(user.profile));
#ifndef TRACIM_BROKER_STORE_ENTITIES_H_
#define TRACIM_BROKER_STORE_ENTITIES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tracim::broker {

// Ids are tracim's integer ids, > 0. Where an id field may be empty
// (parent_id, owner_id) 0 means "none", as on the wire (entities.proto).

// A user's global profile, ordered by privilege (comparisons are meaningful).
enum class Profile { kNobody, kUsers, kTrustedUsers, kAdministrators };
// A member's role in a workspace, ordered by privilege.
enum class WorkspaceRole { kReader, kContributor, kContentManager, kWorkspaceManager };
enum class AccessType { kConfidential, kOnRequest, kOpen };
enum class ContentType { kFolder, kFile, kHtmlDocument, kThread, kComment };
enum class ContentStatus { kOpen, kClosedValidated, kClosedUnvalidated, kClosedDeprecated };
// What the latest change of a content did. Chosen by the store, never by the
// caller (see Store::UpdateContent for the rule).
enum class RevisionType {
  kCreation,
  kEdition,
  kDeletion,
  kArchiving,
  kUnarchiving,
  kStatusUpdate,
  kMove
};

// Tracim's spelling of each value: "trusted-users", "workspace-manager",
// "on_request", "html-document", "closed-validated", "status-update", ...
absl::string_view ToString(Profile value);
absl::string_view ToString(WorkspaceRole value);
absl::string_view ToString(AccessType value);
absl::string_view ToString(ContentType value);
absl::string_view ToString(ContentStatus value);
absl::string_view ToString(RevisionType value);

// The inverse of ToString (exact, case-sensitive match). INVALID_ARGUMENT
// names the value and the accepted ones, e.g.
// `invalid profile "root": expected nobody, users, trusted-users or administrators`.
absl::StatusOr<Profile> ParseProfile(absl::string_view name);
absl::StatusOr<WorkspaceRole> ParseWorkspaceRole(absl::string_view name);
absl::StatusOr<AccessType> ParseAccessType(absl::string_view name);
absl::StatusOr<ContentType> ParseContentType(absl::string_view name);
absl::StatusOr<ContentStatus> ParseContentStatus(absl::string_view name);
absl::StatusOr<RevisionType> ParseRevisionType(absl::string_view name);

// ---------------------------------------------------------------------------
// Users. The password hash never leaves the store.

struct User {
  int64_t user_id = 0;
  // At least one of email and username is set; the other may be empty.
  std::string email;
  std::string username;
  std::string public_name;
  Profile profile = Profile::kUsers;
  bool is_active = true;
  bool is_deleted = false;
  std::string lang;
  std::string timezone;
  absl::Time created;
  // Whether the user can log in with a password (created with one).
  bool has_password = false;

  friend bool operator==(const User&, const User&) = default;
};

struct NewUser {
  // Email and username: at least one; both unique (case-insensitively) among
  // all users, deleted ones included.
  std::string email;
  std::string username;
  // Empty: the username, else the part of the email before '@'.
  std::string public_name;
  Profile profile = Profile::kUsers;
  bool is_active = true;
  std::string lang;
  std::string timezone;
  // nullopt: the user cannot log in with a password (e.g. a plugin's bot).
  std::optional<std::string> password;
};

// Fields left nullopt are unchanged. Setting email or username to "" clears
// it, as long as the other one remains.
struct UserUpdate {
  std::optional<std::string> email;
  std::optional<std::string> username;
  std::optional<std::string> public_name;
  std::optional<Profile> profile;
  std::optional<bool> is_active;
  std::optional<std::string> lang;
  std::optional<std::string> timezone;
  // A new password (never empty).
  std::optional<std::string> password;
};

// ---------------------------------------------------------------------------
// Workspaces

struct Workspace {
  int64_t workspace_id = 0;
  std::string label;
  std::string description;
  AccessType access_type = AccessType::kConfidential;
  WorkspaceRole default_user_role = WorkspaceRole::kReader;
  int64_t parent_id = 0;
  int64_t owner_id = 0;
  bool is_deleted = false;
  absl::Time created;

  friend bool operator==(const Workspace&, const Workspace&) = default;
};

struct NewWorkspace {
  std::string label;  // required
  std::string description;
  AccessType access_type = AccessType::kConfidential;
  WorkspaceRole default_user_role = WorkspaceRole::kReader;
  int64_t parent_id = 0;  // an existing, not deleted workspace, or 0
  int64_t owner_id = 0;   // an existing, not deleted user, or 0
};

struct WorkspaceUpdate {
  std::optional<std::string> label;
  std::optional<std::string> description;
  std::optional<AccessType> access_type;
  std::optional<WorkspaceRole> default_user_role;
  std::optional<int64_t> parent_id;  // 0 makes it top-level
  std::optional<int64_t> owner_id;   // 0 clears the owner
};

// ---------------------------------------------------------------------------
// Memberships (tracim's UserWorkspaceConfig / UserRoleInWorkspace)

struct Membership {
  int64_t workspace_id = 0;
  int64_t user_id = 0;
  WorkspaceRole role = WorkspaceRole::kReader;
  absl::Time created;

  friend bool operator==(const Membership&, const Membership&) = default;
};

// The result of Store::SetMembership: whether the membership is new (hook
// "created") or an existing one got a role (hook "modified").
struct MembershipChange {
  Membership membership;
  bool created = false;
};

// ---------------------------------------------------------------------------
// Contents (folders, files, documents, threads and comments)

struct Content {
  int64_t content_id = 0;
  int64_t workspace_id = 0;
  int64_t parent_id = 0;
  ContentType content_type = ContentType::kFolder;
  std::string label;
  std::string raw_content;
  std::string file_name;
  // Derived from file_name as Python's os.path.splitext does: ".mp4", "".
  std::string file_extension;
  std::string file_mimetype;
  ContentStatus status = ContentStatus::kOpen;
  bool is_deleted = false;
  bool is_archived = false;
  int64_t author_id = 0;
  RevisionType revision_type = RevisionType::kCreation;
  absl::Time created;
  absl::Time modified;

  friend bool operator==(const Content&, const Content&) = default;
};

struct NewContent {
  int64_t workspace_id = 0;
  // 0: at the root of the workspace. Non-comments go in folders only;
  // comments need a parent that is not a comment.
  int64_t parent_id = 0;
  ContentType content_type = ContentType::kFolder;
  // Required, except for comments (ignored) and files (defaults to the file
  // name without its extension).
  std::string label;
  // Required for comments.
  std::string raw_content;
  // Required for files; no '/'.
  std::string file_name;
  std::string file_mimetype;
  ContentStatus status = ContentStatus::kOpen;
  int64_t author_id = 0;  // an existing, not deleted user
};

struct ContentUpdate {
  std::optional<std::string> label;
  std::optional<std::string> raw_content;
  std::optional<std::string> file_name;  // files only
  std::optional<std::string> file_mimetype;
  std::optional<ContentStatus> status;
  std::optional<bool> is_archived;
  std::optional<int64_t> parent_id;  // a move within the workspace; not for comments
};

// What Store::ListContents returns. Results are ordered by content_id.
struct ContentFilter {
  // nullopt: at any depth; 0: at the root; n: children of content n.
  std::optional<int64_t> parent_id;
  // Empty: every type.
  std::vector<ContentType> content_types;
  bool include_deleted = false;
};

// ---------------------------------------------------------------------------
// API keys (Tracim-Api-Key + Tracim-Api-Login). Only a hash of the key is
// stored; the key itself is shown once, when created.

struct ApiKey {
  int64_t api_key_id = 0;
  int64_t user_id = 0;
  std::string label;
  absl::Time created;

  friend bool operator==(const ApiKey&, const ApiKey&) = default;
};

struct CreatedApiKey {
  ApiKey api_key;
  // The secret to send as Tracim-Api-Key: 64 lowercase hex digits.
  std::string key;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_ENTITIES_H_
