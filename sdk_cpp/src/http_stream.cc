// HttpStream: the rules of a streaming route call (head first and once,
// sticky errors, body cut into kResponseChunkBytes messages), over whichever
// HttpTransport moves the parts.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk_cpp/src/http_transport.h"
#include "tracim/plugin/http.h"

namespace tracim::plugin {

absl::Status HttpStream::Broke(absl::Status status) {
  if (broken_.ok()) broken_ = std::move(status);
  return broken_;
}

absl::StatusOr<std::optional<std::string>> HttpStream::Read() {
  if (!broken_.ok()) return broken_;
  if (body_ended_) return std::nullopt;
  absl::StatusOr<std::optional<std::string>> chunk = transport_.ReadBody();
  if (!chunk.ok()) return Broke(chunk.status());
  if (!chunk->has_value()) body_ended_ = true;
  return chunk;
}

absl::Status HttpStream::WriteHead(int status, HttpHeaders headers) {
  if (!broken_.ok()) return broken_;
  if (head_written_) {
    return absl::FailedPreconditionError("WriteHead: the response head was already written");
  }
  if (status < 200 || status > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("WriteHead: invalid HTTP status ", status, " (must be 200-599)"));
  }
  if (absl::Status sent = transport_.SendHead(status, headers); !sent.ok()) return Broke(sent);
  head_written_ = true;
  return absl::OkStatus();
}

absl::Status HttpStream::Write(std::string_view chunk) {
  if (!broken_.ok()) return broken_;
  if (!head_written_) {
    return absl::FailedPreconditionError(
        "Write: the response head is not written yet (call WriteHead first)");
  }
  while (!chunk.empty()) {
    const size_t size = std::min(chunk.size(), internal::kResponseChunkBytes);
    if (absl::Status sent = transport_.SendBody(chunk.substr(0, size)); !sent.ok()) {
      return Broke(sent);
    }
    chunk.remove_prefix(size);
  }
  return absl::OkStatus();
}

namespace internal {

HttpRequest RequestWithBody(HttpRequestHead head, std::string body) {
  return HttpRequest{
      .method = std::move(head.method),
      .path = std::move(head.path),
      .query = std::move(head.query),
      .route = std::move(head.route),
      .path_params = std::move(head.path_params),
      .headers = std::move(head.headers),
      .body = std::move(body),
      .user = std::move(head.user),
      .request_id = std::move(head.request_id),
      .remote_addr = std::move(head.remote_addr),
  };
}

}  // namespace internal
}  // namespace tracim::plugin
