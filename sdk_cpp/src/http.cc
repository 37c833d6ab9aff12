#include "tracim/plugin/http.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "sdk_cpp/src/string_view_compat.h"

namespace tracim::plugin {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Decodes %XX escapes and '+' (form encoding); a malformed escape is kept.
std::string DecodeQueryComponent(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::optional<std::string> FindHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [header, value] : headers) {
    if (absl::EqualsIgnoreCase(header, internal::AsAbsl(name))) return value;
  }
  return std::nullopt;
}

std::optional<std::string> FindQueryParam(std::string_view query, std::string_view name) {
  for (absl::string_view pair : absl::StrSplit(internal::AsAbsl(query), '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (DecodeQueryComponent(internal::AsStd(kv.first)) == name)
      return DecodeQueryComponent(internal::AsStd(kv.second));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> HttpRequest::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  return FindQueryParam(query, name);
}

std::optional<std::string> HttpRequestHead::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

std::optional<std::string> HttpRequestHead::QueryParam(std::string_view name) const {
  return FindQueryParam(query, name);
}

void HttpResponse::SetHeader(std::string name, std::string value) {
  std::erase_if(headers,
                [&](const auto& header) { return absl::EqualsIgnoreCase(header.first, name); });
  headers.emplace_back(std::move(name), std::move(value));
}

HttpResponse HttpResponse::Json(int status, std::string json_text) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = std::move(json_text);
  return response;
}

HttpResponse HttpResponse::Text(int status, std::string text) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  response.body = std::move(text);
  return response;
}

HttpResponse HttpResponse::Message(int status, std::string_view message) {
  boost::json::object body;
  body["message"] = boost::json::string_view(message.data(), message.size());
  return Json(status, boost::json::serialize(body));
}

}  // namespace tracim::plugin
