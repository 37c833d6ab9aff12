// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0: its
// absl::string_view is not std::string_view. The SDK's public API speaks
// std::string_view; these convert at the edge. Stateless: thread-safe.
#ifndef TRACIM_SDK_CPP_SRC_STRING_VIEW_COMPAT_H_
#define TRACIM_SDK_CPP_SRC_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace tracim::plugin::internal {

inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view AsStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace tracim::plugin::internal

#endif  // TRACIM_SDK_CPP_SRC_STRING_VIEW_COMPAT_H_
