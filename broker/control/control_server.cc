#include "broker/control/control_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "broker/common/grpc_status.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;

std::string Metadata(grpc::CallbackServerContext* context, const char* key) {
  const auto& md = context->client_metadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// Registrar: hands each Register to the supervisor of the named plugin.
class RegistrarService final : public v1::Registrar::CallbackService {
 public:
  explicit RegistrarService(PluginHost& host) : host_(host) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    PluginSupervisor* plugin = host_.Find(request->name());
    if (plugin == nullptr) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          absl::StrCat("no plugin named '", request->name(), "' was launched by this broker")));
      return reactor;
    }
    plugin->HandleRegister(Metadata(context, v1::kSecretMetadataKey), *request,
                           [reactor, response](absl::StatusOr<v1::RegisterResponse> result) {
                             if (result.ok()) *response = std::move(*result);
                             reactor->Finish(ToGrpcStatus(result.status()));
                           });
    return reactor;
  }

 private:
  PluginHost& host_;
};

// Admin: the operators' view. The socket is only reachable by the broker's
// user (0700 runtime dir).
class AdminService final : public v1::Admin::CallbackService {
 public:
  explicit AdminService(PluginHost& host) : host_(host) {}

  grpc::ServerUnaryReactor* ListPlugins(grpc::CallbackServerContext* context,
                                        const v1::ListPluginsRequest*,
                                        v1::ListPluginsResponse* response) override {
    for (const auto& p : host_.plugins()) *response->add_plugins() = p->Status();
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  PluginHost& host_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    const std::filesystem::path& socket_path, PluginHost& host) {
  std::unique_ptr<ControlServer> server(new ControlServer());
  ::unlink(socket_path.c_str());
  server->registrar_ = std::make_unique<RegistrarService>(host);
  server->admin_ = std::make_unique<AdminService>(host);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(server->registrar_.get());
  builder.RegisterService(server->admin_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on the control socket '", socket_path.string(), "'"));
  }
  ::chmod(socket_path.c_str(), 0600);
  return server;
}

ControlServer::~ControlServer() { Shutdown(); }

void ControlServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace tracim::broker
