// A plugin for the route proxy's tests and benchmark, written against raw
// gRPC (callback API) so that it can stream, stall, crash and break the
// protocol on purpose. Every route lies under /plugins/<name>/:
//
//   GET  ping                 200 "pong" (the benchmark's trivial route)
//   POST echo, PUT echo       200, streams the request body back chunk by
//                             chunk as it reads it (one chunk in flight)
//   GET  download/{size}      200, Content-Length: size, bytes generated on
//                             the fly in 64 KiB chunks ('a'..'z' repeating);
//                             HEAD too (the broker drops the bytes)
//   GET  hang                 never answers (route timeout_ms 500)
//   GET  hang-default         never answers (the broker's default timeout)
//   GET  head-then-hang       sends the head and one chunk, then nothing
//   GET  exit/{when}          exits the process (status 3): when = "now"
//                             before answering, "mid" 200 ms after the head
//                             and one body chunk went out
//   GET  fail                 finishes the call with INTERNAL before a head
//   GET  bad-head             answers status 42
//   GET  inspect/{id}, POST inspect/{id}, GET items/new, DELETE items/{id}
//                             report what the plugin received as JSON
//   GET  private/inspect      the same, for authenticated callers only
//   GET  current-user/{id}    asks the broker HostApi.GetCurrentUser(id)
//                             ("self": this request's id) and answers
//                             {"status": "<gRPC code>", "username": "..."}
//
// Modes (--mode=): normal; no-register (serve without calling Register:
// the benchmark calls it directly with its own secret).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tests/plugins/common/plugin_process.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace {

namespace v1 = tracim::plugin::v1;

constexpr size_t kChunkBytes = 64 * 1024;

using tracim::testing::Env;
using tracim::testing::RequestStop;

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// {"method":..., "path":..., "query":..., "route":..., "params":{...},
//  "headers":[[name,value],...], "request_id":..., "remote_addr":...,
//  "user":null|{"user_id":..,"username":..,"email":..}, "content_length":..,
//  "body_bytes":..}
std::string Report(const v1::HttpRequestHead& head, uint64_t body_bytes) {
  std::string out = "{\"method\":" + JsonString(head.method()) +
                    ",\"path\":" + JsonString(head.path()) +
                    ",\"query\":" + JsonString(head.query()) +
                    ",\"route\":" + JsonString(head.route()) + ",\"params\":{";
  std::map<std::string, std::string> params(head.path_params().begin(), head.path_params().end());
  bool first = true;
  for (const auto& [k, v] : params) {
    out += (first ? "" : ",") + JsonString(k) + ":" + JsonString(v);
    first = false;
  }
  out += "},\"headers\":[";
  first = true;
  for (const auto& h : head.headers()) {
    out += std::string(first ? "" : ",") + "[" + JsonString(h.name()) + "," +
           JsonString(h.value()) + "]";
    first = false;
  }
  out += "],\"request_id\":" + JsonString(head.request_id()) +
         ",\"remote_addr\":" + JsonString(head.remote_addr()) + ",\"user\":";
  if (head.has_user()) {
    out += "{\"user_id\":" + std::to_string(head.user().user_id()) +
           ",\"username\":" + JsonString(head.user().username()) +
           ",\"email\":" + JsonString(head.user().email()) + "}";
  } else {
    out += "null";
  }
  out += ",\"content_length\":" + std::to_string(head.content_length()) +
         ",\"body_bytes\":" + std::to_string(body_bytes) + "}";
  return out;
}

