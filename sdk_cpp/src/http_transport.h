// HttpTransport: what moves the parts of one streaming route call, under an
// HttpStream: the gRPC reactor of Plugin.HandleHttp in a plugin process
// (http_call_reactor.h), an in-memory fake in PluginHarness. HttpStream
// keeps the rules (head first, sticky errors, 64 KiB chunks); a transport
// only moves bytes.
//
// Thread-safety: one call at a time, from the handler's thread; each call
// may block.
#ifndef TRACIM_SDK_CPP_SRC_HTTP_TRANSPORT_H_
#define TRACIM_SDK_CPP_SRC_HTTP_TRANSPORT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tracim/plugin/http.h"

namespace tracim::plugin::internal {

// Largest response body chunk sent in one message.
inline constexpr size_t kResponseChunkBytes = 64 * 1024;
// What a streaming handler's calls return once the client went away or the
// broker cancelled the call.
inline constexpr char kCancelledMessage[] =
    "the request was cancelled: the client went away or its deadline passed";

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Blocks until the next request body chunk (non-empty), std::nullopt at
  // the end of the body, or a CANCELLED error. Not called again after the
  // end or an error.
  virtual absl::StatusOr<std::optional<std::string>> ReadBody() = 0;

  // Each blocks until the part was handed on; CANCELLED when the call broke.
  // SendHead comes once, before any SendBody; `status` is 200-599; `chunk`
  // is 1 to kResponseChunkBytes bytes.
  virtual absl::Status SendHead(int status, const HttpHeaders& headers) = 0;
  virtual absl::Status SendBody(std::string_view chunk) = 0;
};

// The buffered request made of `head` and the whole `body`.
HttpRequest RequestWithBody(HttpRequestHead head, std::string body);

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_HTTP_TRANSPORT_H_
