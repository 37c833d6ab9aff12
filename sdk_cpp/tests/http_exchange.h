// One Plugin.HandleHttp exchange as a raw gRPC client (the broker's side)
// sees it, for the SDK tests that drive a plugin's server directly.
#ifndef TRACIM_SDK_CPP_TESTS_HTTP_EXCHANGE_H_
#define TRACIM_SDK_CPP_TESTS_HTTP_EXCHANGE_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <vector>

#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin::testing {

struct HttpExchange {
  grpc::Status status;
  std::optional<tracim::plugin::v1::HttpResponseHead> head;
  std::string body;
  // Each body message's size, the bytes sent with the head included.
  std::vector<size_t> chunk_sizes;
  // Response messages read, the head included.
  int messages = 0;
};

// Sends `head` and `body` (one part per string), half-closes, then reads
// the whole response and the call's status.
inline HttpExchange ExchangeHttp(tracim::plugin::v1::Plugin::Stub& stub,
                                 grpc::ClientContext& context,
                                 const tracim::plugin::v1::HttpRequestHead& head,
                                 const std::vector<std::string>& body) {
  auto stream = stub.HandleHttp(&context);
  tracim::plugin::v1::HttpRequestPart part;
  *part.mutable_head() = head;
  stream->Write(part);
  for (const std::string& chunk : body) {
    part.set_body(chunk);
    stream->Write(part);
  }
  stream->WritesDone();
  HttpExchange result;
  tracim::plugin::v1::HttpResponsePart response;
  while (stream->Read(&response)) {
    ++result.messages;
    // Body bytes come with the head (the first chunk) or in parts.
    const std::string& chunk = response.has_head() ? response.head().body() : response.body();
    if (response.has_head()) result.head = response.head();
    if (!response.has_head() || !chunk.empty()) {
      result.body += chunk;
      result.chunk_sizes.push_back(chunk.size());
    }
  }
  result.status = stream->Finish();
  return result;
}

}  // namespace tracim::plugin::testing

#endif  // TRACIM_SDK_CPP_TESTS_HTTP_EXCHANGE_H_
