#include "broker/store/sqlite_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "broker/common/status_macros.h"
#include "broker/store/api_key_secret.h"
#include "broker/store/password.h"
#include "broker/store/schema_migrations.h"

namespace tracim::broker {
namespace {

namespace fs = std::filesystem;

// Deeper parent chains are taken for a corrupt (cyclic) tree.
constexpr int kMaxTreeDepth = 10000;

// --- Files -----------------------------------------------------------------

// Creates the missing folders of `dir`, each with mode 0700 (whatever the
// umask); existing ones are left alone.
absl::Status CreateMissingFolders(const fs::path& dir) {
  std::vector<fs::path> missing;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    std::error_code ec;
    if (fs::exists(p, ec)) break;
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;  // created meanwhile by someone else
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create folder ", it->string(), ": ", std::strerror(errno)));
    }
    if (::chmod(it->c_str(), 0700) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot set mode 0700 on ", it->string(), ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// Creates `file` empty with mode 0600 unless it exists, so that SQLite never
// creates it with the umask's mode (SQLite gives its -wal and -shm files the
// database file's mode).
absl::Status CreateFileIfMissing(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create database ", file.string(), ": ", std::strerror(errno)));
  }
  const int rc = ::fchmod(fd, 0600);
  const int fchmod_errno = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot set mode 0600 on ", file.string(), ": ", std::strerror(fchmod_errno)));
  }
  return absl::OkStatus();
}

// --- Values ------------------------------------------------------------------

// Empty strings and 0 ids are stored as NULL (no email, no parent, ...).
std::optional<absl::string_view> NullIfEmpty(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return absl::string_view(value);
}
std::optional<int64_t> NullIfZero(int64_t id) {
  if (id == 0) return std::nullopt;
  return id;
}

bool IsBlank(absl::string_view value) { return absl::StripAsciiWhitespace(value).empty(); }

// An enum read back from the database: the CHECK constraints make a bad
// value a corrupt file, not a caller's mistake.
template <typename Enum>
absl::StatusOr<Enum> Stored(absl::StatusOr<Enum> parsed) {
  if (!parsed.ok()) {
    return absl::InternalError(absl::StrCat("corrupt database value: ", parsed.status().message()));
  }
  return parsed;
}

// --- Validation ----------------------------------------------------------------

absl::Status ValidateEmail(const std::string& email) {
  const size_t at = email.find('@');
  bool valid = email.size() <= 254 && at != std::string::npos && at > 0 && at + 1 < email.size() &&
               email.find('@', at + 1) == std::string::npos;
  for (const char c : email) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) valid = false;
  }
  if (!valid) return absl::InvalidArgumentError(absl::StrCat("invalid email \"", email, "\""));
  return absl::OkStatus();
}

absl::Status ValidateUsername(const std::string& username) {
  bool valid = username.size() >= 3 && username.size() <= 255;
  for (const char c : username) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      valid = false;
    }
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid username \"", username, "\": expected 3 to 255 letters, digits, '.', '-' or '_'"));
  }
  return absl::OkStatus();
}

// Email and username together: at least one, each well-formed.
absl::Status ValidateLogins(const std::string& email, const std::string& username) {
  if (email.empty() && username.empty()) {
    return absl::InvalidArgumentError("a user needs an email or a username");
  }
  if (!email.empty()) RETURN_IF_ERROR(ValidateEmail(email));
  if (!username.empty()) RETURN_IF_ERROR(ValidateUsername(username));
  return absl::OkStatus();
}

absl::Status ValidateFileName(const std::string& file_name) {
  if (file_name.find('/') != std::string::npos || file_name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid file_name \"", file_name, "\": it must not contain '/' or NUL"));
  }
  return absl::OkStatus();
}

// Where the extension starts in `file_name`, as Python's os.path.splitext
// splits it (tracim's rule): at the last '.', unless only dots precede it.
size_t ExtensionStart(absl::string_view file_name) {
  const size_t dot = file_name.rfind('.');
  if (dot == absl::string_view::npos) return file_name.size();
  if (file_name.find_first_not_of('.') >= dot) return file_name.size();
  return dot;
}

absl::Status ValidateKvKey(absl::string_view plugin, absl::string_view key) {
  if (plugin.empty()) return absl::InvalidArgumentError("plugin name must not be empty");
  if (key.empty()) return absl::InvalidArgumentError("key must not be empty");
  if (key.size() > kMaxKvKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key is longer than ", kMaxKvKeyBytes, " bytes"));
  }
  if (key.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("key must not contain NUL bytes");
  }
  return absl::OkStatus();
}

// The smallest string greater than every string starting with `prefix`, or
// nullopt when there is none (empty prefix, or only 0xff bytes).
std::optional<std::string> PrefixUpperBound(absl::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty() && static_cast<unsigned char>(bound.back()) == 0xff) bound.pop_back();
  if (bound.empty()) return std::nullopt;
  bound.back() = static_cast<char>(static_cast<unsigned char>(bound.back()) + 1);
  return bound;
}

// --- Rows ----------------------------------------------------------------------

constexpr absl::string_view kUserColumns =
    "user_id, email, username, public_name, profile, is_active, is_deleted, lang, timezone, "
    "created_us, password_hash";
constexpr int kUserPasswordHashColumn = 10;

absl::StatusOr<User> ReadUser(const Statement& row) {
  User user;
  user.user_id = row.Int64(0);
  user.email = row.Text(1);
  user.username = row.Text(2);
  user.public_name = row.Text(3);
  ASSIGN_OR_RETURN(user.profile, Stored(ParseProfile(row.Text(4))));
  user.is_active = row.Bool(5);
  user.is_deleted = row.Bool(6);
  user.lang = row.Text(7);
  user.timezone = row.Text(8);
  user.created = absl::FromUnixMicros(row.Int64(9));
  user.has_password = !row.IsNull(kUserPasswordHashColumn);
  return user;
}

