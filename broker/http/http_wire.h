// Internal to broker/http: what goes on the wire besides Beast's request
// parser — response heads, target splitting, request ids, header checks.
// Pure functions (NewRequestId uses a thread-local generator): safe from any
// thread.
#ifndef TRACIM_BROKER_HTTP_HTTP_WIRE_H_
#define TRACIM_BROKER_HTTP_HTTP_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/http/http_headers.h"

namespace tracim::broker::http_internal {

// How a response head frames its body and the connection.
struct HeadFraming {
  std::optional<uint64_t> content_length;  // Content-Length: n
  bool chunked = false;                    // Transfer-Encoding: chunked
  bool close = false;                      // Connection: close
  bool keep_alive = false;                 // Connection: keep-alive (HTTP/1.0 peers)
};

// "HTTP/1.1 <status> <reason>\r\n" + the handler's fields (minus the ones the
// server owns: Content-Length, Transfer-Encoding, Connection, Keep-Alive,
// Date, X-Request-Id) + Date, X-Request-Id and the framing fields + CRLF.
std::string SerializeResponseHead(int status, const HttpHeaders& headers,
                                  absl::string_view request_id, const HeadFraming& framing);

// OK if `status` is 200-599 and every field name is an RFC 9110 token and
// every value is free of CR, LF, NUL and other control characters but HTAB
// (no response splitting). kInvalidArgument naming the culprit otherwise.
absl::Status ValidateResponseHead(int status, const HttpHeaders& headers);

struct SplitTargetResult {
  std::string target;  // origin-form
  std::string path;
  std::string query;
};
// Splits an origin-form target ("/p?q") into path and query; reduces an
// absolute-form one ("http://host/p?q") to origin-form first.
// kInvalidArgument "request target must start with '/'" otherwise.
absl::StatusOr<SplitTargetResult> SplitTarget(absl::string_view target);

// Printable ASCII (0x20-0x7E), 1 to 128 characters.
bool IsSaneRequestId(absl::string_view id);
// 32 lowercase hex digits (128 random bits).
std::string NewRequestId();

}  // namespace tracim::broker::http_internal

#endif  // TRACIM_BROKER_HTTP_HTTP_WIRE_H_
