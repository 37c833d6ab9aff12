// The broker's gRPC server on its control socket (<runtime_dir>/broker.sock):
// Registrar (plugins' handshake), Admin (operators), grpc.health.v1. Later
// issues add HostApi and Backend here.
//
// Threading: services run on gRPC's callback threads and never block; they
// hand work to the PluginHost, which is thread-safe. Start/Shutdown from one
// thread.
#ifndef TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
#define TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "broker/supervisor/plugin_host.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tracim::broker {

class ControlServer {
 public:
  // Listens on `socket_path` (replacing a stale socket file). UNAVAILABLE
  // naming the path if it cannot listen.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      const std::filesystem::path& socket_path, PluginHost& host);
  ~ControlServer();

  // Stops accepting calls and waits (bounded) for the running ones.
  void Shutdown();

 private:
  ControlServer() = default;
  std::unique_ptr<grpc::Service> registrar_;
  std::unique_ptr<grpc::Service> admin_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
