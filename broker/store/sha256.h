// SHA-256 (OpenSSL), for digests of high-entropy secrets such as API keys.
// Not for passwords (see password.h). Pure function: thread-safe.
//
//   std::array<uint8_t, 32> digest = Sha256("abc");
#ifndef TRACIM_BROKER_STORE_SHA256_H_
#define TRACIM_BROKER_STORE_SHA256_H_

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace tracim::broker {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(absl::string_view data);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_STORE_SHA256_H_
