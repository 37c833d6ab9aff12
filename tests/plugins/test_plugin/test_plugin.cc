// A plugin for the integration tests that can misbehave on purpose: the mode
// (--mode=NAME) picks one failure of the handshake or of the stop sequence.
// Written against raw gRPC, not sdk_cpp, so that it can break the protocol.
//
// Modes: normal, exit-before-register, never-register, bad-secret, no-secret,
// bad-version, unknown-hook, route-outside, route-duplicate, unreachable,
// ignore-shutdown, fork-child, no-ack, cancel-shutdown (takes Shutdown,
// stops, but answers the call CANCELLED, as a plugin that shuts its server
// down hard right away would).
// Faults of a ready plugin (supervision), triggered when on_plugins_loaded
// arrives: exit0-when-loaded, exit1-when-loaded, segfault-when-loaded,
// abort-when-loaded, close-socket-when-loaded (stops serving, keeps running),
// flood-when-loaded (prints lines without pause); and hang-health (answers
// the connect-back health check, then never again), hang-event (never
// returns from on_user_created), slow-start (waits TEST_START_DELAY_MS
// before serving).
// Containment and limits (containment_test.cc, runner_test.cc):
// segfault-before-register, abort-before-register, burn-cpu (spins until
// the CPU limit), alloc-until-limit (touches 8 MiB chunks until operator new
// fails at the address-space limit), alloc-after-register (the same once
// registered, with gRPC's threads running), fork-grandchildren (three
// descendants ignoring SIGTERM: one in the plugin's group, one in a group of
// its own, a grandchild in a session of its own; prints their pids).
// With TEST_FAULTY_LAUNCHES=N in the environment, launches after the N-th
// run in mode normal (TRACIM_PLUGIN_LAUNCH counts launches from 1).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "grpc_health/v1/health.grpc.pb.h"
#include "tests/plugins/common/plugin_process.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = tracim::plugin::v1;

using tracim::testing::Env;
using tracim::testing::RequestStop;
using tracim::testing::WaitForStop;

// What to do once on_plugins_loaded arrived (the plugin is ready).
std::string when_loaded;
grpc::Server* server_to_close = nullptr;

void OnLoaded(const std::string& name) {
  if (when_loaded.empty()) return;
  std::printf("test_plugin %s fault: %s\n", name.c_str(), when_loaded.c_str());
  std::fflush(stdout);
  if (when_loaded == "exit0") std::_Exit(0);
  if (when_loaded == "exit1") std::_Exit(1);
  if (when_loaded == "segfault") raise(SIGSEGV);
  if (when_loaded == "abort") std::abort();
  if (when_loaded == "close-socket") {
    // Stop serving from another thread (Shutdown waits for this handler),
    // and keep the process running.
    std::thread([] { server_to_close->Shutdown(std::chrono::system_clock::now()); }).detach();
  }
  if (when_loaded == "flood") {
    std::thread([name] {
      for (unsigned long long i = 0;; ++i)
        std::printf("test_plugin %s flood line %llu\n", name.c_str(), i);
    }).detach();
  }
}

// grpc.health.v1 by hand, so that it can hang: with `hang_after_first`, the
// first Check (the broker's connect-back) is answered and every later one
// blocks until the process exits.
class HealthService final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthService(bool hang_after_first) : hang_after_first_(hang_after_first) {}
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse* response) override {
    if (hang_after_first_ && checks_++ > 0) WaitForStop();
    response->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

 private:
  bool hang_after_first_;
  std::atomic<int> checks_{0};
};

class PluginService final : public v1::Plugin::Service {
 public:
  PluginService(std::string name, std::string secret, bool ignore_shutdown, bool no_ack,
                bool hang_event = false, bool cancel_shutdown = false)
      : name_(std::move(name)),
        secret_(std::move(secret)),
        ignore_shutdown_(ignore_shutdown),
        no_ack_(no_ack),
        hang_event_(hang_event),
        cancel_shutdown_(cancel_shutdown) {}

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
        if (e.has_plugins_loaded()) OnLoaded(name_);
        if (hang_event_ && e.hook() == "on_user_created") {
          std::printf("test_plugin %s hangs in on_user_created\n", name_.c_str());
          WaitForStop();
          return grpc::Status::OK;
        }
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
    if (cancel_shutdown_) return grpc::Status(grpc::StatusCode::CANCELLED, "server shutting down");
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
  bool hang_event_;
  bool cancel_shutdown_;
};