constexpr absl::string_view kWorkspaceColumns =
    "workspace_id, label, description, access_type, default_user_role, parent_id, owner_id, "
    "is_deleted, created_us";

absl::StatusOr<Workspace> ReadWorkspace(const Statement& row) {
  Workspace workspace;
  workspace.workspace_id = row.Int64(0);
  workspace.label = row.Text(1);
  workspace.description = row.Text(2);
  ASSIGN_OR_RETURN(workspace.access_type, Stored(ParseAccessType(row.Text(3))));
  ASSIGN_OR_RETURN(workspace.default_user_role, Stored(ParseWorkspaceRole(row.Text(4))));
  workspace.parent_id = row.Int64(5);
  workspace.owner_id = row.Int64(6);
  workspace.is_deleted = row.Bool(7);
  workspace.created = absl::FromUnixMicros(row.Int64(8));
  return workspace;
}

constexpr absl::string_view kMembershipColumns = "workspace_id, user_id, role, created_us";

absl::StatusOr<Membership> ReadMembership(const Statement& row) {
  Membership membership;
  membership.workspace_id = row.Int64(0);
  membership.user_id = row.Int64(1);
  ASSIGN_OR_RETURN(membership.role, Stored(ParseWorkspaceRole(row.Text(2))));
  membership.created = absl::FromUnixMicros(row.Int64(3));
  return membership;
}

constexpr absl::string_view kContentColumns =
    "content_id, workspace_id, parent_id, content_type, label, raw_content, file_name, "
    "file_extension, file_mimetype, status, is_deleted, is_archived, author_id, revision_type, "
    "created_us, modified_us";

absl::StatusOr<Content> ReadContent(const Statement& row) {
  Content content;
  content.content_id = row.Int64(0);
  content.workspace_id = row.Int64(1);
  content.parent_id = row.Int64(2);
  ASSIGN_OR_RETURN(content.content_type, Stored(ParseContentType(row.Text(3))));
  content.label = row.Text(4);
  content.raw_content = row.Text(5);
  content.file_name = row.Text(6);
  content.file_extension = row.Text(7);
  content.file_mimetype = row.Text(8);
  ASSIGN_OR_RETURN(content.status, Stored(ParseContentStatus(row.Text(9))));
  content.is_deleted = row.Bool(10);
  content.is_archived = row.Bool(11);
  content.author_id = row.Int64(12);
  ASSIGN_OR_RETURN(content.revision_type, Stored(ParseRevisionType(row.Text(13))));
  content.created = absl::FromUnixMicros(row.Int64(14));
  content.modified = absl::FromUnixMicros(row.Int64(15));
  return content;
}

constexpr absl::string_view kApiKeyColumns = "api_key_id, user_id, label, created_us";

ApiKey ReadApiKey(const Statement& row) {
  ApiKey key;
  key.api_key_id = row.Int64(0);
  key.user_id = row.Int64(1);
  key.label = row.Text(2);
  key.created = absl::FromUnixMicros(row.Int64(3));
  return key;
}

// Steps a statement expected to return exactly one row (INSERT/UPDATE ...
// RETURNING) and reads it.
template <typename Reader>
auto ReadOne(Statement& stmt, Reader reader) -> decltype(reader(stmt)) {
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::InternalError("statement returned no row");
  return reader(stmt);
}

// Steps through every row.
template <typename Reader>
auto ReadAll(Statement& stmt, Reader reader)
    -> absl::StatusOr<std::vector<typename decltype(reader(stmt))::value_type>> {
  std::vector<typename decltype(reader(stmt))::value_type> rows;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return rows;
    ASSIGN_OR_RETURN(auto value, reader(stmt));
    rows.push_back(std::move(value));
  }
}

std::string NotMember(int64_t workspace_id, int64_t user_id) {
  return absl::StrCat("user ", user_id, " is not a member of workspace ", workspace_id);
}

}  // namespace

// --- Open ------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const fs::path& file,
                                                               SqliteStoreOptions options) {
  if (file.empty()) return absl::InvalidArgumentError("database file name is empty");
  RETURN_IF_ERROR(CreateMissingFolders(file.parent_path()));
  RETURN_IF_ERROR(CreateFileIfMissing(file));
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> db,
                   SqliteConnection::Open(file.string(), options.busy_timeout));
  RETURN_IF_ERROR(ApplyMigrations(*db, SqliteSchemaMigrations()));
  ASSIGN_OR_RETURN(const std::string random_password, GenerateApiKey());
  ASSIGN_OR_RETURN(std::string dummy_hash, HashPassword(random_password, options.password_cost));
  return std::unique_ptr<SqliteStore>(
      new SqliteStore(std::move(db), std::move(options), std::move(dummy_hash)));
}

SqliteStore::SqliteStore(std::unique_ptr<SqliteConnection> db, SqliteStoreOptions options,
                         std::string dummy_hash)
    : options_(std::move(options)), dummy_hash_(std::move(dummy_hash)), db_(std::move(db)) {}

int64_t SqliteStore::NowMicros() const { return absl::ToUnixMicros(options_.now()); }

// --- Loaders ---------------------------------------------------------------------

absl::StatusOr<User> SqliteStore::LoadUser(int64_t user_id, absl::string_view noun) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE user_id = ?");
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(user_id));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat(noun, " ", user_id, " not found"));
  return ReadUser(stmt);
}

absl::StatusOr<User> SqliteStore::LoadLiveUser(int64_t user_id, absl::string_view noun) {
  ASSIGN_OR_RETURN(User user, LoadUser(user_id, noun));
  if (user.is_deleted) {
    return absl::FailedPreconditionError(absl::StrCat(noun, " ", user_id, " is deleted"));
  }
  return user;
}

