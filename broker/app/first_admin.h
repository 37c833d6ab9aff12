// Creates tracim's first administrator, admin@admin.admin, on an empty
// database: with backend.admin_password, or else a random password written
// once to <state_dir>/admin_password (mode 0600) for the operator. Startup
// only: not thread-safe.
#ifndef TRACIM_BROKER_APP_FIRST_ADMIN_H_
#define TRACIM_BROKER_APP_FIRST_ADMIN_H_

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "broker/store/store.h"

namespace tracim::broker {

inline constexpr char kAdminPasswordFileName[] = "admin_password";

// Does nothing when the database has users already. Errors: the store's, or
// FAILED_PRECONDITION naming the password file when it cannot be written
// (then no admin is created: the next start tries again).
absl::Status EnsureFirstAdmin(Store& store, const std::filesystem::path& state_dir,
                              const std::optional<std::string>& configured_password);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_APP_FIRST_ADMIN_H_
