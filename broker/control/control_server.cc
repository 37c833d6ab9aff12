#include "broker/control/control_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "broker/common/grpc_status.h"
#include "broker/common/random.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;
namespace health = grpc::health::v1;

constexpr char kBackendTokenMetadataKey[] = "tracim-backend-token";

std::string Metadata(const grpc::ServerContext& context, const char* key) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// Registrar: hands each Register to the supervisor of the named plugin.
class RegistrarService final : public QueueService {
 public:
  explicit RegistrarService(PluginHost& host) : host_(host) {}
  grpc::Service* service() override { return &service_; }
  std::string name() const override { return v1::Registrar::service_full_name(); }

  void Serve(CompletionQueueThread& queue) override {
    ServeUnary(queue, service_, &v1::Registrar::AsyncService::RequestRegister,
               [this](grpc::ServerContext& context, const v1::RegisterRequest& request,
                      v1::RegisterResponse& response,
                      UnaryDone done) { Register(context, request, response, done); });
  }

 private:
  void Register(const grpc::ServerContext& context, const v1::RegisterRequest& request,
                v1::RegisterResponse& response, UnaryDone done) {
    PluginSupervisor* plugin = host_.Find(request.name());
    if (plugin == nullptr) {
      done(grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          absl::StrCat("no plugin named '", request.name(), "' was launched by this broker")));
      return;
    }
    plugin->HandleRegister(Metadata(context, v1::kSecretMetadataKey), request,
                           [&response, done](absl::StatusOr<v1::RegisterResponse> result) {
                             if (result.ok()) response = std::move(*result);
                             done(ToGrpcStatus(result.status()));
                           });
  }

  PluginHost& host_;
  v1::Registrar::AsyncService service_;
};

// Admin: the operators' view. The socket is only reachable by the broker's
// user (0700 runtime dir).
class AdminService final : public QueueService {
 public:
  explicit AdminService(PluginHost& host) : host_(host) {}
  grpc::Service* service() override { return &service_; }
  std::string name() const override { return v1::Admin::service_full_name(); }

  void Serve(CompletionQueueThread& queue) override {
    ServeUnary(queue, service_, &v1::Admin::AsyncService::RequestListPlugins,
               [this](grpc::ServerContext&, const v1::ListPluginsRequest&,
                      v1::ListPluginsResponse& response, UnaryDone done) {
                 for (const auto& p : host_.plugins()) *response.add_plugins() = p->Status();
                 done(grpc::Status::OK);
               });
    ServeAction(queue, &v1::Admin::AsyncService::RequestRestartPlugin,
                PluginSupervisor::Action::kRestart);
    ServeAction(queue, &v1::Admin::AsyncService::RequestEnablePlugin,
                PluginSupervisor::Action::kEnable);
    ServeAction(queue, &v1::Admin::AsyncService::RequestDisablePlugin,
                PluginSupervisor::Action::kDisable);
  }

 private:
  template <typename RequestMethod>
  void ServeAction(CompletionQueueThread& queue, RequestMethod request_method,
                   PluginSupervisor::Action action) {
    ServeUnary(queue, service_, request_method,
               [this, action](grpc::ServerContext&, const v1::PluginActionRequest& request,
                              v1::PluginStatus& response, UnaryDone done) {
                 host_.Act(request.name(), action,
                           [&response, done](absl::StatusOr<v1::PluginStatus> status) {
                             if (status.ok()) response = std::move(*status);
                             done(ToGrpcStatus(status.status()));
                           });
               });
  }

  PluginHost& host_;
  v1::Admin::AsyncService service_;
};

// Backend: external backends (a tracim instance forwarding its pluggy
// hooks) publish events. Authenticated by broker.backend_token; disabled
// without one.
class BackendService final : public QueueService {
 public:
  BackendService(PluginHost& host, std::optional<std::string> token,
                 boost::asio::any_io_executor executor)
      : host_(host), token_(std::move(token)), executor_(std::move(executor)) {}
  grpc::Service* service() override { return &service_; }
  std::string name() const override { return v1::Backend::service_full_name(); }

  void Serve(CompletionQueueThread& queue) override {
    ServeUnary(queue, service_, &v1::Backend::AsyncService::RequestPublish,
               [this](grpc::ServerContext& context, const v1::PublishRequest& request,
                      v1::PublishResponse& response, UnaryDone done) {
                 auto publish = [this, &context, &request, &response, done] {
                   absl::Status refused = Publish(context, request, response, done);
                   if (!refused.ok()) done(ToGrpcStatus(refused));
                 };
                 // The request and response live until the call is answered.
                 if (executor_) {
                   boost::asio::post(executor_, std::move(publish));
                 } else {
                   publish();
                 }
               });
  }

