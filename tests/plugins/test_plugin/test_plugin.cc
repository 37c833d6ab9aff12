// A plugin for the integration tests that can misbehave on purpose: the mode
// (--mode=NAME) picks one failure of the handshake or of the stop sequence.
// Written against raw gRPC, not sdk_cpp, so that it can break the protocol.
//
// Modes: normal, exit-before-register, never-register, bad-secret, no-secret,
// bad-version, unknown-hook, route-outside, route-duplicate, unreachable,
// ignore-shutdown, fork-child, no-ack.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = tracim::plugin::v1;

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v == nullptr ? "" : v;
}

std::mutex mu;
std::condition_variable cv;
bool stop_requested = false;

void RequestStop() {
  std::lock_guard<std::mutex> lock(mu);
  stop_requested = true;
  cv.notify_all();
}

class PluginService final : public v1::Plugin::Service {
 public:
  PluginService(std::string name, std::string secret, bool ignore_shutdown, bool no_ack)
      : name_(std::move(name)),
        secret_(std::move(secret)),
        ignore_shutdown_(ignore_shutdown),
        no_ack_(no_ack) {}

  grpc::Status Events(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<v1::EventAck, v1::EventBatch>* stream) override {
    if (!Authorized(context)) return Unauthenticated();
    v1::EventBatch batch;
    while (stream->Read(&batch)) {
      v1::EventAck ack;
      for (const auto& e : batch.events()) {
        std::string extra;
        if (e.has_plugins_loaded()) {
          extra = " ready=";
          for (const auto& r : e.plugins_loaded().ready()) extra += r + ",";
          extra += " failed=";
          for (const auto& f : e.plugins_loaded().failed()) extra += f + ",";
        }
        std::printf("test_plugin %s got %s %llu%s%s\n", name_.c_str(), e.hook().c_str(),
                    static_cast<unsigned long long>(e.event_id()),
                    e.redelivered() ? " redelivered" : "", extra.c_str());
        ack.add_event_ids(e.event_id());
      }
      if (!no_ack_) stream->Write(ack);
    }
    return grpc::Status::OK;
  }

  grpc::Status Shutdown(grpc::ServerContext* context, const v1::ShutdownRequest* request,
                        v1::ShutdownResponse*) override {
    if (!Authorized(context)) return Unauthenticated();
    std::printf("test_plugin %s shutdown requested: %s (grace %u ms)%s\n", name_.c_str(),
                request->reason().c_str(), request->grace_ms(),
                ignore_shutdown_ ? ", ignored" : "");
    if (!ignore_shutdown_) RequestStop();
    return grpc::Status::OK;
  }

 private:
  bool Authorized(grpc::ServerContext* context) const {
    auto it = context->client_metadata().find(v1::kSecretMetadataKey);
    return it != context->client_metadata().end() &&
           std::string(it->second.data(), it->second.size()) == secret_;
  }
  static grpc::Status Unauthenticated() {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing secret");
  }

  std::string name_;
  std::string secret_;
  bool ignore_shutdown_;
  // Handles events but never acknowledges them.
  bool no_ack_;
};

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
    std::fprintf(stderr, "test_plugin: not started by the broker\n");
    return 2;
  }
  std::printf("test_plugin %s starting in mode %s\n", name.c_str(), mode.c_str());
  std::vector<std::string> env_names;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var = *e;
    env_names.push_back(var.substr(0, var.find('=')));
  }
  std::sort(env_names.begin(), env_names.end());
  std::string env_line;
  for (const auto& n : env_names) env_line += n + ",";
  std::printf("test_plugin %s env: %s\n", name.c_str(), env_line.c_str());
  char cwd[4096];
  std::printf("test_plugin %s cwd: %s\n", name.c_str(), getcwd(cwd, sizeof(cwd)));

  if (mode == "exit-before-register") return 3;

  const bool ignore_shutdown = mode == "ignore-shutdown" || mode == "fork-child";
  if (ignore_shutdown) {
    signal(SIGTERM, SIG_IGN);
  } else {
    // SIGTERM/SIGINT: stop like a Shutdown RPC. Blocked here, waited for by a
    // thread, so that no handler runs inside gRPC.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      int sig;
      sigwait(&set, &sig);
      std::printf("test_plugin got signal %d\n", sig);
      RequestStop();
    }).detach();
  }
  if (mode == "fork-child") {
    pid_t child = fork();
    if (child == 0) {
      // The grandchild: stays in the plugin's process group and ignores
      // SIGTERM, so only a group SIGKILL ends it.
      signal(SIGTERM, SIG_IGN);
      for (;;) pause();
    }
    std::printf("test_plugin %s child pid %d\n", name.c_str(), child);
  }

  PluginService service(name, secret, ignore_shutdown, mode == "no-ack");
  std::unique_ptr<grpc::Server> server;
  if (mode != "unreachable") {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    if (!server) {
      std::fprintf(stderr, "test_plugin: cannot serve on %s\n", socket.c_str());
      return 1;
    }
    server->GetHealthCheckService()->SetServingStatus(v1::kPluginServiceName, true);
  }

  if (mode != "never-register") {
    auto channel = grpc::CreateChannel("unix:" + broker, grpc::InsecureChannelCredentials());
    auto registrar = v1::Registrar::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (mode == "bad-secret") {
      context.AddMetadata(v1::kSecretMetadataKey, std::string(64, '0'));
    } else if (mode != "no-secret") {
      context.AddMetadata(v1::kSecretMetadataKey, secret);
    }
    v1::RegisterRequest request;
    request.set_name(name);
    request.set_version("0.0.1-test");
    request.set_protocol_version(mode == "bad-version" ? 99 : 1);
    request.add_hooks("on_plugins_loaded");
    request.add_hooks(mode == "unknown-hook" ? "on_user_create" : "on_user_created");
    auto* route = request.add_routes();
    route->set_method("GET");
    route->set_path(mode == "route-outside" ? "/plugins/other/x" : "/plugins/" + name + "/ping");
    if (mode == "route-duplicate") {
      auto* a = request.add_routes();
      a->set_method("GET");
      a->set_path("/plugins/" + name + "/items/{a}");
      auto* b = request.add_routes();
      b->set_method("GET");
      b->set_path("/plugins/" + name + "/items/{b}");
    }
    v1::RegisterResponse response;
    grpc::Status status = registrar->Register(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "test_plugin %s: Register failed: %d: %s\n", name.c_str(),
                   status.error_code(), status.error_message().c_str());
      return 1;
    }
    std::string settings;
    std::map<std::string, std::string> sorted(response.settings().begin(),
                                              response.settings().end());
    for (const auto& [k, v] : sorted) settings += k + "=" + v + ",";
    std::printf("test_plugin %s registered: protocol %u, settings: %s\n", name.c_str(),
                response.protocol_version(), settings.c_str());
  }

  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [] { return stop_requested; });
  }
  std::printf("test_plugin %s exiting\n", name.c_str());
  // Cancels the broker's open Events stream at once.
  if (server) server->Shutdown(std::chrono::system_clock::now());
  return 0;
}