absl::StatusOr<std::optional<SqliteStore::UserWithHash>> SqliteStore::FindUserByLogin(
    absl::string_view login) {
  static const std::string kByEmail =
      absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE email = ?");
  static const std::string kByUsername =
      absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE username = ?");
  if (login.empty()) return std::nullopt;
  // Usernames cannot hold '@': a login with one is an email.
  const bool is_email = absl::StrContains(login, '@');
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(is_email ? kByEmail : kByUsername));
  RETURN_IF_ERROR(stmt.BindAll(login));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::nullopt;
  ASSIGN_OR_RETURN(User user, ReadUser(stmt));
  return UserWithHash{std::move(user), stmt.Text(kUserPasswordHashColumn)};
}

absl::StatusOr<Workspace> SqliteStore::LoadWorkspace(int64_t workspace_id, absl::string_view noun) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kWorkspaceColumns, " FROM workspaces WHERE workspace_id = ?");
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(workspace_id));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat(noun, " ", workspace_id, " not found"));
  return ReadWorkspace(stmt);
}

absl::StatusOr<Workspace> SqliteStore::LoadLiveWorkspace(int64_t workspace_id,
                                                         absl::string_view noun) {
  ASSIGN_OR_RETURN(Workspace workspace, LoadWorkspace(workspace_id, noun));
  if (workspace.is_deleted) {
    return absl::FailedPreconditionError(absl::StrCat(noun, " ", workspace_id, " is deleted"));
  }
  return workspace;
}

absl::StatusOr<std::optional<Membership>> SqliteStore::FindMembership(int64_t workspace_id,
                                                                      int64_t user_id) {
  static const std::string kSql = absl::StrCat("SELECT ", kMembershipColumns,
                                               " FROM memberships WHERE workspace_id = ? AND "
                                               "user_id = ?");
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(workspace_id, user_id));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::nullopt;
  return ReadMembership(stmt);
}

absl::StatusOr<Content> SqliteStore::LoadContent(int64_t content_id, absl::string_view noun) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kContentColumns, " FROM contents WHERE content_id = ?");
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(content_id));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat(noun, " ", content_id, " not found"));
  return ReadContent(stmt);
}

// --- Users -------------------------------------------------------------------------

absl::Status SqliteStore::CheckUnique(const std::string& email, const std::string& username,
                                      int64_t except_user_id) {
  // The columns' NOCASE collation applies to these comparisons.
  struct Check {
    const char* sql;
    absl::string_view column;
    const std::string& value;
  };
  const Check checks[] = {
      {"SELECT 1 FROM users WHERE email = ? AND user_id <> ?", "email", email},
      {"SELECT 1 FROM users WHERE username = ? AND user_id <> ?", "username", username},
  };
  for (const Check& check : checks) {
    if (check.value.empty()) continue;
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(check.sql));
    RETURN_IF_ERROR(stmt.BindAll(check.value, except_user_id));
    ASSIGN_OR_RETURN(const bool taken, stmt.Step());
    if (taken) {
      return absl::AlreadyExistsError(
          absl::StrCat("a user with ", check.column, " \"", check.value, "\" already exists"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<User> SqliteStore::InsertUser(const NewUser& user,
                                             const std::optional<std::string>& hash) {
  static const std::string kSql = absl::StrCat(
      "INSERT INTO users (email, username, public_name, profile, password_hash, is_active, lang, "
      "timezone, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
      kUserColumns);
  RETURN_IF_ERROR(CheckUnique(user.email, user.username, 0));
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(NullIfEmpty(user.email), NullIfEmpty(user.username),
                               user.public_name, ToString(user.profile), hash, user.is_active,
                               user.lang, user.timezone, NowMicros()));
  return ReadOne(stmt, ReadUser);
}

absl::StatusOr<User> SqliteStore::CreateUser(const NewUser& new_user) {
  NewUser user = new_user;
  RETURN_IF_ERROR(ValidateLogins(user.email, user.username));
  if (user.public_name.empty()) {
    user.public_name =
        !user.username.empty() ? user.username : user.email.substr(0, user.email.find('@'));
  }
  std::optional<std::string> hash;
  if (user.password.has_value()) {
    ASSIGN_OR_RETURN(hash, HashPassword(*user.password, options_.password_cost));
  }
  absl::MutexLock lock(&mu_);
  User created;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(created, InsertUser(user, hash));
    return absl::OkStatus();
  }));
  return created;
}

absl::StatusOr<User> SqliteStore::GetUser(int64_t user_id) {
  absl::MutexLock lock(&mu_);
  return LoadUser(user_id, "user");
}

absl::StatusOr<User> SqliteStore::GetUserByEmail(absl::string_view email) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE email = ?");
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(email));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no user with email \"", email, "\""));
  return ReadUser(stmt);
}

absl::StatusOr<User> SqliteStore::GetUserByUsername(absl::string_view username) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kUserColumns, " FROM users WHERE username = ?");
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(username));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no user with username \"", username, "\""));
  return ReadUser(stmt);
}

absl::StatusOr<std::vector<User>> SqliteStore::ListUsers(bool include_deleted) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kUserColumns, " FROM users WHERE ? OR is_deleted = 0 ORDER BY user_id");
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(include_deleted));
  return ReadAll(stmt, ReadUser);
}

