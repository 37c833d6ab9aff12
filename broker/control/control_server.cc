#include "broker/control/control_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "broker/common/grpc_status.h"
#include "broker/common/random.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;

constexpr char kBackendTokenMetadataKey[] = "tracim-backend-token";

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

  grpc::ServerUnaryReactor* RestartPlugin(grpc::CallbackServerContext* context,
                                          const v1::PluginActionRequest* request,
                                          v1::PluginStatus* response) override {
    return Act(context, *request, PluginSupervisor::Action::kRestart, response);
  }
  grpc::ServerUnaryReactor* EnablePlugin(grpc::CallbackServerContext* context,
                                         const v1::PluginActionRequest* request,
                                         v1::PluginStatus* response) override {
    return Act(context, *request, PluginSupervisor::Action::kEnable, response);
  }
  grpc::ServerUnaryReactor* DisablePlugin(grpc::CallbackServerContext* context,
                                          const v1::PluginActionRequest* request,
                                          v1::PluginStatus* response) override {
    return Act(context, *request, PluginSupervisor::Action::kDisable, response);
  }

 private:
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* context,
                                const v1::PluginActionRequest& request,
                                PluginSupervisor::Action action, v1::PluginStatus* response) {
    auto* reactor = context->DefaultReactor();
    host_.Act(request.name(), action, [reactor, response](absl::StatusOr<v1::PluginStatus> status) {
      if (status.ok()) *response = std::move(*status);
      reactor->Finish(ToGrpcStatus(status.status()));
    });
    return reactor;
  }

  PluginHost& host_;
};

// Backend: external backends (a tracim instance forwarding its pluggy
// hooks) publish events. Authenticated by broker.backend_token; disabled
// without one.
class BackendService final : public v1::Backend::CallbackService {
 public:
  BackendService(PluginHost& host, std::optional<std::string> token)
      : host_(host), token_(std::move(token)) {}

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const v1::PublishRequest* request,
                                    v1::PublishResponse* response) override {
    auto* reactor = context->DefaultReactor();
    absl::Status refused = DoPublish(context, *request, *response, reactor);
    if (!refused.ok()) reactor->Finish(ToGrpcStatus(refused));
    return reactor;
  }

 private:
  // Validates and publishes; the reactor is finished once every plugin's
  // strand has queued the events (back-pressure on fast publishers). An
  // error is returned, and nothing published, for a refused request.
  absl::Status DoPublish(grpc::CallbackServerContext* context, const v1::PublishRequest& request,
                         v1::PublishResponse& response, grpc::ServerUnaryReactor* reactor) {
    if (!token_) {
      return absl::FailedPreconditionError(
          "the Backend service is disabled: set broker.backend_token");
    }
    std::string token = Metadata(context, kBackendTokenMetadataKey);
    if (token.empty() || !ConstantTimeEquals(token, *token_)) {
      return absl::UnauthenticatedError(absl::StrCat(token.empty() ? "missing " : "wrong ",
                                                     kBackendTokenMetadataKey, " metadata"));
    }
    // Validate everything first: a request is published whole or not at all.
    std::vector<v1::Event> events;
    events.reserve(request.events_size());
    for (int i = 0; i < request.events_size(); ++i) {
      auto event = NormalizePublishedEvent(request.events(i));
      if (!event.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("event ", i, ": ", event.status().message()));
      }
      events.push_back(*std::move(event));
    }
    // One Publish for the whole request: one hop to each plugin's strand.
    // The call finishes when both the ids are in the response and every
    // strand has queued the events, whichever comes last (the second may
    // come first, on a strand, before Publish returns).
    struct Finisher {
      grpc::ServerUnaryReactor* reactor;
      std::atomic<int> left{2};
      absl::Status status;
      void Arrive() {
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1)
          reactor->Finish(ToGrpcStatus(status));
      }
    };
    auto finisher = std::make_shared<Finisher>();
    finisher->reactor = reactor;
    for (uint64_t id : host_.Publish(std::move(events), [finisher](absl::Status s) {
           finisher->status = std::move(s);
           finisher->Arrive();
         })) {
      response.add_event_ids(id);
    }
    finisher->Arrive();
    return absl::OkStatus();
  }

  PluginHost& host_;
  const std::optional<std::string> token_;
};

}  // namespace

absl::StatusOr<v1::Event> NormalizePublishedEvent(v1::Event event) {
  if (event.hook().empty() && event.event_type().empty()) {
    return absl::InvalidArgumentError("hook and event_type are both empty");
  }
  if (event.hook() == v1::kOnPluginsLoaded) {
    return absl::InvalidArgumentError("on_plugins_loaded is sent by the broker, not published");
  }
  if (!event.hook().empty() && !v1::IsKnownHook(event.hook())) {
    return absl::InvalidArgumentError(absl::StrCat("unknown hook '", event.hook(), "'"));
  }
  if (event.event_type().empty()) {
    event.set_event_type(*v1::EventTypeForHook(event.hook()));
  }
  auto hook = v1::HookForEventType(event.event_type());
  if (!hook) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown event_type '", event.event_type(), "'"));
  }
  if (event.hook().empty()) {
    event.set_hook(*hook);
  } else if (*hook != event.hook()) {
    return absl::InvalidArgumentError(absl::StrCat("event_type '", event.event_type(),
                                                   "' does not match hook '", event.hook(),
                                                   "' (expected ", *hook, ")"));
  }
  // The broker numbers events and marks redeliveries itself.
  event.clear_event_id();
  event.clear_redelivered();
  return event;
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    const std::filesystem::path& socket_path, PluginHost& host,
    std::optional<std::string> backend_token, std::vector<grpc::Service*> extra_services) {
  std::unique_ptr<ControlServer> server(new ControlServer());
  ::unlink(socket_path.c_str());
  server->registrar_ = std::make_unique<RegistrarService>(host);
  server->admin_ = std::make_unique<AdminService>(host);
  server->backend_ = std::make_unique<BackendService>(host, std::move(backend_token));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(server->registrar_.get());
  builder.RegisterService(server->admin_.get());
  builder.RegisterService(server->backend_.get());
  for (grpc::Service* service : extra_services) builder.RegisterService(service);
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
