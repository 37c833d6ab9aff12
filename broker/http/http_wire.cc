#include "broker/http/http_wire.h"

#include <array>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/beast/http/status.hpp"

namespace tracim::broker::http_internal {
namespace {

constexpr std::array<absl::string_view, 6> kServerOwnedFields = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "date", "x-request-id"};

bool IsServerOwned(absl::string_view name) {
  for (absl::string_view owned : kServerOwnedFields) {
    if (absl::EqualsIgnoreCase(name, owned)) return true;
  }
  return false;
}

bool IsTokenChar(unsigned char c) {
  if (absl::ascii_isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsFieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

absl::string_view ReasonPhrase(int status) {
  const boost::beast::string_view reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  if (reason == "<unknown-status>") return "Unknown";
  return absl::string_view(reason.data(), reason.size());
}

}  // namespace

std::string SerializeResponseHead(int status, const HttpHeaders& headers,
                                  absl::string_view request_id, const HeadFraming& framing) {
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
  for (const auto& [name, value] : headers) {
    if (IsServerOwned(name)) continue;
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "Date: ",
                  absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now(), absl::UTCTimeZone()),
                  "\r\n");
  absl::StrAppend(&out, "X-Request-Id: ", request_id, "\r\n");
  if (framing.content_length)
    absl::StrAppend(&out, "Content-Length: ", *framing.content_length, "\r\n");
  if (framing.chunked) out += "Transfer-Encoding: chunked\r\n";
  if (framing.close) {
    out += "Connection: close\r\n";
  } else if (framing.keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  return out;
}

absl::Status ValidateResponseHead(int status, const HttpHeaders& headers) {
  if (status < 200 || status > 599) {
    return absl::InvalidArgumentError(absl::StrCat("response status ", status, " is not 200-599"));
  }
  for (const auto& [name, value] : headers) {
    if (name.empty()) return absl::InvalidArgumentError("empty response header name");
    for (unsigned char c : name) {
      if (!IsTokenChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("response header name '", absl::CHexEscape(name), "' is not a token"));
      }
    }
    for (unsigned char c : value) {
      if (!IsFieldValueChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("response header '", name, "' has a control character in its value"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SplitTargetResult> SplitTarget(absl::string_view target) {
  if (!absl::StartsWith(target, "/")) {
    absl::string_view rest;
    if (absl::StartsWithIgnoreCase(target, "http://")) {
      rest = target.substr(7);
    } else if (absl::StartsWithIgnoreCase(target, "https://")) {
      rest = target.substr(8);
    } else {
      return absl::InvalidArgumentError("request target must start with '/'");
    }
    const size_t end_of_authority = rest.find_first_of("/?");
    target = end_of_authority == absl::string_view::npos ? absl::string_view()
                                                         : rest.substr(end_of_authority);
  }
  SplitTargetResult result;
  result.target = absl::StartsWith(target, "/") ? std::string(target) : absl::StrCat("/", target);
  const size_t question = result.target.find('?');
  result.path = result.target.substr(0, question);
  if (question != std::string::npos) result.query = result.target.substr(question + 1);
  return result;
}

bool IsSaneRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = absl::Uniform<uint64_t>(gen);
    for (int i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = kHex[bits & 0xf];
  }
  return id;
}

}  // namespace tracim::broker::http_internal
