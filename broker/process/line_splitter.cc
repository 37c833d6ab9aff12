#include "broker/process/line_splitter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace tracim::broker {

LineSplitter::LineSplitter(size_t max_line_bytes, std::function<void(absl::string_view)> on_line)
    : max_line_bytes_(max_line_bytes), on_line_(std::move(on_line)) {}

void LineSplitter::Emit(absl::string_view line, bool truncated) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (truncated) {
    on_line_(absl::StrCat(line, kTruncatedMark));
  } else {
    on_line_(line);
  }
}

void LineSplitter::Feed(absl::string_view data) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    absl::string_view chunk = newline == absl::string_view::npos ? data : data.substr(0, newline);
    if (discarding_) {
      if (newline != absl::string_view::npos) discarding_ = false;
    } else if (partial_.size() + chunk.size() > max_line_bytes_) {
      // Emit what fits, then drop the rest of this line.
      absl::string_view fits = chunk.substr(0, max_line_bytes_ - partial_.size());
      partial_.append(fits.data(), fits.size());
      Emit(partial_, /*truncated=*/true);
      partial_.clear();
      discarding_ = newline == absl::string_view::npos;
    } else if (newline != absl::string_view::npos) {
      if (partial_.empty()) {
        Emit(chunk, false);
      } else {
        partial_.append(chunk.data(), chunk.size());
        Emit(partial_, false);
        partial_.clear();
      }
    } else {
      partial_.append(chunk.data(), chunk.size());
    }
    if (newline == absl::string_view::npos) break;
    data.remove_prefix(newline + 1);
  }
}

void LineSplitter::Finish() {
  if (!partial_.empty()) Emit(partial_, false);
  partial_.clear();
  discarding_ = false;
}

}  // namespace tracim::broker
