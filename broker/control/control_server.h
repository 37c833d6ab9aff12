// The broker's gRPC server on its control socket (<runtime_dir>/broker.sock):
// Registrar (plugins' handshake), Admin (operators), Backend (external
// backends publishing events), grpc.health.v1 Check, and the services handed to
// Start (HostApi, broker/hostapi/).
//
// Threading: the services run on the server's completion-queue thread
// (queue()) and never block; they hand work to the PluginHost, which is
// thread-safe. Create/Start/Shutdown from one thread.
#ifndef TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
#define TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/any_io_executor.hpp"
#include "broker/common/completion_queue_thread.h"
#include "broker/common/queue_rpc.h"
#include "broker/supervisor/plugin_host.h"
#include "tracim/plugin/v1/events.pb.h"

namespace grpc {
class Server;
class ServerBuilder;
}  // namespace grpc

namespace tracim::broker {

// Checks an event an external backend publishes: a known hook and/or event
// type, consistent with each other (the missing one is filled in); never
// on_plugins_loaded. Clears event_id and redelivered. INVALID_ARGUMENT
// naming the problem.
absl::StatusOr<tracim::plugin::v1::Event> NormalizePublishedEvent(tracim::plugin::v1::Event event);

class ControlServer {
 public:
  // The server's completion queue and its thread (queue()), which every
  // gRPC call of the broker may share, polling `idle_poll` after each
  // completion before it sleeps (completion_queue_thread.h); nothing
  // listens yet.
  static std::unique_ptr<ControlServer> Create(const std::filesystem::path& socket_path,
                                               std::chrono::microseconds idle_poll = {});
  // Create, then Start.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(
      const std::filesystem::path& socket_path, PluginHost& host,
      std::optional<std::string> backend_token = std::nullopt,
      std::vector<QueueService*> extra_services = {},
      boost::asio::any_io_executor publish_executor = {});
  ~ControlServer();

  // Listens on the socket (replacing a stale socket file) and serves. Once.
  // UNAVAILABLE naming the path if it cannot listen.
  // Without a backend token the Backend service answers FAILED_PRECONDITION.
  // `extra_services` (e.g. HostApi) are served too; each must outlive the
  // server (Shutdown, or the destructor).
  // Backend.Publish checks a call, stamps its events and hands them to the
  // plugins on `publish_executor` (the blocking pool: that is most of the
  // work of a call, and the queue's thread has the streams to the plugins to
  // run), or on the queue's thread when it is unset; the executor must run
  // its work until it is drained after Shutdown (see the destructor).
  absl::Status Start(PluginHost& host, std::optional<std::string> backend_token = std::nullopt,
                     std::vector<QueueService*> extra_services = {},
                     boost::asio::any_io_executor publish_executor = {});

  // The queue the services run on; also for calls the broker makes (to
  // plugins), which must all be over before the destructor.
  CompletionQueueThread& queue() { return *queue_; }

  // Stops accepting calls, gives the running ones a second, then cancels
  // them. Idempotent. The queue keeps running: calls that handlers answer
  // later (from the blocking pool) are still answered. So: Shutdown, then
  // drain what may answer (join the pool), then destroy this object, which
  // shuts the queue down — an answer after that would abort the process.
  void Shutdown();

 private:
  ControlServer(std::filesystem::path socket_path, std::chrono::microseconds idle_poll);

  const std::filesystem::path socket_path_;
  std::unique_ptr<grpc::ServerBuilder> builder_;
  std::unique_ptr<CompletionQueueThread> queue_;
  std::vector<std::unique_ptr<QueueService>> services_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_CONTROL_CONTROL_SERVER_H_
