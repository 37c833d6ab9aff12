#include "broker/http/http_headers.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace tracim::broker {

void HttpHeaders::Add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void HttpHeaders::Set(std::string name, std::string value) {
  Remove(name);
  Add(std::move(name), std::move(value));
}

size_t HttpHeaders::Remove(absl::string_view name) {
  const size_t before = fields_.size();
  fields_.erase(
      std::remove_if(fields_.begin(), fields_.end(),
                     [&](const Field& f) { return absl::EqualsIgnoreCase(f.first, name); }),
      fields_.end());
  return before - fields_.size();
}

std::optional<absl::string_view> HttpHeaders::Get(absl::string_view name) const {
  for (const Field& f : fields_) {
    if (absl::EqualsIgnoreCase(f.first, name)) return absl::string_view(f.second);
  }
  return std::nullopt;
}

std::vector<absl::string_view> HttpHeaders::GetAll(absl::string_view name) const {
  std::vector<absl::string_view> out;
  for (const Field& f : fields_) {
    if (absl::EqualsIgnoreCase(f.first, name)) out.emplace_back(f.second);
  }
  return out;
}

}  // namespace tracim::broker