 private:
  // Validates and publishes; the call is answered once every plugin's
  // strand has queued the events (back-pressure on fast publishers). An
  // error is returned, and nothing published, for a refused request.
  absl::Status Publish(const grpc::ServerContext& context, const v1::PublishRequest& request,
                       v1::PublishResponse& response, UnaryDone done) {
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
    // The call is answered when both the ids are in the response and every
    // strand has queued the events, whichever comes last (the second may
    // come first, on a strand, before Publish returns).
    struct Finisher {
      explicit Finisher(UnaryDone done) : done(done) {}
      UnaryDone done;
      std::atomic<int> left{2};
      absl::Status status;
      void Arrive() {
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done(ToGrpcStatus(status));
      }
    };
    auto finisher = std::make_shared<Finisher>(done);
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
  // Where calls are checked and their events stamped and queued; unset: on
  // the queue's thread.
  const boost::asio::any_io_executor executor_;
  v1::Backend::AsyncService service_;
};

// grpc.health.v1: Check answers SERVING for the server ("") and for each
// service it serves, NOT_FOUND for any other name. Watch is answered
// UNIMPLEMENTED (a stream per watcher is not worth its upkeep here).
class HealthService final : public QueueService {
 public:
  explicit HealthService(std::vector<std::string> served) : served_(std::move(served)) {}
  grpc::Service* service() override { return &service_; }
  std::string name() const override { return health::Health::service_full_name(); }

  void Serve(CompletionQueueThread& queue) override {
    ServeUnary(queue, service_, &health::Health::AsyncService::RequestCheck,
               [this](grpc::ServerContext&, const health::HealthCheckRequest& request,
                      health::HealthCheckResponse& response, UnaryDone done) {
                 if (!request.service().empty() && std::find(served_.begin(), served_.end(),
                                                             request.service()) == served_.end()) {
                   done(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                     absl::StrCat("unknown service '", request.service(), "'")));
                   return;
                 }
                 response.set_status(health::HealthCheckResponse::SERVING);
                 done(grpc::Status::OK);
               });
    (new RefusedWatch(queue, service_))->Request();
  }

 private:
  // One Watch call, refused; the next is requested when one arrives.
  class RefusedWatch final : public CompletionQueueThread::Completion {
   public:
    RefusedWatch(CompletionQueueThread& queue, health::Health::AsyncService& service)
        : queue_(queue), service_(service), writer_(&context_) {}
    void Request() {
      service_.RequestWatch(&context_, &request_, &writer_, queue_.cq(), queue_.server_cq(),
                            CompletionQueueThread::Tag(this));
    }
    void OnComplete(bool ok) override {
      if (!ok || std::exchange(refused_, true)) {
        delete this;
        return;
      }
      (new RefusedWatch(queue_, service_))->Request();
      writer_.Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                  "the broker serves grpc.health.v1 Check, not Watch"),
                     CompletionQueueThread::Tag(this));
    }

   private:
    CompletionQueueThread& queue_;
    health::Health::AsyncService& service_;
    grpc::ServerContext context_;
    health::HealthCheckRequest request_;
    grpc::ServerAsyncWriter<health::HealthCheckResponse> writer_;
    bool refused_ = false;
  };

  const std::vector<std::string> served_;
  health::Health::AsyncService service_;
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

ControlServer::ControlServer(std::filesystem::path socket_path, std::chrono::microseconds idle_poll)
    : socket_path_(std::move(socket_path)), builder_(std::make_unique<grpc::ServerBuilder>()) {
  queue_ = CompletionQueueThread::ForServer("broker-grpc", *builder_, idle_poll);
}

std::unique_ptr<ControlServer> ControlServer::Create(const std::filesystem::path& socket_path,
                                                     std::chrono::microseconds idle_poll) {
  return std::unique_ptr<ControlServer>(new ControlServer(socket_path, idle_poll));
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(
    const std::filesystem::path& socket_path, PluginHost& host,
    std::optional<std::string> backend_token, std::vector<QueueService*> extra_services,
    boost::asio::any_io_executor publish_executor) {
  std::unique_ptr<ControlServer> server = Create(socket_path);
  if (absl::Status s = server->Start(host, std::move(backend_token), std::move(extra_services),
                                     std::move(publish_executor));
      !s.ok()) {
    return s;
  }
  return server;
}

absl::Status ControlServer::Start(PluginHost& host, std::optional<std::string> backend_token,
                                  std::vector<QueueService*> extra_services,
                                  boost::asio::any_io_executor publish_executor) {
  if (builder_ == nullptr) return absl::FailedPreconditionError("the control server was started");
  ::unlink(socket_path_.c_str());
  services_.push_back(std::make_unique<RegistrarService>(host));
  services_.push_back(std::make_unique<AdminService>(host));
  services_.push_back(std::make_unique<BackendService>(host, std::move(backend_token),
                                                       std::move(publish_executor)));
  std::vector<QueueService*> served;
  for (auto& service : services_) served.push_back(service.get());
  served.insert(served.end(), extra_services.begin(), extra_services.end());
  std::vector<std::string> names;
  for (QueueService* service : served) names.push_back(service->name());
  services_.push_back(std::make_unique<HealthService>(names));
  served.push_back(services_.back().get());

  builder_->AddListeningPort("unix:" + socket_path_.string(), grpc::InsecureServerCredentials());
  for (QueueService* service : served) builder_->RegisterService(service->service());
  server_ = builder_->BuildAndStart();
  builder_.reset();
  if (server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on the control socket '", socket_path_.string(), "'"));
  }
  ::chmod(socket_path_.c_str(), 0600);
  for (QueueService* service : served) service->Serve(*queue_);
  return absl::OkStatus();
}

ControlServer::~ControlServer() {
  Shutdown();
  // Calls still requested come back (not ok) as the queue drains.
  queue_->Shutdown();
}

void ControlServer::Shutdown() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
}

}  // namespace tracim::broker
