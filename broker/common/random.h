// Random secrets from the kernel's CSPRNG (getrandom). Thread-safe.
#ifndef TRACIM_BROKER_COMMON_RANDOM_H_
#define TRACIM_BROKER_COMMON_RANDOM_H_

#include <cstddef>
#include <string>

namespace tracim::broker {

// `bytes` random bytes as 2*bytes lower-case hex digits. Aborts if the
// kernel has no entropy source (nothing safe can be done without one).
std::string RandomHex(size_t bytes);

// Compares two secrets in time independent of where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_COMMON_RANDOM_H_
