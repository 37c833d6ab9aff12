// The route test plugin's `GET /plugins/rp/ping` as a direct HandleHttp
// call (the head the broker would send), and the check of its answer:
// shared by the benchmarks that call the plugin without the broker.
#ifndef TRACIM_BENCH_PING_CALL_H_
#define TRACIM_BENCH_PING_CALL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::bench {

inline void PreparePingCall(grpc::ClientContext& context, tracim::plugin::v1::HttpRequestPart& out,
                            const std::string& secret, const std::string& request_id) {
  context.AddMetadata(tracim::plugin::v1::kSecretMetadataKey, secret);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  tracim::plugin::v1::HttpRequestHead* head = out.mutable_head();
  head->set_method("GET");
  head->set_path("/plugins/rp/ping");
  head->set_route("/plugins/rp/ping");
  head->set_request_id(request_id);
  head->set_content_length(-1);
}

// Collects the response parts; the ping answers 200 "pong", the body with
// the head or in a part.
struct PingAnswer {
  int status = 0;
  std::string body;

  void Add(const tracim::plugin::v1::HttpResponsePart& part) {
    if (part.has_head()) {
      status = part.head().status();
      body += part.head().body();
    } else {
      body += part.body();
    }
  }
  bool Pong() const { return status == 200 && body == "pong"; }
};

// One ping over the completion-queue API, the way the broker's proxy calls
// plugins (corked start, last write, reads to the end, Finish), with the
// calling thread draining `cq`: the cheapest gRPC client for one call at a
// time. Whether the plugin answered the ping.
inline bool CompletionQueuePing(tracim::plugin::v1::Plugin::Stub& stub, grpc::CompletionQueue& cq,
                                const std::string& secret, const std::string& request_id) {
  grpc::ClientContext context;
  tracim::plugin::v1::HttpRequestPart out;
  PreparePingCall(context, out, secret, request_id);
  context.set_initial_metadata_corked(true);
  tracim::plugin::v1::HttpResponsePart in;
  PingAnswer answer;
  grpc::Status status;
  auto call = stub.PrepareAsyncHandleHttp(&context, &cq);
  call->StartCall(nullptr);
  int kWrite = 0, kRead = 0, kFinish = 0;
  call->WriteLast(out, grpc::WriteOptions(), &kWrite);
  call->Read(&in, &kRead);
  int outstanding = 2;
  while (outstanding > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) return false;
    --outstanding;
    if (tag != &kRead) continue;
    if (ok) {
      answer.Add(in);
      call->Read(&in, &kRead);
    } else {
      call->Finish(&status, &kFinish);
    }
    ++outstanding;
  }
  return status.ok() && answer.Pong();
}

}  // namespace tracim::bench

#endif  // TRACIM_BENCH_PING_CALL_H_
