#include "broker/app/first_admin.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "broker/common/random.h"
#include "spdlog/spdlog.h"

namespace tracim::broker {

absl::Status EnsureFirstAdmin(Store& store, const std::filesystem::path& state_dir,
                              const std::optional<std::string>& configured_password) {
  // Users exist: nothing to do, and an earlier admin_password file stays.
  auto users = store.ListUsers(/*include_deleted=*/true);
  if (!users.ok()) return users.status();
  if (!users->empty()) return absl::OkStatus();

  const bool random = !configured_password.has_value();
  const std::string password = random ? RandomHex(16) : *configured_password;
  const std::filesystem::path file = state_dir / kAdminPasswordFileName;
  if (random) {
    // Written before the admin exists: if it cannot be, no admin is created
    // whose password nobody knows. O_EXCL: never overwrite an earlier one.
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
      // Left by a start that failed before the admin was created (the
      // database has no user): its password was never used.
      ::unlink(file.c_str());
      fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot write '", file.string(), "': ", strerror(errno)));
    }
    std::string line = password + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok)
      return absl::FailedPreconditionError(absl::StrCat("cannot write '", file.string(), "'"));
  }
  auto admin = store.EnsureAdmin(password);
  if (!admin.ok() || !admin->has_value()) {
    // Another process created users meanwhile (or the store failed).
    if (random) ::unlink(file.c_str());
    return admin.ok() ? absl::OkStatus() : admin.status();
  }
  if (random) {
    spdlog::warn("first administrator {} created; its random password is in {}",
                 std::string(kAdminEmail), file.string());
  } else {
    spdlog::info("first administrator {} created with backend.admin_password",
                 std::string(kAdminEmail));
  }
  return absl::OkStatus();
}

}  // namespace tracim::broker
