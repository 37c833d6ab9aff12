// The broker's control socket beyond Registrar, Admin and Backend: its
// grpc.health.v1 service, and the one thread that runs all of the broker's
// gRPC (docs/performance.md, "Plugin routes").
#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <map>
#include <string>

#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"
#include "tracim/plugin/v1/handshake.h"

namespace tracim::testing {
namespace {

namespace v1 = tracim::plugin::v1;
namespace health = grpc::health::v1;

constexpr milliseconds kTimeout(15000);
constexpr char kToken[] = "test-backend-token-0123456789";

class ControlSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_.AddTestPlugin("alpha", "normal");
    broker_.AddConfig(std::string("broker.backend_token = ") + kToken);
    broker_.Start();
    ASSERT_TRUE(broker_.WaitForState("alpha", "ready", kTimeout)) << broker_.Output();
    health_ = health::Health::NewStub(
        grpc::CreateChannel("unix:" + (broker_.runtime_dir() / "broker.sock").string(),
                            grpc::InsecureChannelCredentials()));
  }

  grpc::Status Check(const std::string& service, health::HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTimeout);
    health::HealthCheckRequest request;
    request.set_service(service);
    return health_->Check(&context, request, response);
  }

  BrokerFixture broker_;
  std::unique_ptr<health::Health::Stub> health_;
};

TEST_F(ControlSocket, HealthCheckAnswersServingForTheBrokerAndEachOfItsServices) {
  for (const std::string service : {"", "tracim.plugin.v1.Registrar", "tracim.plugin.v1.Admin",
                                    "tracim.plugin.v1.Backend", "tracim.plugin.v1.HostApi"}) {
    health::HealthCheckResponse response;
    grpc::Status status = Check(service, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(ControlSocket, HealthCheckOfAnUnknownServiceIsNotFound) {
  health::HealthCheckResponse response;
  grpc::Status status = Check("tracim.plugin.v1.Nope", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "unknown service 'tracim.plugin.v1.Nope'");
}

// Register under the name of a running plugin: without its secret the caller
// is refused as unauthenticated and learns nothing of the plugin's state;
// the plugin is not disturbed.
TEST_F(ControlSocket, RegisterWithoutTheSecretOfARunningPluginIsUnauthenticated) {
  auto registrar = v1::Registrar::NewStub(
      grpc::CreateChannel("unix:" + (broker_.runtime_dir() / "broker.sock").string(),
                          grpc::InsecureChannelCredentials()));
  const std::optional<v1::PluginStatus> before = broker_.PluginStatus("alpha");
  ASSERT_TRUE(before.has_value());
  for (const char* secret : {"", "not-the-secret"}) {
    SCOPED_TRACE(secret);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTimeout);
    if (*secret != '\0') context.AddMetadata(v1::kSecretMetadataKey, secret);
    v1::RegisterRequest request;
    request.set_name("alpha");
    request.set_protocol_version(1);
    v1::RegisterResponse response;
    grpc::Status status = registrar->Register(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(status.error_message(),
              *secret == '\0' ? "missing tracim-plugin-secret metadata for plugin 'alpha'"
                              : "wrong secret for plugin 'alpha'");
  }
  const std::optional<v1::PluginStatus> after = broker_.PluginStatus("alpha");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->state(), "ready");
  EXPECT_EQ(after->pid(), before->pid());
  EXPECT_EQ(after->restarts(), before->restarts());
  EXPECT_EQ(after->last_exit_reason(), before->last_exit_reason());
}

TEST_F(ControlSocket, HealthWatchIsRefusedAndLeavesTheServerServing) {
  for (int i = 0; i < 2; ++i) {  // each Watch is answered, not only the first
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTimeout);
    health::HealthCheckRequest request;
    auto reader = health_->Watch(&context, request);
    health::HealthCheckResponse response;
    EXPECT_FALSE(reader->Read(&response));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(status.error_message(), "the broker serves grpc.health.v1 Check, not Watch");
  }
  health::HealthCheckResponse response;
  EXPECT_TRUE(Check("", &response).ok());
}

// Thread name → how many threads of `pid` have it.
std::map<std::string, int> ThreadNames(pid_t pid) {
  std::map<std::string, int> names;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(tasks + "/" + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name)) names[name]++;
  }
  closedir(dir);
  return names;
}

// Every gRPC call of the broker, served or made, runs on the control
// server's completion queue and its one thread: no callback-API object, so
// none of gRPC's callback threads ("nexting_thread"), which would take the
// poller role from that thread on every event.
TEST_F(ControlSocket, AllOfTheBrokersGrpcRunsOnOneThread) {
  // Every kind of call has happened: registration, Admin, a health check
  // (the connect-back), the event stream with an event, Backend.Publish.
  v1::Event event;
  event.set_hook("on_user_created");
  std::vector<uint64_t> ids;
  grpc::Status status = broker_.Publish({event}, kToken, &ids);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_TRUE(broker_.WaitForLine("test_plugin alpha got on_user_created " + std::to_string(ids[0]),
                                  kTimeout))
      << broker_.Output();
  health::HealthCheckResponse response;
  ASSERT_TRUE(Check("", &response).ok());

  std::map<std::string, int> names = ThreadNames(broker_.pid());
  EXPECT_EQ(names["broker-grpc"], 1);
  EXPECT_EQ(names.count("nexting_thread"), 0u);
  EXPECT_EQ(names.count("route-proxy"), 0u);
  EXPECT_EQ(names.count("plugin-calls"), 0u);
}

}  // namespace
}  // namespace tracim::testing
