// The broker's gRPC server on its control socket (<runtime_dir>/broker.sock):
// Registrar (plugins' handshake), Admin (operators), Backend (external
// backends publishing events), grpc.health.v1, and the services handed to
// Start (HostApi, broker/hostapi/).
//
// Threading: services run on gRPC's callback threads and never block; they
// hand work to the PluginHost, which is thread-safe. Start/Shutdown from one
// thread.
#ifndef TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
#define TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/supervisor/plugin_host.h"
#include "tracim/plugin/v1/events.pb.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tracim::broker {

// Checks an event an external backend publishes: a known hook and/or event
// type, consistent with each other (the missing one is filled in); never
// on_plugins_loaded. Clears event_id and redelivered. INVALID_ARGUMENT
// naming the problem.
absl::StatusOr<tracim::plugin::v1::Event> NormalizePublishedEvent(tracim::plugin::v1::Event event);

class ControlServer {
 public:
  // Listens on `socket_path` (replacing a stale socket file). UNAVAILABLE
  // naming the path if it cannot listen.
  // Without a backend token the Backend service answers FAILED_PRECONDITION.
  // `extra_services` (e.g. HostApi) are served too; each must outlive the
  // server (Shutdown, or the destructor).
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      const std::filesystem::path& socket_path, PluginHost& host,
      std::optional<std::string> backend_token = std::nullopt,
      std::vector<grpc::Service*> extra_services = {});
  ~ControlServer();

  // Stops accepting calls and waits (bounded) for the running ones.
  void Shutdown();

 private:
  ControlServer() = default;
  std::unique_ptr<grpc::Service> registrar_;
  std::unique_ptr<grpc::Service> admin_;
  std::unique_ptr<grpc::Service> backend_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
