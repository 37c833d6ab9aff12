// Password hashing for the embedded backend: yescrypt through libxcrypt's
// reentrant crypt_rn, never a plain digest. Pure functions with per-call
// buffers: thread-safe. Slow by design (~16 ms at the default cost here), so
// callers keep them outside locks.
//
//   ASSIGN_OR_RETURN(std::string hash, HashPassword(password));   // "$y$j9T$..."
//   if (!VerifyPassword(attempt, hash)) return absl::UnauthenticatedError(...);
#ifndef TRACIM_BROKER_STORE_PASSWORD_H_
#define TRACIM_BROKER_STORE_PASSWORD_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracim::broker {

// libxcrypt's limit (CRYPT_MAX_PASSPHRASE_SIZE, NUL included); longer
// passwords are refused rather than cut.
inline constexpr size_t kMaxPasswordBytes = 511;

// A fresh random salt and the yescrypt hash of `password`, in crypt(3)'s
// "$y$..." form. `cost` is yescrypt's cost (1..11); 0 takes libxcrypt's
// default (5). Lower costs are for tests only.
// INVALID_ARGUMENT for an empty or too long password or one holding a NUL
// byte (crypt(3) would silently cut it); INTERNAL if libxcrypt fails.
absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost = 0);

// Whether `password` hashes to `hash` (from HashPassword). False for anything
// that is not a yescrypt hash, so a corrupt row can never fall back to DES.
// The final comparison takes the same time wherever the first difference is.
bool VerifyPassword(absl::string_view password, absl::string_view hash);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_PASSWORD_H_
