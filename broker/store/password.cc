#include "broker/store/password.h"

#include <crypt.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tracim::broker {
namespace {

constexpr absl::string_view kYescryptPrefix = "$y$";
static_assert(kMaxPasswordBytes < CRYPT_MAX_PASSPHRASE_SIZE);

// crypt_data is ~32 KiB: too big for some thread stacks, so on the heap.
// crypt_rn needs it zeroed before first use.
std::unique_ptr<crypt_data> NewCryptData() {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  return data;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

}  // namespace

absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost) {
  if (password.empty()) return absl::InvalidArgumentError("password must not be empty");
  if (password.size() > kMaxPasswordBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("password is longer than ", kMaxPasswordBytes, " bytes"));
  }
  if (password.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("password must not contain NUL bytes");
  }
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // Null random bytes: libxcrypt reads the salt from the OS's random source.
  if (crypt_gensalt_rn(kYescryptPrefix.data(), static_cast<unsigned long>(cost), nullptr, 0,
                       setting, sizeof(setting)) == nullptr) {
    return absl::InternalError(
        absl::StrCat("crypt_gensalt_rn(yescrypt, cost ", cost, ") failed: ", std::strerror(errno)));
  }
  const std::string phrase(password);
  auto data = NewCryptData();
  const char* hash = crypt_rn(phrase.c_str(), setting, data.get(), sizeof(crypt_data));
  if (hash == nullptr || !absl::StartsWith(hash, kYescryptPrefix)) {
    return absl::InternalError(absl::StrCat("crypt_rn(yescrypt) failed: ", std::strerror(errno)));
  }
  return std::string(hash);
}

bool VerifyPassword(absl::string_view password, absl::string_view hash) {
  if (!absl::StartsWith(hash, kYescryptPrefix)) return false;
  if (password.empty() || password.size() > kMaxPasswordBytes ||
      password.find('\0') != absl::string_view::npos) {
    return false;
  }
  const std::string phrase(password);
  const std::string setting(hash);
  auto data = NewCryptData();
  const char* computed = crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  return computed != nullptr && ConstantTimeEquals(computed, hash);
}

}  // namespace tracim::broker
