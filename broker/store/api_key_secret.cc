#include "broker/store/api_key_secret.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "broker/store/sha256.h"

namespace tracim::broker {

absl::StatusOr<std::string> GenerateApiKey() {
  std::array<char, kApiKeyLength / 2> random;
  size_t filled = 0;
  while (filled < random.size()) {
    const ssize_t got = ::getrandom(random.data() + filled, random.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom failed: ", std::strerror(errno)));
    }
    filled += static_cast<size_t>(got);
  }
  return absl::BytesToHexString(absl::string_view(random.data(), random.size()));
}

std::string ApiKeyDigest(absl::string_view key) {
  const Sha256Digest digest = Sha256(key);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace tracim::broker
