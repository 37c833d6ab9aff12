#include "broker/store/sha256.h"

#include <openssl/sha.h>

namespace tracim::broker {

// OpenSSL's implementation: a well-kept library rather than our own code.
// libcrypto is on every machine already (gRPC links it).
Sha256Digest Sha256(absl::string_view data) {
  Sha256Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

}  // namespace tracim::broker
