// The request as handlers see it: HttpRequestHead (request line, headers,
// client address, request id) and HttpRequest (head + fully read body).
// Value types built by HttpServer: thread-compatible, safe to copy and hand
// to another thread.
#ifndef TRACIM_BROKER_HTTP_HTTP_REQUEST_H_
#define TRACIM_BROKER_HTTP_HTTP_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "broker/http/http_headers.h"

namespace tracim::broker {

struct HttpRequestHead {
  // As sent; methods are case-sensitive ("GET", "POST", ...).
  std::string method;
  // The raw request-target. Absolute-form ("http://host/p?q") is reduced to
  // origin-form ("/p?q") by the server, so it always starts with '/'.
  std::string target;
  // `target` before the first '?', still percent-encoded: route on this,
  // decode segments with PercentDecode (url_decoding.h).
  std::string path;
  // `target` after the first '?' (without it), still encoded; "" if none.
  // ParseQuery (url_decoding.h) splits and decodes it.
  std::string query;
  // 10 for HTTP/1.0, 11 for HTTP/1.1.
  int http_version = 11;
  // Every field as received, hop-by-hop ones included (a proxy strips them).
  HttpHeaders headers;
  // The peer's IP address as text ("127.0.0.1", "::1") and port: the value a
  // proxy appends to X-Forwarded-For.
  std::string client_address;
  uint16_t client_port = 0;
  // The client's X-Request-Id when sane (printable ASCII, 1-128 chars), else
  // a generated 32-hex-digit id. Echoed in the response's X-Request-Id.
  std::string request_id;
  // The declared body length; nullopt with a chunked body or no body.
  std::optional<uint64_t> content_length;
  bool chunked = false;

  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

// What a simple handler gets: the head and the whole body (bounded by the
// route's body limit).
struct HttpRequest {
  HttpRequestHead head;
  std::string body;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_REQUEST_H_
