// What handlers send back: HttpResponse (whole response) and
// HttpResponseHead (status + headers of a streamed response), plus the JSON
// error shape every broker error uses: {"code": "...", "message": "..."}.
// Value types: thread-compatible. JsonError* are pure functions.
#ifndef TRACIM_BROKER_HTTP_HTTP_RESPONSE_H_
#define TRACIM_BROKER_HTTP_HTTP_RESPONSE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "broker/http/http_headers.h"

namespace tracim::broker {

// The server owns framing and connection management: it sets Content-Length
// or Transfer-Encoding, Connection, Date and X-Request-Id itself and drops
// handler-supplied Content-Length, Transfer-Encoding, Connection,
// Keep-Alive and X-Request-Id fields.
struct HttpResponse {
  int status = 200;  // 200-599
  HttpHeaders headers;
  std::string body;
};

struct HttpResponseHead {
  int status = 200;  // 200-599
  HttpHeaders headers;
  // Known body length: sent as Content-Length and enforced (writing more
  // fails, finishing with less cuts the connection). nullopt: chunked for
  // HTTP/1.1 clients, close-delimited for HTTP/1.0 ones.
  std::optional<uint64_t> content_length;
};

// {"code":"<code>","message":"<message>"}, JSON-escaped.
std::string JsonErrorBody(absl::string_view code, absl::string_view message);

// A response with that body and Content-Type: application/json.
//   JsonErrorResponse(502, "plugin_unavailable", "plugin 'x' is not running")
HttpResponse JsonErrorResponse(int status, absl::string_view code, absl::string_view message);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_RESPONSE_H_