absl::StatusOr<User> SqliteStore::UpdateUser(int64_t user_id, const UserUpdate& update) {
  static const std::string kSql = absl::StrCat(
      "UPDATE users SET email = ?, username = ?, public_name = ?, profile = ?, is_active = ?, "
      "lang = ?, timezone = ?, password_hash = COALESCE(?, password_hash) WHERE user_id = ? "
      "RETURNING ",
      kUserColumns);
  if (update.public_name.has_value() && update.public_name->empty()) {
    return absl::InvalidArgumentError("public_name must not be empty");
  }
  std::optional<std::string> hash;
  if (update.password.has_value()) {
    ASSIGN_OR_RETURN(hash, HashPassword(*update.password, options_.password_cost));
  }
  absl::MutexLock lock(&mu_);
  User updated;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(User user, LoadLiveUser(user_id, "user"));
    if (update.email.has_value()) user.email = *update.email;
    if (update.username.has_value()) user.username = *update.username;
    if (update.public_name.has_value()) user.public_name = *update.public_name;
    if (update.profile.has_value()) user.profile = *update.profile;
    if (update.is_active.has_value()) user.is_active = *update.is_active;
    if (update.lang.has_value()) user.lang = *update.lang;
    if (update.timezone.has_value()) user.timezone = *update.timezone;
    RETURN_IF_ERROR(ValidateLogins(user.email, user.username));
    RETURN_IF_ERROR(CheckUnique(user.email, user.username, user_id));
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(NullIfEmpty(user.email), NullIfEmpty(user.username),
                                 user.public_name, ToString(user.profile), user.is_active,
                                 user.lang, user.timezone, hash, user_id));
    ASSIGN_OR_RETURN(updated, ReadOne(stmt, ReadUser));
    return absl::OkStatus();
  }));
  return updated;
}

absl::StatusOr<User> SqliteStore::DeleteUser(int64_t user_id) {
  static const std::string kSql =
      absl::StrCat("UPDATE users SET is_deleted = 1 WHERE user_id = ? RETURNING ", kUserColumns);
  absl::MutexLock lock(&mu_);
  User deleted;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(const User user, LoadUser(user_id, "user"));
    if (user.is_deleted) {
      return absl::FailedPreconditionError(absl::StrCat("user ", user_id, " is already deleted"));
    }
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(user_id));
    ASSIGN_OR_RETURN(deleted, ReadOne(stmt, ReadUser));
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<User> SqliteStore::VerifyPassword(absl::string_view login,
                                                 absl::string_view password) {
  std::optional<UserWithHash> found;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(found, FindUserByLogin(login));
  }
  // Hash outside the lock, and always once, so an unknown login, a user
  // without a password and a wrong password all cost the same.
  const bool has_hash = found.has_value() && !found->password_hash.empty();
  const bool matches =
      ::tracim::broker::VerifyPassword(password, has_hash ? found->password_hash : dummy_hash_);
  if (!has_hash || !matches || !found->user.is_active || found->user.is_deleted) {
    return absl::UnauthenticatedError("invalid login or password");
  }
  return std::move(found->user);
}

absl::StatusOr<std::optional<User>> SqliteStore::EnsureAdmin(absl::string_view password) {
  static constexpr absl::string_view kAnyUser = "SELECT 1 FROM users LIMIT 1";
  {
    // The common case (every start but the first) without hashing.
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kAnyUser));
    ASSIGN_OR_RETURN(const bool any, stmt.Step());
    if (any) return std::nullopt;
  }
  ASSIGN_OR_RETURN(const std::string hash, HashPassword(password, options_.password_cost));
  NewUser admin;
  admin.email = std::string(kAdminEmail);
  admin.username = std::string(kAdminUsername);
  admin.public_name = std::string(kAdminPublicName);
  admin.profile = Profile::kAdministrators;
  absl::MutexLock lock(&mu_);
  std::optional<User> created;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    // Checked again: someone may have created a user while we hashed.
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kAnyUser));
    ASSIGN_OR_RETURN(const bool any, stmt.Step());
    if (any) return absl::OkStatus();
    ASSIGN_OR_RETURN(created, InsertUser(admin, hash));
    return absl::OkStatus();
  }));
  return created;
}

// --- API keys ---------------------------------------------------------------------

absl::StatusOr<CreatedApiKey> SqliteStore::CreateApiKey(int64_t user_id, absl::string_view label) {
  static const std::string kSql = absl::StrCat(
      "INSERT INTO api_keys (user_id, key_hash, label, created_us) VALUES (?, ?, ?, ?) "
      "RETURNING ",
      kApiKeyColumns);
  CreatedApiKey created;
  ASSIGN_OR_RETURN(created.key, GenerateApiKey());
  const std::string digest = ApiKeyDigest(created.key);
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(LoadLiveUser(user_id, "user").status());
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(user_id, Blob{digest}, label, NowMicros()));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::InternalError("INSERT INTO api_keys returned no row");
    created.api_key = ReadApiKey(stmt);
    return absl::OkStatus();
  }));
  return created;
}

absl::StatusOr<std::vector<ApiKey>> SqliteStore::ListApiKeys(int64_t user_id) {
  static const std::string kSql = absl::StrCat("SELECT ", kApiKeyColumns,
                                               " FROM api_keys WHERE user_id = ? ORDER BY "
                                               "api_key_id");
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LoadUser(user_id, "user").status());
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(user_id));
  return ReadAll(stmt,
                 [](const Statement& row) -> absl::StatusOr<ApiKey> { return ReadApiKey(row); });
}

absl::StatusOr<ApiKey> SqliteStore::DeleteApiKey(int64_t user_id, int64_t api_key_id) {
  static const std::string kSql = absl::StrCat(
      "DELETE FROM api_keys WHERE api_key_id = ? AND user_id = ? RETURNING ", kApiKeyColumns);
  absl::MutexLock lock(&mu_);
  ApiKey deleted;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(api_key_id, user_id));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) {
      return absl::NotFoundError(
          absl::StrCat("api key ", api_key_id, " not found for user ", user_id));
    }
    deleted = ReadApiKey(stmt);
    return absl::OkStatus();
  }));
  return deleted;
}

