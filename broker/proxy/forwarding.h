// What crosses the proxy, each way: the HttpRequestHead a plugin receives
// (credentials, client-asserted identity and hop-by-hop fields withheld,
// X-Request-Id and X-Forwarded-For set) and the HTTP head the client gets
// from the plugin's HttpResponseHead. Pure functions: thread-safe.
#ifndef TRACIM_BROKER_PROXY_FORWARDING_H_
#define TRACIM_BROKER_PROXY_FORWARDING_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "broker/handshake/registration_validator.h"
#include "broker/http/http_request.h"
#include "broker/http/http_response.h"
#include "tracim/plugin/v1/http.pb.h"

namespace tracim::broker {

// Whether a request field never reaches a plugin (case-insensitive):
//  - credentials: Authorization, Proxy-Authorization, Cookie,
//    Tracim-Api-Key, Tracim-Api-Login;
//  - identity asserted by the client, which only the broker may state (it
//    does, in HttpRequestHead.user): every X-Tracim-* field, Remote-User,
//    X-Remote-User, X-Forwarded-User, X-Forwarded-Email,
//    X-Forwarded-Preferred-Username, X-Authenticated-User, X-User,
//    X-User-Id, X-Auth-Request-User, X-Auth-Request-Email,
//    X-Auth-Request-Preferred-Username;
//  - hop-by-hop fields: Connection (and the fields it names), Keep-Alive,
//    Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Expect.
bool IsWithheldRequestHeader(absl::string_view name);

// The first part of the HandleHttp stream for `request`, served by `route`
// with `params`: the path percent-decoded, the query raw, the headers
// without the withheld ones, X-Request-Id set to request.request_id,
// the client's address appended to X-Forwarded-For, and `user` (nullopt:
// anonymous).
tracim::plugin::v1::HttpRequestHead BuildPluginRequestHead(
    const HttpRequestHead& request, const RegisteredRoute& route,
    const std::map<std::string, std::string>& params,
    const std::optional<tracim::plugin::v1::User>& user);

// "127.0.0.1:51234", "[::1]:51234".
std::string RemoteAddress(const HttpRequestHead& request);

// The client's head from the plugin's: same status and fields, minus the
// hop-by-hop ones (the server frames the response itself); a Content-Length
// field becomes the declared length (enforced by the server). Errors,
// kInvalidArgument: status outside 200-599 ("status 101 cannot be relayed
// (expected 200-599)"), an unparsable or conflicting Content-Length.
// Field names and values are checked by HttpStream::WriteHead.
absl::StatusOr<HttpResponseHead> ToHttpResponseHead(
    const tracim::plugin::v1::HttpResponseHead& head);

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROXY_FORWARDING_H_