// One HandleHttp call. One read and one write at a time, each issued from
// the previous one's reaction; deletes itself in OnDone.
class HttpReactor final
    : public grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart> {
 public:
  HttpReactor(std::string prefix, bool authorized, std::shared_ptr<v1::HostApi::Stub> host_api,
              std::string secret)
      : prefix_(std::move(prefix)), host_api_(std::move(host_api)), secret_(std::move(secret)) {
    if (!authorized) {
      TryFinish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing secret"));
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!have_head_) {
      if (!ok || !in_.has_head()) {
        return TryFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request head"));
      }
      have_head_ = true;
      head_ = in_.head();
      route_ = head_.route().substr(std::min(prefix_.size(), head_.route().size()));
      // Dispatch on the pattern (never on the path), with the parameter
      // folded in where it picks the behaviour.
      if (route_ == "exit/{when}") route_ = "exit/" + Param("when");
      return OnHead();
    }
    if (ok) {
      body_bytes_ += in_.body().size();
      if (route_ == "echo" && !in_.body().empty()) {
        out_.Clear();
        out_.set_body(std::move(*in_.mutable_body()));
        return StartWrite(&out_);
      }
      return StartRead(&in_);  // drain
    }
    // Half-closed by the broker: the whole request is in.
    if (route_ == "echo") return TryFinish(grpc::Status::OK);
    Respond(200, "application/json", Report(head_, body_bytes_));
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return TryFinish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    if (!last_body_.empty()) {
      // The head of a two-message response went out: the body ends the call.
      out_.Clear();
      out_.set_body(std::move(last_body_));
      last_body_.clear();
      return WriteAndFinish();
    }
    if (route_ == "echo") return StartRead(&in_);
    if (route_.rfind("download/", 0) == 0) return NextDownloadChunk();
    if (route_ == "exit/mid") {
      if (++writes_ == 2) {
        // A write is "done" once gRPC has it, not once it left: give the
        // chunk time to reach the broker, then die mid-response.
        std::thread([] {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          std::printf("route_plugin: exiting in the middle of a response\n");
          std::fflush(stdout);
          _exit(3);
        }).detach();
        return;
      }
      return WriteBody(std::string(1000, 'x'));
    }
    if (route_ == "head-then-hang" && ++writes_ == 1) WriteBody("partial");
  }

  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      if (asking_) return;  // the asking thread finishes
    }
    TryFinish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override { delete this; }

 private:
  // Finish exactly once, whichever reaction gets there first (OnCancel may
  // run concurrently with the others).
  void TryFinish(grpc::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(std::move(status));
  }

  void WriteAndFinish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnHead() {
    if (route_ == "ping") {
      // One message: the head carries the whole body.
      const std::string body = "pong";
      FillHead(200, "text/plain", static_cast<int64_t>(body.size()));
      out_.mutable_head()->set_body(body);
      return WriteAndFinish();
    }
    if (route_ == "inline-then-more") {
      // Body bytes with the head (no Content-Length), then one more part.
      FillHead(200, "text/plain", -1);
      out_.mutable_head()->set_body("first,");
      last_body_ = "second";
      return StartWrite(&out_);
    }
    if (route_ == "echo") {
      FillHead(200, "application/octet-stream", -1);
      return StartWrite(&out_);
    }
    if (route_.rfind("download/", 0) == 0) {
      download_left_ = std::strtoull(Param("size").c_str(), nullptr, 10);
      FillHead(200, "application/octet-stream", static_cast<int64_t>(download_left_));
      return StartWrite(&out_);
    }
    if (route_ == "hang" || route_ == "hang-default") return;  // until cancelled
    if (route_ == "head-then-hang" || route_ == "exit/mid") {
      FillHead(200, "text/plain", -1);
      return StartWrite(&out_);
    }
    if (route_ == "exit/now") {
      std::printf("route_plugin: exiting before answering\n");
      std::fflush(stdout);
      _exit(3);
    }
    if (route_ == "current-user/{id}") return AskCurrentUser();
    if (route_ == "fail") {
      return TryFinish(grpc::Status(grpc::StatusCode::INTERNAL, "deliberate failure"));
    }
    if (route_ == "bad-head") {
      out_.Clear();
      out_.mutable_head()->set_status(42);
      return WriteAndFinish();
    }
    // inspect and friends: read the whole body, then report.
    StartRead(&in_);
  }

  // A blocking host API call, on a thread of its own (never in a reaction).
  void AskCurrentUser() {
    const std::string id = Param("id") == "self" ? head_.request_id() : Param("id");
    {
      std::lock_guard<std::mutex> lock(mu_);
      asking_ = true;
    }
    std::thread([this, id] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      context.AddMetadata(v1::kSecretMetadataKey, secret_);
      v1::GetCurrentUserRequest request;
      request.set_request_id(id);
      v1::User user;
      const grpc::Status status = host_api_->GetCurrentUser(&context, request, &user);
      const char* code = status.ok()                                          ? "OK"
                         : status.error_code() == grpc::StatusCode::NOT_FOUND ? "NOT_FOUND"
                                                                              : "OTHER";
      bool cancelled = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        asking_ = false;
        cancelled = cancelled_;
      }
      if (cancelled) return TryFinish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      Respond(200, "application/json",
              std::string("{\"status\":\"") + code +
                  "\",\"username\":" + JsonString(user.username()) + "}");
    }).detach();
  }

  std::string Param(const std::string& name) const {
    auto it = head_.path_params().find(name);
    return it == head_.path_params().end() ? "" : it->second;
  }

  void FillHead(int status, const char* type, int64_t length) {
    out_.Clear();
    v1::HttpResponseHead* head = out_.mutable_head();
    head->set_status(status);
    v1::HttpHeader* h = head->add_headers();
    h->set_name("Content-Type");
    h->set_value(type);
    if (length >= 0) {
      h = head->add_headers();
      h->set_name("Content-Length");
      h->set_value(std::to_string(length));
    }
  }

  // A whole (non-empty) response: the head, then the body with the finish.
  void Respond(int status, const char* type, std::string body) {
    FillHead(status, type, static_cast<int64_t>(body.size()));
    last_body_ = std::move(body);
    StartWrite(&out_);
  }

  void WriteBody(std::string data) {
    out_.Clear();
    out_.set_body(std::move(data));
    StartWrite(&out_);
  }

  void NextDownloadChunk() {
    if (download_left_ == 0) return TryFinish(grpc::Status::OK);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(download_left_, kChunkBytes));
    std::string chunk(n, 'a');
    for (size_t i = 0; i < n; ++i) chunk[i] = static_cast<char>('a' + (download_offset_ + i) % 26);
    download_offset_ += n;
    download_left_ -= n;
    WriteBody(std::move(chunk));
  }

  const std::string prefix_;
  const std::shared_ptr<v1::HostApi::Stub> host_api_;
  const std::string secret_;
  v1::HttpRequestPart in_;
  v1::HttpResponsePart out_;
  bool have_head_ = false;
  v1::HttpRequestHead head_;
  std::string route_;
  std::string last_body_;
  uint64_t body_bytes_ = 0;
  uint64_t download_left_ = 0;
  uint64_t download_offset_ = 0;
  int writes_ = 0;
  std::mutex mu_;
  bool finished_ = false;
  bool asking_ = false;
  bool cancelled_ = false;
};

