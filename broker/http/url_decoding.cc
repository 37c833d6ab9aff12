#include "broker/http/url_decoding.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tracim::broker {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::StatusOr<std::string> Decode(absl::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      const bool complete = i + 2 < in.size();
      const int hi = complete ? HexValue(in[i + 1]) : -1;
      const int lo = complete ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return absl::InvalidArgumentError(absl::StrCat("bad percent-encoding at offset ", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(absl::string_view encoded) {
  return Decode(encoded, /*plus_is_space=*/false);
}

absl::StatusOr<std::string> FormDecode(absl::string_view encoded) {
  return Decode(encoded, /*plus_is_space=*/true);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> key = FormDecode(kv.first);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> value = FormDecode(kv.second);
    if (!value.ok()) return value.status();
    out.emplace_back(*std::move(key), *std::move(value));
  }
  return out;
}

}  // namespace tracim::broker
