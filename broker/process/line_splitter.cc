#include "broker/process/line_splitter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tracim::broker {

LineSplitter::LineSplitter(size_t max_line_bytes, std::function<void(absl::string_view)> on_line)
    : max_line_bytes_(max_line_bytes), on_line_(std::move(on_line)) {}

void LineSplitter::EmitPartial() {
  absl::string_view line = partial_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > max_line_bytes_) {
    on_line_(absl::StrCat(line.substr(0, max_line_bytes_), kTruncatedMark));
  } else {
    on_line_(line);
  }
  partial_.clear();
}

void LineSplitter::Feed(absl::string_view data) {
  // partial_ may hold one byte over the maximum: a '\r' that turns out to
  // end the line does not count.
  const size_t limit = max_line_bytes_ + 1;
  while (!data.empty()) {
    size_t newline = data.find('\n');
    absl::string_view chunk = newline == absl::string_view::npos ? data : data.substr(0, newline);
    if (discarding_) {
      if (newline != absl::string_view::npos) discarding_ = false;
    } else if (partial_.size() + chunk.size() > limit) {
      // Too long whatever follows: emit what fits, drop the rest of the line.
      size_t room = max_line_bytes_ > partial_.size() ? max_line_bytes_ - partial_.size() : 0;
      partial_.append(chunk.data(), std::min(room, chunk.size()));
      partial_.resize(std::min(partial_.size(), max_line_bytes_));
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      on_line_(absl::StrCat(partial_, kTruncatedMark));
      partial_.clear();
      discarding_ = newline == absl::string_view::npos;
    } else {
      partial_.append(chunk.data(), chunk.size());
      if (newline != absl::string_view::npos) EmitPartial();
    }
    if (newline == absl::string_view::npos) break;
    data.remove_prefix(newline + 1);
  }
}

void LineSplitter::Finish() {
  if (!partial_.empty()) EmitPartial();
  discarding_ = false;
}

}  // namespace tracim::broker
