// RunPlugin: the plugin side of the protocol v1 handshake (docs/protocol.md)
// and the serving loop, for every C++ plugin process.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <stdio.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sdk_cpp/src/handshake_env.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/plugin_service.h"
#include "sdk_cpp/src/stop_signal.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "sdk_cpp/src/work_queue.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::plugin {
namespace {

namespace hs = ::tracim::plugin::v1;
using internal::PluginRegistry;

// How long Register may take, connection included.
constexpr absl::Duration kRegisterTimeout = absl::Seconds(10);
// Route handlers running at once.
constexpr int kHttpWorkerThreads = 4;
// Large event batches (contents carry their HTML) must not be refused.
constexpr int kMaxReceiveMessageBytes = 64 * 1024 * 1024;

// Every SDK line goes to stderr, one write per line (stderr is line
// buffered), with a "[LEVEL] " prefix that the broker maps to the level it
// logs the line at (unprefixed stderr counts as a warning there).
void LogAt(const char* level, std::string_view line) {
  fprintf(stderr, "[%s] %.*s\n", level, static_cast<int>(line.size()), line.data());
}
void LogInfo(std::string_view line) { LogAt("INFO", line); }
void LogWarn(std::string_view line) { LogAt("WARN", line); }
void LogError(std::string_view line) { LogAt("ERROR", line); }

// Fills version and description the plugin did not set from ./plugin.json
// (the broker starts plugins in their folder). Silent on any problem: the
// broker validated the manifest already and both fields are optional.
void FillFromManifest(PluginRegistry& registry) {
  if (registry.version() && registry.description()) return;
  std::ifstream file("plugin.json");
  if (!file) return;
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  boost::system::error_code error;
  boost::json::value manifest = boost::json::parse(text, error);
  if (error || !manifest.is_object()) return;
  const boost::json::object& object = manifest.get_object();
  auto field = [&](const char* key) -> std::optional<std::string> {
    const boost::json::value* value = object.if_contains(key);
    if (value == nullptr || !value->is_string()) return std::nullopt;
    return std::string(value->get_string());
  };
  if (!registry.version()) {
    if (auto version = field("version")) registry.SetVersion(*std::move(version));
  }
  if (!registry.description()) {
    if (auto description = field("description")) registry.SetDescription(*std::move(description));
  }
}

// Calls register_fn, turning an escaping exception into an error.
absl::Status CallRegisterFunction(RegisterFunction register_fn, PluginManager& manager) {
  try {
    register_fn(manager);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("register_tracim_plugin threw: ", e.what()));
  } catch (...) {
    return absl::InternalError("register_tracim_plugin threw an unknown exception");
  }
  if (!manager.status().ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("register_tracim_plugin: ", manager.status().message()));
  }
  return absl::OkStatus();
}

// Registrar.Register on the broker's control socket.
absl::StatusOr<hs::RegisterResponse> Register(const internal::HandshakeEnv& env,
                                              const PluginRegistry& registry,
                                              uint32_t protocol_version) {
  hs::RegisterRequest request;
  request.set_name(env.plugin_name);
  request.set_version(registry.version().value_or(""));
  request.set_protocol_version(protocol_version);
  for (const std::string& hook : registry.Hooks()) request.add_hooks(hook);
  for (hs::Route& route : registry.Routes()) *request.add_routes() = std::move(route);
  request.set_description(registry.description().value_or(""));

  const std::string target = absl::StrCat("unix:", env.broker_socket);
  auto stub =
      hs::Registrar::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata(hs::kSecretMetadataKey, env.secret);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kRegisterTimeout));
  // The broker's socket exists before the launch; waiting for readiness
  // only rides out a broker busy starting many plugins.
  context.set_wait_for_ready(true);
  hs::RegisterResponse response;
  grpc::Status status = stub->Register(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("Register on ", target, " failed: ",
                     absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                     ": ", status.error_message()));
  }
  if (response.protocol_version() != protocol_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("Register on ", target, ": the broker answered protocol version ",
                     response.protocol_version(), ", this plugin asked for ", protocol_version));
  }
  return response;
}

