// ControlServer's lifecycle on its completion queue: a call that a handler
// answers after Shutdown (as the blocking pool does while the broker stops)
// is answered on the queue, which only shuts down with the object.
#include "broker/control/control_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/notification.h"
#include "boost/asio/io_context.hpp"
#include "broker/common/queue_rpc.h"
#include "broker/process/posix_process_launcher.h"
#include "broker/supervisor/plugin_host.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::broker {
namespace {

namespace v1 = tracim::plugin::v1;

// Serves Plugin.Shutdown (a unary method that is handy here) by keeping
// each call's UnaryDone for the test to answer.
class HeldService final : public QueueService {
 public:
  grpc::Service* service() override { return &service_; }
  std::string name() const override { return v1::Plugin::service_full_name(); }
  void Serve(CompletionQueueThread& queue) override {
    ServeUnary(queue, service_, &v1::Plugin::AsyncService::RequestShutdown,
               [this](grpc::ServerContext&, const v1::ShutdownRequest&, v1::ShutdownResponse&,
                      UnaryDone done) {
                 held = done;
                 arrived.Notify();
               });
  }
  std::optional<UnaryDone> held;
  absl::Notification arrived;

 private:
  v1::Plugin::AsyncService service_;
};

class ControlServerTest : public ::testing::Test {
 protected:
  ControlServerTest() : launcher_(io_) {
    PluginHost::Options options;
    options.runtime_dir = dir_.path();
    options.broker_socket = dir_.path() / "broker.sock";
    host_ = std::move(*PluginHost::Create(io_, launcher_, {}, options));
  }

  tracim::testing::TempDir dir_;
  boost::asio::io_context io_;
  PosixProcessLauncher launcher_;
  std::unique_ptr<PluginHost> host_;
};

TEST_F(ControlServerTest, AnAnswerGivenAfterShutdownIsSentOnTheStillRunningQueue) {
  HeldService held;
  auto control = ControlServer::Start(dir_.path() / "broker.sock", *host_, std::nullopt, {&held});
  ASSERT_TRUE(control.ok()) << control.status();
  auto stub = v1::Plugin::NewStub(grpc::CreateChannel(
      "unix:" + (dir_.path() / "broker.sock").string(), grpc::InsecureChannelCredentials()));
  auto call = std::async(std::launch::async, [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    v1::ShutdownResponse response;
    return stub->Shutdown(&context, v1::ShutdownRequest(), &response);
  });
  held.arrived.WaitForNotification();
  // The server stops (the unanswered call is cancelled after its grace)...
  (*control)->Shutdown();
  EXPECT_EQ(call.get().error_code(), grpc::StatusCode::UNAVAILABLE);
  // ... and the late answer is an operation on a queue still running: it
  // completes (not ok) instead of aborting the process.
  (*held.held)(grpc::Status::OK);
  control->reset();  // shuts the queue down, draining that completion
}

TEST_F(ControlServerTest, ServesHealthAndShutsDownWithoutStarting) {
  // Created, never started: the queue's thread still stops cleanly.
  std::unique_ptr<ControlServer> idle = ControlServer::Create(dir_.path() / "idle.sock");
  idle.reset();

  auto control = ControlServer::Start(dir_.path() / "broker.sock", *host_);
  ASSERT_TRUE(control.ok()) << control.status();
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      "unix:" + (dir_.path() / "broker.sock").string(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace tracim::broker