// Acknowledges every event batch (the broker keeps the stream open).
class EventsReactor final : public grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck> {
 public:
  explicit EventsReactor(bool authorized) {
    if (!authorized) {
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing secret"));
      return;
    }
    StartRead(&batch_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    ack_.Clear();
    for (const auto& e : batch_.events()) ack_.add_event_ids(e.event_id());
    StartWrite(&ack_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    StartRead(&batch_);
  }
  void OnDone() override { delete this; }

 private:
  v1::EventBatch batch_;
  v1::EventAck ack_;
};

class RoutePluginService final : public v1::Plugin::CallbackService {
 public:
  RoutePluginService(std::string name, std::string secret, const std::string& broker_socket)
      : prefix_("/plugins/" + name + "/"),
        secret_(std::move(secret)),
        host_api_(v1::HostApi::NewStub(
            grpc::CreateChannel("unix:" + broker_socket, grpc::InsecureChannelCredentials()))) {}

  grpc::ServerBidiReactor<v1::EventBatch, v1::EventAck>* Events(
      grpc::CallbackServerContext* context) override {
    return new EventsReactor(Authorized(context));
  }
  grpc::ServerBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart>* HandleHttp(
      grpc::CallbackServerContext* context) override {
    return new HttpReactor(prefix_, Authorized(context), host_api_, secret_);
  }
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context,
                                     const v1::ShutdownRequest*, v1::ShutdownResponse*) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (!Authorized(context)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing secret"));
      return reactor;
    }
    reactor->Finish(grpc::Status::OK);
    RequestStop();
    return reactor;
  }

