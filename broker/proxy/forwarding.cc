#include "broker/proxy/forwarding.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "broker/http/url_decoding.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;

constexpr absl::string_view kWithheld[] = {
    // Credentials.
    "authorization",
    "proxy-authorization",
    "cookie",
    "tracim-api-key",
    "tracim-api-login",
    // Identity asserted by the client.
    "remote-user",
    "x-remote-user",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-authenticated-user",
    "x-user",
    "x-user-id",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    // Hop-by-hop (RFC 9110 §7.6.1), and Expect, which the broker answers.
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    // Set by the proxy itself.
    "x-request-id",
    "x-forwarded-for",
};

constexpr absl::string_view kHopByHopResponse[] = {
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
};

bool IsIn(absl::string_view name, absl::Span<const absl::string_view> list) {
  return std::any_of(list.begin(), list.end(),
                     [&](absl::string_view n) { return absl::EqualsIgnoreCase(n, name); });
}

}  // namespace

bool IsWithheldRequestHeader(absl::string_view name) {
  return IsIn(name, kWithheld) || absl::StartsWithIgnoreCase(name, "x-tracim-");
}

std::string RemoteAddress(const HttpRequestHead& request) {
  if (absl::StrContains(request.client_address, ':')) {
    return absl::StrCat("[", request.client_address, "]:", request.client_port);
  }
  return absl::StrCat(request.client_address, ":", request.client_port);
}

v1::HttpRequestHead BuildPluginRequestHead(const HttpRequestHead& request,
                                           const RegisteredRoute& route,
                                           const std::map<std::string, std::string>& params,
                                           const std::optional<v1::User>& user) {
  v1::HttpRequestHead head;
  head.set_method(request.method);
  absl::StatusOr<std::string> path = PercentDecode(request.path);
  head.set_path(path.ok() ? *std::move(path) : request.path);
  head.set_query(request.query);
  head.set_route(route.pattern.pattern());
  head.mutable_path_params()->insert(params.begin(), params.end());

  // Fields named by Connection are hop-by-hop too.
  std::vector<std::string> connection_named;
  for (absl::string_view value : request.headers.GetAll("Connection")) {
    for (absl::string_view token : absl::StrSplit(value, ',')) {
      token = absl::StripAsciiWhitespace(token);
      if (!token.empty()) connection_named.emplace_back(token);
    }
  }
  std::vector<absl::string_view> forwarded_for;
  for (const auto& [name, value] : request.headers) {
    if (absl::EqualsIgnoreCase(name, "X-Forwarded-For")) {
      absl::string_view v = absl::StripAsciiWhitespace(value);
      if (!v.empty()) forwarded_for.push_back(v);
      continue;
    }
    if (IsWithheldRequestHeader(name)) continue;
    if (std::any_of(connection_named.begin(), connection_named.end(),
                    [&](const std::string& n) { return absl::EqualsIgnoreCase(n, name); })) {
      continue;
    }
    v1::HttpHeader* header = head.add_headers();
    header->set_name(name);
    header->set_value(value);
  }
  v1::HttpHeader* id = head.add_headers();
  id->set_name("X-Request-Id");
  id->set_value(request.request_id);
  forwarded_for.push_back(request.client_address);
  v1::HttpHeader* xff = head.add_headers();
  xff->set_name("X-Forwarded-For");
  xff->set_value(absl::StrJoin(forwarded_for, ", "));

  head.set_request_id(request.request_id);
  head.set_remote_addr(RemoteAddress(request));
  if (user.has_value()) *head.mutable_user() = *user;
  head.set_content_length(
      request.content_length.has_value() ? static_cast<int64_t>(*request.content_length) : -1);
  return head;
}

absl::StatusOr<HttpResponseHead> ToHttpResponseHead(const v1::HttpResponseHead& head) {
  if (head.status() < 200 || head.status() > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("status ", head.status(), " cannot be relayed (expected 200-599)"));
  }
  HttpResponseHead out;
  out.status = head.status();
  for (const v1::HttpHeader& header : head.headers()) {
    if (IsIn(header.name(), kHopByHopResponse)) continue;
    if (absl::EqualsIgnoreCase(header.name(), "Content-Length")) {
      uint64_t length = 0;
      const absl::string_view value = absl::StripAsciiWhitespace(header.value());
      const bool digits =
          !value.empty() && value.size() <= 19 &&
          std::all_of(value.begin(), value.end(), [](char c) { return absl::ascii_isdigit(c); });
      if (!digits || !absl::SimpleAtoi(value, &length)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid Content-Length '", header.value(), "'"));
      }
      if (out.content_length.has_value() && *out.content_length != length) {
        return absl::InvalidArgumentError("conflicting Content-Length fields");
      }
      out.content_length = length;
      continue;
    }
    out.headers.Add(header.name(), header.value());
  }
  return out;
}

}  // namespace tracim::broker