absl::StatusOr<User> SqliteStore::VerifyApiKey(absl::string_view login, absl::string_view key) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kUserColumns,
                   " FROM users WHERE user_id = (SELECT user_id FROM api_keys WHERE key_hash = ?)");
  const absl::Status denied = absl::UnauthenticatedError("invalid login or API key");
  if (key.size() != kApiKeyLength || login.empty()) return denied;
  const std::string digest = ApiKeyDigest(key);
  User user;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(Blob{digest}));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return denied;
    ASSIGN_OR_RETURN(user, ReadUser(stmt));
  }
  // The same ASCII case folding as the columns' NOCASE collation.
  const bool login_matches =
      (!user.email.empty() && absl::EqualsIgnoreCase(login, user.email)) ||
      (!user.username.empty() && absl::EqualsIgnoreCase(login, user.username));
  if (!login_matches || !user.is_active || user.is_deleted) return denied;
  return user;
}

// --- Workspaces ----------------------------------------------------------------------

absl::Status SqliteStore::CheckWorkspaceParent(int64_t workspace_id, int64_t parent_id) {
  if (parent_id == workspace_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("workspace ", workspace_id, " cannot be its own parent"));
  }
  int64_t ancestor = parent_id;
  for (int depth = 0; ancestor != 0; ++depth) {
    if (ancestor == workspace_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "workspace ", workspace_id, " cannot be moved under its descendant ", parent_id));
    }
    if (depth >= kMaxTreeDepth) return absl::InternalError("workspace tree too deep or cyclic");
    ASSIGN_OR_RETURN(const Workspace workspace, LoadWorkspace(ancestor, "workspace"));
    ancestor = workspace.parent_id;
  }
  return absl::OkStatus();
}

absl::StatusOr<Workspace> SqliteStore::CreateWorkspace(const NewWorkspace& workspace) {
  static const std::string kSql = absl::StrCat(
      "INSERT INTO workspaces (label, description, access_type, default_user_role, parent_id, "
      "owner_id, created_us) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ",
      kWorkspaceColumns);
  if (IsBlank(workspace.label)) return absl::InvalidArgumentError("label must not be empty");
  absl::MutexLock lock(&mu_);
  Workspace created;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (workspace.parent_id != 0) {
      RETURN_IF_ERROR(LoadLiveWorkspace(workspace.parent_id, "parent workspace").status());
    }
    if (workspace.owner_id != 0) {
      RETURN_IF_ERROR(LoadLiveUser(workspace.owner_id, "owner").status());
    }
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(
        stmt.BindAll(workspace.label, workspace.description, ToString(workspace.access_type),
                     ToString(workspace.default_user_role), NullIfZero(workspace.parent_id),
                     NullIfZero(workspace.owner_id), NowMicros()));
    ASSIGN_OR_RETURN(created, ReadOne(stmt, ReadWorkspace));
    return absl::OkStatus();
  }));
  return created;
}

absl::StatusOr<Workspace> SqliteStore::GetWorkspace(int64_t workspace_id) {
  absl::MutexLock lock(&mu_);
  return LoadWorkspace(workspace_id, "workspace");
}

absl::StatusOr<std::vector<Workspace>> SqliteStore::ListWorkspaces(bool include_deleted) {
  static const std::string kSql =
      absl::StrCat("SELECT ", kWorkspaceColumns,
                   " FROM workspaces WHERE ? OR is_deleted = 0 ORDER BY workspace_id");
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(include_deleted));
  return ReadAll(stmt, ReadWorkspace);
}

absl::StatusOr<Workspace> SqliteStore::UpdateWorkspace(int64_t workspace_id,
                                                       const WorkspaceUpdate& update) {
  static const std::string kSql = absl::StrCat(
      "UPDATE workspaces SET label = ?, description = ?, access_type = ?, default_user_role = ?, "
      "parent_id = ?, owner_id = ? WHERE workspace_id = ? RETURNING ",
      kWorkspaceColumns);
  if (update.label.has_value() && IsBlank(*update.label)) {
    return absl::InvalidArgumentError("label must not be empty");
  }
  absl::MutexLock lock(&mu_);
  Workspace updated;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(Workspace workspace, LoadLiveWorkspace(workspace_id, "workspace"));
    if (update.label.has_value()) workspace.label = *update.label;
    if (update.description.has_value()) workspace.description = *update.description;
    if (update.access_type.has_value()) workspace.access_type = *update.access_type;
    if (update.default_user_role.has_value()) {
      workspace.default_user_role = *update.default_user_role;
    }
    // References are checked only when they change: an unchanged owner who
    // was deleted since does not block editing the label.
    if (update.parent_id.has_value() && *update.parent_id != workspace.parent_id) {
      if (*update.parent_id != 0) {
        RETURN_IF_ERROR(LoadLiveWorkspace(*update.parent_id, "parent workspace").status());
        RETURN_IF_ERROR(CheckWorkspaceParent(workspace_id, *update.parent_id));
      }
      workspace.parent_id = *update.parent_id;
    }
    if (update.owner_id.has_value() && *update.owner_id != workspace.owner_id) {
      if (*update.owner_id != 0) {
        RETURN_IF_ERROR(LoadLiveUser(*update.owner_id, "owner").status());
      }
      workspace.owner_id = *update.owner_id;
    }
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(
        stmt.BindAll(workspace.label, workspace.description, ToString(workspace.access_type),
                     ToString(workspace.default_user_role), NullIfZero(workspace.parent_id),
                     NullIfZero(workspace.owner_id), workspace_id));
    ASSIGN_OR_RETURN(updated, ReadOne(stmt, ReadWorkspace));
    return absl::OkStatus();
  }));
  return updated;
}

absl::StatusOr<Workspace> SqliteStore::DeleteWorkspace(int64_t workspace_id) {
  static const std::string kSql = absl::StrCat(
      "UPDATE workspaces SET is_deleted = 1 WHERE workspace_id = ? RETURNING ", kWorkspaceColumns);
  absl::MutexLock lock(&mu_);
  Workspace deleted;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(const Workspace workspace, LoadWorkspace(workspace_id, "workspace"));
    if (workspace.is_deleted) {
      return absl::FailedPreconditionError(
          absl::StrCat("workspace ", workspace_id, " is already deleted"));
    }
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(workspace_id));
    ASSIGN_OR_RETURN(deleted, ReadOne(stmt, ReadWorkspace));
    return absl::OkStatus();
  }));
  return deleted;
}

