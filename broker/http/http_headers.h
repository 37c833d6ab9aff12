// HttpHeaders: an ordered list of HTTP header fields with case-insensitive
// lookup, as received (request) or to be sent (response).
// A value type: thread-compatible (const methods may run concurrently).
#ifndef TRACIM_BROKER_HTTP_HTTP_HEADERS_H_
#define TRACIM_BROKER_HTTP_HTTP_HEADERS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace tracim::broker {

// Field names keep the case they were given; every lookup ignores case
// (RFC 9110 §5.1). Repeated fields are kept in order.
//
//   HttpHeaders h;
//   h.Add("Content-Type", "application/json");
//   if (auto v = h.Get("content-type")) ...  // "application/json"
class HttpHeaders {
 public:
  using Field = std::pair<std::string, std::string>;

  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<Field> fields) : fields_(fields) {}

  // Appends a field (a repeated name keeps every value).
  void Add(std::string name, std::string value);
  // Replaces every field named `name` by one field.
  void Set(std::string name, std::string value);
  // Removes every field named `name`; returns how many were removed.
  size_t Remove(absl::string_view name);

  // The first value of `name`, or nullopt. The view lives as long as the
  // field is neither removed nor replaced.
  std::optional<absl::string_view> Get(absl::string_view name) const;
  // Every value of `name`, in order.
  std::vector<absl::string_view> GetAll(absl::string_view name) const;
  bool Has(absl::string_view name) const { return Get(name).has_value(); }

  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Field>::const_iterator end() const { return fields_.end(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_HTTP_HTTP_HEADERS_H_
