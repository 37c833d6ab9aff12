// Tests for LineSplitter: lines split on "\n" with a trailing "\r" removed,
// lines over the maximum cut and marked with the rest dropped, Finish()
// flushing an unterminated last line, and the same lines whatever the chunking
// of the stream.
#include "broker/process/line_splitter.h"

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records every line the splitter emits.
class Recorder {
 public:
  explicit Recorder(size_t max_line_bytes)
      : splitter_(max_line_bytes, [this](absl::string_view line) { lines_.emplace_back(line); }) {}

  LineSplitter& splitter() { return splitter_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
  LineSplitter splitter_;
};

// Feeds `input` in chunks of `chunk_size` bytes, then finishes the stream.
std::vector<std::string> SplitInChunks(size_t max_line_bytes, absl::string_view input,
                                       size_t chunk_size) {
  Recorder r(max_line_bytes);
  for (size_t i = 0; i < input.size(); i += chunk_size) {
    r.splitter().Feed(input.substr(i, chunk_size));
  }
  r.splitter().Finish();
  return r.lines();
}

TEST(LineSplitter, TruncatedMarkIsDocumentedText) {
  EXPECT_EQ(LineSplitter::kTruncatedMark, " [line truncated]");
}

TEST(LineSplitter, EmitsEachLineWithoutItsNewline) {
  Recorder r(100);
  r.splitter().Feed("first\nsecond\n\nfourth\n");
  EXPECT_THAT(r.lines(), ElementsAre("first", "second", "", "fourth"));
}

TEST(LineSplitter, HoldsAnUnterminatedLineUntilItsNewlineArrives) {
  Recorder r(100);
  r.splitter().Feed("hel");
  EXPECT_THAT(r.lines(), IsEmpty());
  r.splitter().Feed("lo");
  EXPECT_THAT(r.lines(), IsEmpty());
  r.splitter().Feed(" world\nnext");
  EXPECT_THAT(r.lines(), ElementsAre("hello world"));
}

TEST(LineSplitter, EmptyFeedEmitsNothing) {
  Recorder r(100);
  r.splitter().Feed("");
  r.splitter().Feed("ab");
  r.splitter().Feed("");
  EXPECT_THAT(r.lines(), IsEmpty());
}

TEST(LineSplitter, FinishFlushesAnUnterminatedLastLine) {
  Recorder r(100);
  r.splitter().Feed("one\nlast words");
  r.splitter().Finish();
  EXPECT_THAT(r.lines(), ElementsAre("one", "last words"));
}

TEST(LineSplitter, FinishEmitsNothingWhenNoBytesArePending) {
  Recorder r(100);
  r.splitter().Feed("one\n");
  r.splitter().Finish();
  r.splitter().Finish();
  EXPECT_THAT(r.lines(), ElementsAre("one"));
}

TEST(LineSplitter, StripsTheCarriageReturnOfCrLf) {
  Recorder r(100);
  r.splitter().Feed("dos\r\nunix\n\r\n");
  EXPECT_THAT(r.lines(), ElementsAre("dos", "unix", ""));
}

TEST(LineSplitter, StripsOnlyOneTrailingCarriageReturnAndKeepsInnerOnes) {
  Recorder r(100);
  r.splitter().Feed("a\rb\nc\r\r\n");
  EXPECT_THAT(r.lines(), ElementsAre("a\rb", "c\r"));
}

TEST(LineSplitter, StripsACarriageReturnWhoseNewlineComesInTheNextFeed) {
  Recorder r(100);
  r.splitter().Feed("dos\r");
  r.splitter().Feed("\n");
  EXPECT_THAT(r.lines(), ElementsAre("dos"));
}

TEST(LineSplitter, FinishStripsATrailingCarriageReturn) {
  Recorder r(100);
  r.splitter().Feed("dos\r");
  r.splitter().Finish();
  EXPECT_THAT(r.lines(), ElementsAre("dos"));
}

TEST(LineSplitter, KeepsALineOfExactlyTheMaximum) {
  Recorder r(5);
  r.splitter().Feed("abcde\n");
  EXPECT_THAT(r.lines(), ElementsAre("abcde"));
}

TEST(LineSplitter, KeepsALineOfExactlyTheMaximumWhoseNewlineComesLater) {
  Recorder r(5);
  r.splitter().Feed("abcde");
  r.splitter().Feed("\nxy\n");
  EXPECT_THAT(r.lines(), ElementsAre("abcde", "xy"));
}

TEST(LineSplitter, CutsALineOneByteOverTheMaximumAndMarksIt) {
  Recorder r(5);
  r.splitter().Feed("abcdef\nok\n");
  EXPECT_THAT(r.lines(), ElementsAre("abcde [line truncated]", "ok"));
}

TEST(LineSplitter, CutsALineAsSoonAsItExceedsTheMaximumWithoutWaitingForItsEnd) {
  Recorder r(3);
  r.splitter().Feed("abcdefgh");
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]"));
}