// --- Memberships ---------------------------------------------------------------------

absl::StatusOr<Membership> SqliteStore::InsertMembership(int64_t workspace_id, int64_t user_id,
                                                         WorkspaceRole role) {
  static const std::string kSql = absl::StrCat(
      "INSERT INTO memberships (workspace_id, user_id, role, created_us) VALUES (?, ?, ?, ?) "
      "RETURNING ",
      kMembershipColumns);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(workspace_id, user_id, ToString(role), NowMicros()));
  return ReadOne(stmt, ReadMembership);
}

absl::StatusOr<Membership> SqliteStore::WriteMembershipRole(int64_t workspace_id, int64_t user_id,
                                                            WorkspaceRole role) {
  static const std::string kSql = absl::StrCat(
      "UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ? RETURNING ",
      kMembershipColumns);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(ToString(role), workspace_id, user_id));
  return ReadOne(stmt, ReadMembership);
}

absl::StatusOr<Membership> SqliteStore::AddMembership(int64_t workspace_id, int64_t user_id,
                                                      WorkspaceRole role) {
  absl::MutexLock lock(&mu_);
  Membership added;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(LoadLiveWorkspace(workspace_id, "workspace").status());
    RETURN_IF_ERROR(LoadLiveUser(user_id, "user").status());
    ASSIGN_OR_RETURN(const std::optional<Membership> existing,
                     FindMembership(workspace_id, user_id));
    if (existing.has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat("user ", user_id, " is already a member of workspace ", workspace_id));
    }
    ASSIGN_OR_RETURN(added, InsertMembership(workspace_id, user_id, role));
    return absl::OkStatus();
  }));
  return added;
}

absl::StatusOr<Membership> SqliteStore::UpdateMembership(int64_t workspace_id, int64_t user_id,
                                                         WorkspaceRole role) {
  absl::MutexLock lock(&mu_);
  Membership updated;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(LoadLiveWorkspace(workspace_id, "workspace").status());
    RETURN_IF_ERROR(LoadLiveUser(user_id, "user").status());
    ASSIGN_OR_RETURN(const std::optional<Membership> existing,
                     FindMembership(workspace_id, user_id));
    if (!existing.has_value()) return absl::NotFoundError(NotMember(workspace_id, user_id));
    ASSIGN_OR_RETURN(updated, WriteMembershipRole(workspace_id, user_id, role));
    return absl::OkStatus();
  }));
  return updated;
}

absl::StatusOr<MembershipChange> SqliteStore::SetMembership(int64_t workspace_id, int64_t user_id,
                                                            WorkspaceRole role) {
  absl::MutexLock lock(&mu_);
  MembershipChange change;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(LoadLiveWorkspace(workspace_id, "workspace").status());
    RETURN_IF_ERROR(LoadLiveUser(user_id, "user").status());
    ASSIGN_OR_RETURN(const std::optional<Membership> existing,
                     FindMembership(workspace_id, user_id));
    change.created = !existing.has_value();
    if (change.created) {
      ASSIGN_OR_RETURN(change.membership, InsertMembership(workspace_id, user_id, role));
    } else {
      ASSIGN_OR_RETURN(change.membership, WriteMembershipRole(workspace_id, user_id, role));
    }
    return absl::OkStatus();
  }));
  return change;
}

absl::StatusOr<Membership> SqliteStore::GetMembership(int64_t workspace_id, int64_t user_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::optional<Membership> membership, FindMembership(workspace_id, user_id));
  if (!membership.has_value()) return absl::NotFoundError(NotMember(workspace_id, user_id));
  return *std::move(membership);
}

absl::StatusOr<std::vector<Membership>> SqliteStore::ListWorkspaceMembers(int64_t workspace_id) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kMembershipColumns, " FROM memberships WHERE workspace_id = ? ORDER BY user_id");
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LoadWorkspace(workspace_id, "workspace").status());
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(workspace_id));
  return ReadAll(stmt, ReadMembership);
}

absl::StatusOr<std::vector<Membership>> SqliteStore::ListUserMemberships(int64_t user_id) {
  static const std::string kSql = absl::StrCat(
      "SELECT ", kMembershipColumns, " FROM memberships WHERE user_id = ? ORDER BY workspace_id");
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LoadUser(user_id, "user").status());
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(user_id));
  return ReadAll(stmt, ReadMembership);
}

absl::StatusOr<Membership> SqliteStore::RemoveMembership(int64_t workspace_id, int64_t user_id) {
  static const std::string kSql =
      absl::StrCat("DELETE FROM memberships WHERE workspace_id = ? AND user_id = ? RETURNING ",
                   kMembershipColumns);
  absl::MutexLock lock(&mu_);
  Membership removed;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(workspace_id, user_id));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError(NotMember(workspace_id, user_id));
    ASSIGN_OR_RETURN(removed, ReadMembership(stmt));
    return absl::OkStatus();
  }));
  return removed;
}

// --- Contents ------------------------------------------------------------------------

