// Percent-decoding helpers for request paths and query strings
// (RFC 3986 §2.1; '+' as space only in form/query components).
// Pure functions: safe from any thread.
#ifndef TRACIM_BROKER_HTTP_URL_DECODING_H_
#define TRACIM_BROKER_HTTP_URL_DECODING_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracim::broker {

// Decodes %XX escapes (either hex case); '+' stays '+'. Use on path
// segments: decode after splitting on '/', since "%2F" decodes to '/'.
// kInvalidArgument "bad percent-encoding at offset N" on '%' not followed
// by two hex digits.
absl::StatusOr<std::string> PercentDecode(absl::string_view encoded);

// Like PercentDecode, but '+' decodes to ' ' (query strings and
// application/x-www-form-urlencoded bodies).
absl::StatusOr<std::string> FormDecode(absl::string_view encoded);

// Splits "a=1&b=x%20y&flag" into decoded pairs in order:
// {"a","1"}, {"b","x y"}, {"flag",""}. Empty parts ("a=1&&b=2") are
// skipped; repeated keys are all kept. Fails like FormDecode.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_URL_DECODING_H_
