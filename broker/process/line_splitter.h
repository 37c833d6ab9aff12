// Splits a byte stream (a plugin's stdout or stderr) into lines, cutting
// lines longer than a maximum and marking them, so that a plugin can never
// make the broker buffer without bound. Not thread-safe: one per stream.
#ifndef TRACIM_BROKER_PROCESS_LINE_SPLITTER_H_
#define TRACIM_BROKER_PROCESS_LINE_SPLITTER_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace tracim::broker {

class LineSplitter {
 public:
  // Appended to a line that was cut at max_line_bytes.
  static constexpr absl::string_view kTruncatedMark = " [line truncated]";

  // `on_line` receives each complete line without its "\n" (and without a
  // trailing "\r"). The maximum counts the line's bytes without them.
  LineSplitter(size_t max_line_bytes, std::function<void(absl::string_view)> on_line);

  // Feeds bytes; calls on_line for every line completed.
  void Feed(absl::string_view data);
  // End of stream: flushes an unterminated last line, if any.
  void Finish();

 private:
  // Emits partial_ as a complete line (without a trailing '\r'), cut and
  // marked if longer than the maximum.
  void EmitPartial();

  size_t max_line_bytes_;
  std::function<void(absl::string_view)> on_line_;
  std::string partial_;
  // The current line was already cut: drop its bytes until the next "\n".
  bool discarding_ = false;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROCESS_LINE_SPLITTER_H_