absl::Status SqliteStore::CheckContentParent(int64_t workspace_id, int64_t parent_id,
                                             ContentType type, int64_t moving_id) {
  if (moving_id != 0 && parent_id == moving_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("content ", moving_id, " cannot be its own parent"));
  }
  ASSIGN_OR_RETURN(const Content parent, LoadContent(parent_id, "parent content"));
  if (parent.is_deleted) {
    return absl::FailedPreconditionError(absl::StrCat("parent content ", parent_id, " is deleted"));
  }
  if (parent.workspace_id != workspace_id) {
    return absl::FailedPreconditionError(absl::StrCat("parent content ", parent_id,
                                                      " is in workspace ", parent.workspace_id,
                                                      ", not in workspace ", workspace_id));
  }
  if (type == ContentType::kComment) {
    if (parent.content_type == ContentType::kComment) {
      return absl::FailedPreconditionError(
          absl::StrCat("parent content ", parent_id, " is a comment: comments cannot be nested"));
    }
  } else if (parent.content_type != ContentType::kFolder) {
    return absl::FailedPreconditionError(absl::StrCat("parent content ", parent_id, " is a ",
                                                      ToString(parent.content_type),
                                                      ": only folders hold contents"));
  }
  if (moving_id != 0) {
    int64_t ancestor = parent.parent_id;
    for (int depth = 0; ancestor != 0; ++depth) {
      if (ancestor == moving_id) {
        return absl::FailedPreconditionError(absl::StrCat(
            "content ", moving_id, " cannot be moved under its descendant ", parent_id));
      }
      if (depth >= kMaxTreeDepth) return absl::InternalError("content tree too deep or cyclic");
      ASSIGN_OR_RETURN(const Content content, LoadContent(ancestor, "content"));
      ancestor = content.parent_id;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Content> SqliteStore::WriteContent(const Content& content) {
  static const std::string kSql = absl::StrCat(
      "UPDATE contents SET parent_id = ?, label = ?, raw_content = ?, file_name = ?, "
      "file_extension = ?, file_mimetype = ?, status = ?, is_deleted = ?, is_archived = ?, "
      "revision_type = ?, modified_us = ? WHERE content_id = ? RETURNING ",
      kContentColumns);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(NullIfZero(content.parent_id), content.label, content.raw_content,
                               content.file_name, content.file_extension, content.file_mimetype,
                               ToString(content.status), content.is_deleted, content.is_archived,
                               ToString(content.revision_type),
                               absl::ToUnixMicros(content.modified), content.content_id));
  return ReadOne(stmt, ReadContent);
}

absl::StatusOr<Content> SqliteStore::CreateContent(const NewContent& new_content) {
  static const std::string kSql = absl::StrCat(
      "INSERT INTO contents (workspace_id, parent_id, content_type, label, raw_content, "
      "file_name, file_extension, file_mimetype, status, author_id, revision_type, created_us, "
      "modified_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creation', ?, ?) RETURNING ",
      kContentColumns);
  NewContent content = new_content;
  RETURN_IF_ERROR(ValidateFileName(content.file_name));
  switch (content.content_type) {
    case ContentType::kComment:
      if (content.parent_id == 0) {
        return absl::InvalidArgumentError("a comment needs a parent content");
      }
      if (IsBlank(content.raw_content)) {
        return absl::InvalidArgumentError("a comment needs a raw_content");
      }
      content.label.clear();  // tracim's comments have no label
      break;
    case ContentType::kFile:
      if (content.file_name.empty()) return absl::InvalidArgumentError("a file needs a file_name");
      if (IsBlank(content.label)) {
        content.label = content.file_name.substr(0, ExtensionStart(content.file_name));
      }
      break;
    default:
      if (IsBlank(content.label)) return absl::InvalidArgumentError("label must not be empty");
      break;
  }
  const std::string extension = content.file_name.substr(ExtensionStart(content.file_name));
  absl::MutexLock lock(&mu_);
  Content created;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    RETURN_IF_ERROR(LoadLiveWorkspace(content.workspace_id, "workspace").status());
    RETURN_IF_ERROR(LoadLiveUser(content.author_id, "author").status());
    if (content.parent_id != 0) {
      RETURN_IF_ERROR(
          CheckContentParent(content.workspace_id, content.parent_id, content.content_type, 0));
    }
    const int64_t now = NowMicros();
    ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
    RETURN_IF_ERROR(stmt.BindAll(content.workspace_id, NullIfZero(content.parent_id),
                                 ToString(content.content_type), content.label, content.raw_content,
                                 content.file_name, extension, content.file_mimetype,
                                 ToString(content.status), content.author_id, now, now));
    ASSIGN_OR_RETURN(created, ReadOne(stmt, ReadContent));
    return absl::OkStatus();
  }));
  return created;
}

absl::StatusOr<Content> SqliteStore::GetContent(int64_t content_id) {
  absl::MutexLock lock(&mu_);
  return LoadContent(content_id, "content");
}

absl::StatusOr<std::vector<Content>> SqliteStore::ListContents(int64_t workspace_id,
                                                               const ContentFilter& filter) {
  // ?2: any parent; ?3: the parent (NULL: root); ?4: include deleted;
  // ?5: ",type,type," or "" for any type.
  static const std::string kSql = absl::StrCat(
      "SELECT ", kContentColumns,
      " FROM contents WHERE workspace_id = ?1 AND (?2 OR parent_id IS ?3) AND "
      "(?4 OR is_deleted = 0) AND (?5 = '' OR instr(?5, ',' || content_type || ',') > 0) "
      "ORDER BY content_id");
  std::string types;
  for (const ContentType type : filter.content_types) absl::StrAppend(&types, ",", ToString(type));
  if (!types.empty()) types.push_back(',');
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(LoadWorkspace(workspace_id, "workspace").status());
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSql));
  RETURN_IF_ERROR(stmt.BindAll(workspace_id, !filter.parent_id.has_value(),
                               NullIfZero(filter.parent_id.value_or(0)), filter.include_deleted,
                               types));
  return ReadAll(stmt, ReadContent);
}