TEST(LineSplitter, DropsTheRestOfACutLineUpToItsNewline) {
  Recorder r(3);
  r.splitter().Feed("abcdefgh");
  r.splitter().Feed("ijklmnop");
  r.splitter().Feed("qr\nxyz\n");
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]", "xyz"));
}

TEST(LineSplitter, CutsALineBuiltFromSeveralFeeds) {
  Recorder r(4);
  r.splitter().Feed("ab");
  r.splitter().Feed("cdef\nnext\n");
  EXPECT_THAT(r.lines(), ElementsAre("abcd [line truncated]", "next"));
}

TEST(LineSplitter, CutsAtTheMaximumWhenOneMoreByteFollowsAFullBuffer) {
  Recorder r(3);
  r.splitter().Feed("abc");
  r.splitter().Feed("d");
  r.splitter().Feed("e\nf\n");
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]", "f"));
}

TEST(LineSplitter, StripsACarriageReturnLeftAtTheEndOfTheKeptPart) {
  Recorder r(4);
  r.splitter().Feed("abc\rdef\n");
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]"));
}

TEST(LineSplitter, FinishAfterACutLineEmitsNothingMoreAndStopsDiscarding) {
  Recorder r(3);
  r.splitter().Feed("abcdef");
  r.splitter().Finish();
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]"));
  // A new stream on the same splitter starts with a fresh line.
  r.splitter().Feed("xy\n");
  EXPECT_THAT(r.lines(), ElementsAre("abc [line truncated]", "xy"));
}

// A "\r\n" line whose text is exactly the maximum is kept whole: the "\r",
// which on_line never receives, does not count against max_line_bytes.
TEST(LineSplitter, KeepsACrLfLineOfExactlyTheMaximum) {
  Recorder r(5);
  r.splitter().Feed("abcde\r\n");
  EXPECT_THAT(r.lines(), ElementsAre("abcde"));
}

TEST(LineSplitter, GivesTheSameLinesWhateverTheChunking) {
  constexpr absl::string_view kInput =
      "short\n"
      "exactly8\n"
      "toolongline!!\n"
      "crlf\r\n"
      "\n"
      "waytoolongandmore\r\n"
      "a\rb\n"
      "tail";
  const std::vector<std::string> expected = {"short", "exactly8", "toolongl [line truncated]",
                                             "crlf",  "",         "waytoolo [line truncated]",
                                             "a\rb",  "tail"};
  // Chunk size 1 is the byte-at-a-time case; the others cut lines, "\r\n"
  // pairs and over-long lines at every possible offset.
  for (size_t chunk_size = 1; chunk_size <= kInput.size(); ++chunk_size) {
    EXPECT_EQ(SplitInChunks(8, kInput, chunk_size), expected) << "chunk size " << chunk_size;
  }
}

TEST(LineSplitter, GivesTheSameLinesForIrregularChunks) {
  constexpr absl::string_view kInput = "alpha\nbeta-is-too-long\r\ngamma\r\ndelta";
  const std::vector<std::string> expected = {"alpha", "beta-is- [line truncated]", "gamma",
                                             "delta"};
  const size_t sizes[] = {3, 1, 7, 2, 5, 11, 1, 4};
  Recorder r(8);
  size_t offset = 0;
  for (size_t i = 0; offset < kInput.size(); ++i) {
    size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
    r.splitter().Feed(kInput.substr(offset, n));
    offset += n;
  }
  r.splitter().Finish();
  EXPECT_EQ(r.lines(), expected);
}

}  // namespace
}  // namespace tracim::broker