// alloc-until-limit: 8 MiB at a time, every page touched, until operator new
// throws at RLIMIT_AS; the std::bad_alloc is not caught (std::terminate,
// then abort), as in any C++ program that runs out of memory.
[[noreturn]] void AllocateUntilLimit(const std::string& name) {
  constexpr size_t kChunk = 8 << 20;
  static std::vector<char*> kept;
  kept.reserve(4096);  // no reallocation in the loop
  std::printf("test_plugin %s allocating\n", name.c_str());
  for (;;) {
    char* chunk = new char[kChunk];
    std::memset(chunk, 1, kChunk);
    kept.push_back(chunk);
  }
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  setvbuf(stderr, nullptr, _IOLBF, 0);
  // A segfault (raised here, or sent by a test) must end the process by the
  // signal in every build: AddressSanitizer would otherwise catch it and
  // exit 1. Real crashes of this test plugin are not what sanitizer runs
  // look for.
  signal(SIGSEGV, SIG_DFL);
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
  const std::string faulty = Env("TEST_FAULTY_LAUNCHES");
  if (!faulty.empty() &&
      std::atoll(Env(v1::kEnvPluginLaunch).c_str()) > std::atoll(faulty.c_str())) {
    mode = "normal";
  }
  std::printf("test_plugin %s starting in mode %s (launch %s)\n", name.c_str(), mode.c_str(),
              Env(v1::kEnvPluginLaunch).c_str());
  if (const size_t at = mode.rfind("-when-loaded"); at != std::string::npos) {
    when_loaded = mode.substr(0, at);
  }
  if (mode == "slow-start") {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::atoll(Env("TEST_START_DELAY_MS").c_str())));
  }
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
  if (mode == "segfault-before-register") raise(SIGSEGV);
  if (mode == "abort-before-register") std::abort();
  if (mode == "burn-cpu") {
    std::printf("test_plugin %s burning CPU\n", name.c_str());
    volatile unsigned long spin = 0;
    for (;;) spin = spin + 1;
  }
  if (mode == "alloc-until-limit") AllocateUntilLimit(name);

  const bool ignore_shutdown = mode == "ignore-shutdown" || mode == "fork-child";
  if (ignore_shutdown) {
    signal(SIGTERM, SIG_IGN);
  } else {
    // SIGTERM/SIGINT: stop like a Shutdown RPC.
    tracim::testing::StopOnSignals(
        [](int sig) { std::printf("test_plugin got signal %d\n", sig); });
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
  if (mode == "fork-grandchildren") {
    // SIGTERM is blocked here already (see above): pending in the
    // descendants, which only SIGKILL ends.
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) return 1;
    pid_t in_group = fork();
    if (in_group == 0) {
      signal(SIGTERM, SIG_IGN);
      pid_t own_session = fork();
      if (own_session == 0) {
        setsid();
        for (;;) pause();
      }
      (void)!write(pipe_fds[1], &own_session, sizeof(own_session));
      for (;;) pause();
    }
    pid_t own_group = fork();
    if (own_group == 0) {
      signal(SIGTERM, SIG_IGN);
      setpgid(0, 0);
      for (;;) pause();
    }
    pid_t own_session = 0;
    (void)!read(pipe_fds[0], &own_session, sizeof(own_session));
    std::printf("test_plugin %s pid %d descendants: %d %d %d\n", name.c_str(), getpid(), in_group,
                own_group, own_session);
  }

  PluginService service(name, secret, ignore_shutdown, mode == "no-ack", mode == "hang-event",
                        mode == "cancel-shutdown");
  HealthService health(mode == "hang-health");
  std::unique_ptr<grpc::Server> server;
  if (mode != "unreachable") {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    builder.RegisterService(&health);
    server = builder.BuildAndStart();
    if (!server) {
      std::fprintf(stderr, "test_plugin: cannot serve on %s\n", socket.c_str());
      return 1;
    }
    server_to_close = server.get();
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
  if (mode == "alloc-after-register") AllocateUntilLimit(name);

  WaitForStop();
  std::printf("test_plugin %s exiting\n", name.c_str());
  // Cancels the broker's open Events stream at once.
  if (server) server->Shutdown(std::chrono::system_clock::now());
  return 0;
}