absl::StatusOr<Content> SqliteStore::UpdateContent(int64_t content_id,
                                                   const ContentUpdate& update) {
  if (update.file_name.has_value()) RETURN_IF_ERROR(ValidateFileName(*update.file_name));
  absl::MutexLock lock(&mu_);
  Content updated;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(const Content old, LoadContent(content_id, "content"));
    if (old.is_deleted) {
      return absl::FailedPreconditionError(absl::StrCat("content ", content_id, " is deleted"));
    }
    RETURN_IF_ERROR(LoadLiveWorkspace(old.workspace_id, "workspace").status());
    const bool is_comment = old.content_type == ContentType::kComment;
    Content next = old;
    if (update.label.has_value()) {
      if (!is_comment && IsBlank(*update.label)) {
        return absl::InvalidArgumentError("label must not be empty");
      }
      next.label = *update.label;
    }
    if (update.raw_content.has_value()) {
      if (is_comment && IsBlank(*update.raw_content)) {
        return absl::InvalidArgumentError("a comment needs a raw_content");
      }
      next.raw_content = *update.raw_content;
    }
    if (update.file_name.has_value()) {
      if (old.content_type == ContentType::kFile && update.file_name->empty()) {
        return absl::InvalidArgumentError("a file needs a file_name");
      }
      next.file_name = *update.file_name;
      next.file_extension = next.file_name.substr(ExtensionStart(next.file_name));
    }
    if (update.file_mimetype.has_value()) next.file_mimetype = *update.file_mimetype;
    if (update.status.has_value()) next.status = *update.status;
    if (update.is_archived.has_value()) next.is_archived = *update.is_archived;
    if (update.parent_id.has_value() && *update.parent_id != old.parent_id) {
      if (is_comment) return absl::InvalidArgumentError("a comment cannot be moved");
      if (*update.parent_id != 0) {
        RETURN_IF_ERROR(
            CheckContentParent(old.workspace_id, *update.parent_id, old.content_type, content_id));
      }
      next.parent_id = *update.parent_id;
    }
    const bool edited = next.label != old.label || next.raw_content != old.raw_content ||
                        next.file_name != old.file_name || next.file_mimetype != old.file_mimetype;
    if (edited) {
      next.revision_type = RevisionType::kEdition;
    } else if (next.parent_id != old.parent_id) {
      next.revision_type = RevisionType::kMove;
    } else if (next.status != old.status) {
      next.revision_type = RevisionType::kStatusUpdate;
    } else if (next.is_archived != old.is_archived) {
      next.revision_type = next.is_archived ? RevisionType::kArchiving : RevisionType::kUnarchiving;
    } else {
      next.revision_type = RevisionType::kEdition;
    }
    next.modified = absl::FromUnixMicros(NowMicros());
    ASSIGN_OR_RETURN(updated, WriteContent(next));
    return absl::OkStatus();
  }));
  return updated;
}

absl::StatusOr<Content> SqliteStore::DeleteContent(int64_t content_id) {
  absl::MutexLock lock(&mu_);
  Content deleted;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(Content content, LoadContent(content_id, "content"));
    if (content.is_deleted) {
      return absl::FailedPreconditionError(
          absl::StrCat("content ", content_id, " is already deleted"));
    }
    content.is_deleted = true;
    content.revision_type = RevisionType::kDeletion;
    content.modified = absl::FromUnixMicros(NowMicros());
    ASSIGN_OR_RETURN(deleted, WriteContent(content));
    return absl::OkStatus();
  }));
  return deleted;
}

// --- Plugin key-value store -------------------------------------------------------------

absl::StatusOr<std::optional<std::string>> SqliteStore::KvGet(absl::string_view plugin,
                                                              absl::string_view key) {
  RETURN_IF_ERROR(ValidateKvKey(plugin, key));
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt,
                   db_->Prepare("SELECT value FROM plugin_kv WHERE plugin = ? AND key = ?"));
  RETURN_IF_ERROR(stmt.BindAll(plugin, key));
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return std::nullopt;
  return std::optional<std::string>(stmt.Text(0));
}

absl::Status SqliteStore::KvSet(absl::string_view plugin, absl::string_view key,
                                absl::string_view value) {
  RETURN_IF_ERROR(ValidateKvKey(plugin, key));
  if (value.size() > kMaxKvValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("value is longer than ", kMaxKvValueBytes, " bytes"));
  }
  absl::MutexLock lock(&mu_);
  return db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(
        Statement stmt,
        db_->Prepare("INSERT INTO plugin_kv (plugin, key, value) VALUES (?, ?, ?) "
                     "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value"));
    RETURN_IF_ERROR(stmt.BindAll(plugin, key, Blob{value}));
    return stmt.Run();
  });
}

absl::StatusOr<bool> SqliteStore::KvDelete(absl::string_view plugin, absl::string_view key) {
  RETURN_IF_ERROR(ValidateKvKey(plugin, key));
  absl::MutexLock lock(&mu_);
  bool existed = false;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(
        Statement stmt,
        db_->Prepare("DELETE FROM plugin_kv WHERE plugin = ? AND key = ? RETURNING 1"));
    RETURN_IF_ERROR(stmt.BindAll(plugin, key));
    ASSIGN_OR_RETURN(existed, stmt.Step());
    return absl::OkStatus();
  }));
  return existed;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::KvList(absl::string_view plugin,
                                                             absl::string_view prefix) {
  if (plugin.empty()) return absl::InvalidArgumentError("plugin name must not be empty");
  // A range on the primary key rather than LIKE or substr: byte-exact, and
  // it uses the index.
  const std::optional<std::string> upper = PrefixUpperBound(prefix);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt,
                   db_->Prepare("SELECT key FROM plugin_kv WHERE plugin = ?1 AND key >= ?2 AND "
                                "(?3 IS NULL OR key < ?3) ORDER BY key"));
  RETURN_IF_ERROR(stmt.BindAll(plugin, prefix, upper));
  return ReadAll(stmt,
                 [](const Statement& row) -> absl::StatusOr<std::string> { return row.Text(0); });
}

}  // namespace tracim::broker
