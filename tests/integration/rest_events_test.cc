// The embedded backend end to end: a change made through the REST API on the
// broker's HTTP listener reaches a plugin process as a hook, after commit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/broker_fixture.h"

namespace tracim::testing {
namespace {

using ::testing::HasSubstr;
constexpr milliseconds kTimeout(15000);

// The port the broker logged ("HTTP listener on 127.0.0.1:PORT").
int ListenPort(BrokerFixture& broker) {
  std::string output = broker.Output();
  const std::string marker = "HTTP listener on 127.0.0.1:";
  size_t at = output.find(marker);
  return at == std::string::npos ? -1 : std::stoi(output.substr(at + marker.size()));
}

// One HTTP/1.1 exchange on a fresh connection ("Connection: close"); the
// whole response as text.
std::string HttpExchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  return response;
}

TEST(RestEvents, UserCreatedThroughTheRestApiReachesHelloWorld) {
  BrokerFixture broker;
  broker.CopyPlugin(ExamplePluginsDir() / "tracim_backend_hello_world");
  broker.AddConfig("backend.admin_password = s3cret-admin");
  broker.Start();
  ASSERT_TRUE(broker.WaitForLine("Hello World !", kTimeout)) << broker.Output();
  int port = ListenPort(broker);
  ASSERT_GT(port, 0) << broker.Output();

  // admin@admin.admin:s3cret-admin
  const std::string body =
      R"({"email": "ann@example.com", "username": "ann", "public_name": "Ann Smith", )"
      R"("password": "correct horse battery", "profile": "users"})";
  std::string response =
      HttpExchange(port,
                   "POST /api/users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                   "Authorization: Basic YWRtaW5AYWRtaW4uYWRtaW46czNjcmV0LWFkbWlu\r\n"
                   "Content-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 200 OK\r\n")) << response;
  EXPECT_THAT(response, HasSubstr("\"user_id\":"));
  EXPECT_TRUE(broker.WaitForLine("] created user Ann Smith", kTimeout)) << broker.Output();

  // Without credentials: 401, and nothing reaches the plugin.
  response = HttpExchange(port,
                          "POST /api/users HTTP/1.1\r\nHost: localhost\r\n"
                          "Connection: close\r\nContent-Type: application/json\r\n"
                          "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 401 Unauthorized\r\n")) << response;
  EXPECT_EQ(broker.CountLines("] created user "), 1);
}

}  // namespace
}  // namespace tracim::testing