// Stops serving within `stop.grace`. The running hook gets half of it, then
// the Events streams are closed (acks flushed; the rest is redelivered to the
// next launch), then calls in flight get until the half (then they are
// cancelled) and running route handlers until three quarters. Returns false
// when a hook or handler is still running then.
bool StopServing(grpc::Server& server, internal::PluginService& service,
                 internal::WorkQueue& event_queue, internal::WorkQueue& http_queue,
                 const internal::StopSignal::Stop& stop) {
  const absl::Time start = absl::Now();
  const absl::Duration grace = absl::FromChrono(stop.grace);
  const bool events_done = event_queue.Stop(start + grace / 2);
  service.CloseEventStreams();
  server.Shutdown(absl::ToChronoTime(start + grace / 2));
  const bool http_done = http_queue.Stop(start + grace * 3 / 4);
  // Streaming handlers were cancelled with the server; one stuck in its own
  // work must not hold the exit past the grace.
  const bool streaming_done = service.StopStreamingHandlers(start + grace * 3 / 4);
  if (!events_done || !http_done || !streaming_done) return false;
  server.Wait();
  return true;
}

}  // namespace

int RunPlugin(RegisterFunction register_fn, int argc, char** argv) {
  // Every printed line must reach the broker's log at once, also through a pipe.
  setvbuf(stdout, nullptr, _IOLBF, 0);
  setvbuf(stderr, nullptr, _IOLBF, 0);
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles (a
  // debug aid) unless told not to: a measurable share of event delivery.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<internal::HandshakeEnv> env = internal::ReadHandshakeEnv(&internal::ProcessEnv);
  if (absl::IsNotFound(env.status())) {
    LogError(internal::kStartedByHandMessage);
    return 2;
  }
  if (!env.ok()) {
    LogError(internal::AsStd(env.status().message()));
    return 1;
  }
  absl::StatusOr<uint32_t> protocol_version =
      internal::ChooseProtocolVersion(env->protocol_versions);
  if (!protocol_version.ok()) {
    LogError(internal::AsStd(protocol_version.status().message()));
    return 1;
  }
  if (register_fn == nullptr) {
    LogError("RunPlugin: no register function");
    return 1;
  }

  PluginManager manager(env->plugin_name);
  if (absl::Status status = CallRegisterFunction(register_fn, manager); !status.ok()) {
    LogError(internal::AsStd(status.message()));
    return 1;
  }
  PluginRegistry& registry = internal::PluginManagerAccess::Registry(manager);
  FillFromManifest(registry);

  absl::StatusOr<std::unique_ptr<internal::StopSignal>> stop_signal =
      internal::StopSignal::Create();
  if (!stop_signal.ok()) {
    LogError(absl::StrCat("cannot install signal handlers: ", stop_signal.status().message()));
    return 1;
  }
  internal::StopSignal& stop = **stop_signal;

  // Work posted before registration completes waits in the queues until the
  // settings are in place (Start below).
  internal::WorkQueue event_queue(1);
  internal::WorkQueue http_queue(kHttpWorkerThreads);
  internal::PluginService service(
      registry, env->secret, event_queue, http_queue,
      [&stop](std::string reason, std::chrono::milliseconds grace) {
        stop.Request(std::move(reason), grace);
      },
      &LogError);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat("unix:", env->plugin_socket);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    LogError(absl::StrCat("cannot serve on ", address));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(hs::kPluginServiceName, true);

  absl::StatusOr<hs::RegisterResponse> registered = Register(*env, registry, *protocol_version);
  if (!registered.ok()) {
    LogError(internal::AsStd(registered.status().message()));
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    return 1;
  }
  registry.SetRegistration(std::map<std::string, std::string>(registered->settings().begin(),
                                                              registered->settings().end()),
                           registered->broker_version());
  LogInfo(absl::StrCat(
      "registered with the broker", registered->broker_version().empty() ? "" : " ",
      registered->broker_version(), " (protocol ", *protocol_version, ", launch ",
      env->launch.empty() ? "?" : env->launch, "): hooks [", absl::StrJoin(registry.Hooks(), ", "),
      "], ", registry.Routes().size(), " route(s)"));
  event_queue.Start();
  http_queue.Start();

  const internal::StopSignal::Stop stop_request = stop.Wait();
  LogInfo(absl::StrCat("stopping (", stop_request.reason, ", grace ", stop_request.grace.count(),
                       " ms)"));
  if (!StopServing(*server, service, event_queue, http_queue, stop_request)) {
    LogWarn("a handler was still running when the grace period ended; exiting without it");
    fflush(stdout);
    fflush(stderr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace tracim::plugin

extern "C" int tracim_plugin_run(tracim::plugin::RegisterFunction register_fn, int argc,
                                 char** argv) {
  return tracim::plugin::RunPlugin(register_fn, argc, argv);
}