 private:
  bool Authorized(grpc::CallbackServerContext* context) const {
    auto it = context->client_metadata().find(v1::kSecretMetadataKey);
    return it != context->client_metadata().end() &&
           std::string(it->second.data(), it->second.size()) == secret_;
  }

  const std::string prefix_;
  const std::string secret_;
  const std::shared_ptr<v1::HostApi::Stub> host_api_;
};

void AddRoute(v1::RegisterRequest& request, const std::string& name, const char* method,
              const char* path, bool is_public = true, uint32_t timeout_ms = 0) {
  v1::Route* route = request.add_routes();
  route->set_method(method);
  route->set_path("/plugins/" + name + "/" + path);
  route->set_public_(is_public);
  route->set_timeout_ms(timeout_ms);
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  setvbuf(stderr, nullptr, _IOLBF, 0);
  std::string mode = "normal";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mode=", 0) == 0) mode = a.substr(7);
  }
  const std::string name = Env(v1::kEnvPluginName);
  const std::string secret = Env(v1::kEnvPluginSecret);
  const std::string socket = Env(v1::kEnvPluginSocket);
  const std::string broker = Env(v1::kEnvBrokerSocket);
  if (socket.empty()) {
    std::fprintf(stderr, "route_plugin: not started by the broker\n");
    return 2;
  }
  // SIGTERM/SIGINT: stop like a Shutdown RPC.
  tracim::testing::StopOnSignals();

  RoutePluginService service(name, secret, broker);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "route_plugin: cannot serve on %s\n", socket.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(v1::kPluginServiceName, true);

  if (mode != "no-register") {
    auto registrar = v1::Registrar::NewStub(
        grpc::CreateChannel("unix:" + broker, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata(v1::kSecretMetadataKey, secret);
    v1::RegisterRequest request;
    request.set_name(name);
    request.set_version("0.0.1-test");
    request.set_protocol_version(1);
    AddRoute(request, name, "GET", "ping");
    AddRoute(request, name, "GET", "inline-then-more");
    AddRoute(request, name, "POST", "echo");
    AddRoute(request, name, "PUT", "echo");
    AddRoute(request, name, "GET", "download/{size}");
    AddRoute(request, name, "HEAD", "download/{size}");
    AddRoute(request, name, "GET", "hang", true, 500);
    AddRoute(request, name, "GET", "hang-default");
    AddRoute(request, name, "GET", "head-then-hang", true, 500);
    AddRoute(request, name, "GET", "exit/{when}");
    AddRoute(request, name, "GET", "fail");
    AddRoute(request, name, "GET", "bad-head");
    AddRoute(request, name, "GET", "inspect/{id}");
    AddRoute(request, name, "POST", "inspect/{id}");
    AddRoute(request, name, "GET", "items/new");
    AddRoute(request, name, "DELETE", "items/{id}");
    AddRoute(request, name, "GET", "private/inspect", /*is_public=*/false);
    AddRoute(request, name, "GET", "current-user/{id}");
    v1::RegisterResponse response;
    grpc::Status status = registrar->Register(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "route_plugin %s: Register failed: %d: %s\n", name.c_str(),
                   status.error_code(), status.error_message().c_str());
      return 1;
    }
    std::printf("route_plugin %s registered\n", name.c_str());
  }

  tracim::testing::WaitForStop();
  std::printf("route_plugin %s exiting\n", name.c_str());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  return 0;
}
