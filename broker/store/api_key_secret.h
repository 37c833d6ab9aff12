// API key secrets (Tracim-Api-Key): generation, and the digest a Store keeps
// instead of the key. Shared by every Store implementation. Thread-safe.
//
// Why a SHA-256 digest and not yescrypt as for passwords: a key is 256 random
// bits, so its digest cannot be reversed or brute-forced; a slow hash only
// helps low-entropy secrets and would cost ~16 ms on every API request. An
// unsalted digest also lets the store find the key through an index, and the
// lookup's timing leaks nothing usable (the caller picks the key, not its
// digest).
#ifndef TRACIM_BROKER_STORE_API_KEY_SECRET_H_
#define TRACIM_BROKER_STORE_API_KEY_SECRET_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracim::broker {

// Length of a generated key; longer keys cannot be ours and are refused
// before hashing.
inline constexpr size_t kApiKeyLength = 64;

// 32 bytes from getrandom(2), as 64 lowercase hex digits. INTERNAL if the OS
// has no randomness to give.
absl::StatusOr<std::string> GenerateApiKey();

// The 32 raw bytes of SHA-256(key).
std::string ApiKeyDigest(absl::string_view key);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_API_KEY_SECRET_H_
