// HttpServer over real sockets on 127.0.0.1 (port 0), driven by a Beast
// client with per-operation deadlines. The server runs on its own io
// thread, as in the broker.
#include "broker/http/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "boost/asio/write.hpp"
// See broker/http/http_connection.h: a false -Wmaybe-uninitialized in
// Beast's parser under the sanitizers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/buffer_body.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#pragma GCC diagnostic pop
#include "broker/http/http_handler.h"
#include "broker/http/http_headers.h"
#include "broker/http/http_router.h"
#include "broker/http/url_decoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracim::broker {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr std::chrono::seconds kDeadline(10);

// Waits for a condition owned by another thread (server counters, test
// atomics), up to a deadline.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

uint64_t Fnv1a(uint64_t hash, absl::string_view data) {
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}
constexpr uint64_t kFnvOffset = 14695981039346656037ull;

// Deterministic, non-repeating-per-MiB test bytes at [offset, offset + n).
std::string PatternBytes(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    const uint64_t at = offset + i;
    out[i] = static_cast<char>((at * 7 + at / 4093) % 251);
  }
  return out;
}

std::string Get(absl::string_view target, absl::string_view extra_headers = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: test\r\n", extra_headers, "\r\n");
}

std::string Header(const http::response<http::string_body>& res, absl::string_view name) {
  auto it = res.find(beast::string_view(name.data(), name.size()));
  return it == res.end() ? "<none>" : std::string(it->value());
}

// A blocking HTTP client: every operation has a deadline (10 s unless told).
class TestClient {
 public:
  explicit TestClient(uint16_t port, int receive_buffer = 0) : stream_(ioc_) {
    tcp::socket& socket = stream_.socket();
    socket.open(tcp::v4());
    if (receive_buffer > 0) {
      socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    }
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), connect_error_);
  }

  error_code connect_error() const { return connect_error_; }

  error_code Send(absl::string_view data) {
    return Run([&](auto handler) {
      asio::async_write(stream_, asio::buffer(data.data(), data.size()), handler);
    });
  }

  http::response<http::string_body> ReadResponse(bool head_request = false) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (head_request) parser.skip(true);
    const error_code ec =
        Run([&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
    EXPECT_FALSE(ec) << ec.message();
    return parser.release();
  }

  // True if the server closed the connection (EOF or reset) within the
  // timeout without sending anything more.
  bool WaitForClose(std::chrono::steady_clock::duration timeout = kDeadline) {
    if (buffer_.size() > 0) return false;
    char byte;
    const error_code ec = Run(
        [&](auto handler) { stream_.async_read_some(asio::buffer(&byte, 1), handler); }, timeout);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  // For streamed responses: the head, then body pieces as they come.
  error_code ReadHead(http::response_parser<http::buffer_body>& parser) {
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    return Run([&](auto handler) { http::async_read_header(stream_, buffer_, parser, handler); });
  }
  // Appends up to `max` body bytes to `out`; false at the end or on error.
  bool ReadBodyPiece(http::response_parser<http::buffer_body>& parser, std::string& out,
                     size_t max = 64 * 1024) {
    if (parser.is_done()) return false;
    std::string piece(max, '\0');
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    const error_code ec =
        Run([&](auto handler) { http::async_read_some(stream_, buffer_, parser, handler); });
    if (ec && ec != http::error::need_buffer) {
      ADD_FAILURE() << ec.message();
      return false;
    }
    piece.resize(max - parser.get().body().size);
    out += piece;
    return true;
  }

  void Close() {
    error_code ignored;
    stream_.socket().close(ignored);
  }

 private:
  template <typename Start>
  error_code Run(Start start, std::chrono::steady_clock::duration timeout = kDeadline) {
    error_code result = asio::error::would_block;
    stream_.expires_after(timeout);
    start([&result](error_code ec, size_t) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  error_code connect_error_;
};

HttpServerOptions TestOptions() {
  HttpServerOptions options;
  options.port = 0;
  options.stop_grace = absl::Seconds(5);
  return options;
}

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.headers.Add("Content-Type", "text/plain");
  response.body = std::move(body);
  return response;
}

// Answers with what it saw, in headers, and the body echoed.
HttpHandler EchoHandler() {
  return HttpHandler::Simple([](HttpRequest request, HttpResponder respond) {
    HttpResponse response = TextResponse(200, request.body);
    response.headers.Add("X-Method", request.head.method);
    response.headers.Add("X-Path", request.head.path);
    response.headers.Add("X-Query", request.head.query);
    response.headers.Add("X-Client", request.head.client_address);
    response.headers.Add("X-Seen-Id", request.head.request_id);
    response.headers.Add("X-Seen-Type",
                         std::string(request.head.headers.Get("content-type").value_or("-")));
    respond(std::move(response));
  });
}

class HttpServerTest : public ::testing::Test {
 protected:
  ~HttpServerTest() override {
    StopServer();
    server_.reset();
    work_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  void StartServer(HttpRouter router, HttpServerOptions options = TestOptions()) {
    server_ = std::make_unique<HttpServer>(io_, std::move(options), std::move(router));
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_NE(server_->port(), 0);
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void StopServer() {
    if (server_ == nullptr) return;
    absl::Notification stopped;
    server_->Stop([&stopped] { stopped.Notify(); });
    EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }

  uint16_t port() const { return server_->port(); }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread io_thread_;
  std::unique_ptr<HttpServer> server_;
};

HttpRouter EchoRouter(std::optional<uint64_t> max_body = std::nullopt) {
  HttpRouter router;
  EXPECT_TRUE(router.AddPrefix("/api/", HttpHandler{EchoHandler().fn, max_body}).ok());
  return router;
}

// --- Simple handlers, keep-alive, chunked ------------------------------------

TEST_F(HttpServerTest, SimpleHandlerRoundTripSeesRequestAndEchoesRequestId) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.connect_error());
  ASSERT_FALSE(client.Send(
      "POST /api/echo%20me?a=1&b=x+y HTTP/1.1\r\nHost: test\r\ncontent-TYPE: text/plain\r\n"
      "X-Request-Id: client-id-42\r\nContent-Length: 5\r\n\r\nhello"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello");
  EXPECT_EQ(Header(res, "X-Method"), "POST");
  EXPECT_EQ(Header(res, "X-Path"), "/api/echo%20me");
  EXPECT_EQ(Header(res, "X-Query"), "a=1&b=x+y");
  EXPECT_EQ(Header(res, "X-Client"), "127.0.0.1");
  EXPECT_EQ(Header(res, "X-Seen-Type"), "text/plain");
  EXPECT_EQ(Header(res, "X-Seen-Id"), "client-id-42");
  EXPECT_EQ(Header(res, "X-Request-Id"), "client-id-42");
  EXPECT_EQ(Header(res, "Content-Length"), "5");
  EXPECT_EQ(Header(res, "Connection"), "<none>");
  EXPECT_NE(Header(res, "Date"), "<none>");
}

TEST_F(HttpServerTest, GeneratesRequestIdWhenMissingOrNotSane) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/x")));
  const auto generated = client.ReadResponse();
  EXPECT_THAT(Header(generated, "X-Request-Id"), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(Header(generated, "X-Seen-Id"), Header(generated, "X-Request-Id"));

  ASSERT_FALSE(
      client.Send(Get("/api/x", absl::StrCat("X-Request-Id: ", std::string(129, 'a'), "\r\n"))));
  const auto too_long = client.ReadResponse();
  EXPECT_THAT(Header(too_long, "X-Request-Id"), MatchesRegex("[0-9a-f]{32}"));

  ASSERT_FALSE(
      client.Send(Get("/api/x", absl::StrCat("X-Request-Id: ", std::string(128, 'b'), "\r\n"))));
  EXPECT_EQ(Header(client.ReadResponse(), "X-Request-Id"), std::string(128, 'b'));
}

TEST_F(HttpServerTest, KeepAliveServesSequentialAndPipelinedRequestsOnOneConnection) {
  StartServer(EchoRouter());
  TestClient client(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(client.Send(Get(absl::StrCat("/api/seq", i))));
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(Header(res, "X-Path"), absl::StrCat("/api/seq", i));
  }
  // Two requests in one write: answered in order.
  ASSERT_FALSE(client.Send(absl::StrCat(
      "POST /api/p1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nonePOST /api/p2 HTTP/1.1\r\n"
      "Host: t\r\nContent-Length: 3\r\n\r\ntwo")));
  const auto first = client.ReadResponse();
  const auto second = client.ReadResponse();
  EXPECT_EQ(first.body(), "one");
  EXPECT_EQ(second.body(), "two");
  EXPECT_EQ(server_->counters().connections_accepted, 1u);
  EXPECT_EQ(server_->counters().requests, 5u);
}

TEST_F(HttpServerTest, Http10ClientWithoutKeepAliveGetsConnectionClose) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send("GET /api/old HTTP/1.0\r\n\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, HeadRequestGetsHeadersWithoutBody) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send("HEAD /api/h HTTP/1.1\r\nHost: t\r\n\r\n"));
  const auto res = client.ReadResponse(/*head_request=*/true);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(Header(res, "Content-Length"), "0");
  // The connection is still in sync: the next response parses.
  ASSERT_FALSE(client.Send(Get("/api/after")));
  EXPECT_EQ(Header(client.ReadResponse(), "X-Path"), "/api/after");
}

TEST_F(HttpServerTest, ChunkedRequestBodyReachesSimpleHandler) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /api/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "hello world");
}

TEST_F(HttpServerTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send(
      "PUT /api/e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  EXPECT_EQ(client.ReadResponse().result_int(), 100);
  ASSERT_FALSE(client.Send("body"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "body");
}

TEST_F(HttpServerTest, ResponderMayAnswerLaterFromAnotherThread) {
  asio::thread_pool workers(1);
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple([&workers](HttpRequest request,
                                                                     HttpResponder respond) {
                               asio::post(workers, [request = std::move(request), respond] {
                                 respond(TextResponse(201, "later:" + request.head.path));
                               });
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/slow")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 201);
  EXPECT_EQ(res.body(), "later:/api/slow");
  workers.join();
}

// --- Errors and limits -------------------------------------------------------

TEST_F(HttpServerTest, UnknownPathGets404JsonAndKeepsTheConnection) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/nope?x=1")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body(), R"({"code":"not_found","message":"no route for /nope"})");
  EXPECT_EQ(Header(res, "Content-Type"), "application/json");
  EXPECT_EQ(Header(res, "Connection"), "<none>");
  ASSERT_FALSE(client.Send(Get("/api/still-open")));
  EXPECT_EQ(client.ReadResponse().result_int(), 200);
}

TEST_F(HttpServerTest, HeaderBlockTooLargeGets431AndClose) {
  HttpServerOptions options = TestOptions();
  options.max_header_bytes = 1024;
  StartServer(EchoRouter(), options);
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/x", absl::StrCat("X-Big: ", std::string(2000, 'x'), "\r\n"))));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_EQ(res.body(),
            R"({"code":"headers_too_large","message":"request header block exceeds 1024 bytes"})");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_THAT(Header(res, "X-Request-Id"), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, ContentLengthOverLimitGets413BeforeTheBodyIsSent) {
  std::atomic<int> calls{0};
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple(
                                          [&calls](HttpRequest, HttpResponder respond) {
                                            ++calls;
                                            respond(TextResponse(200, ""));
                                          },
                                          /*max_body_bytes=*/1024))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send("POST /api/up HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res.body(), R"({"code":"body_too_large","message":"request body exceeds 1024 bytes"})");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(HttpServerTest, BodyExactlyAtTheLimitIsAccepted) {
  StartServer(EchoRouter(/*max_body=*/1024));
  TestClient client(port());
  ASSERT_FALSE(client.Send(absl::StrCat(
      "POST /api/up HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n", std::string(1024, 'z'))));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body().size(), 1024u);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitGets413WhileStreaming) {
  StartServer(EchoRouter(/*max_body=*/1024));
  TestClient client(port());
  std::string request = "POST /api/up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) absl::StrAppend(&request, "200\r\n", std::string(512, 'c'), "\r\n");
  ASSERT_FALSE(client.Send(request));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res.body(), R"({"code":"body_too_large","message":"request body exceeds 1024 bytes"})");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndClose) {
  StartServer(EchoRouter());
  {
    TestClient client(port());
    ASSERT_FALSE(client.Send("GET /api/x HTTP/1.1\r\nBad Field: x\r\n\r\n"));
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(res.body(), R"({"code":"bad_request","message":"malformed request: bad field"})");
    EXPECT_EQ(Header(res, "Connection"), "close");
    EXPECT_TRUE(client.WaitForClose());
  }
  {
    TestClient client(port());
    ASSERT_FALSE(client.Send("GET api/x HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(
        res.body(),
        R"({"code":"bad_request","message":"malformed request: request target must start with '/'"})");
    EXPECT_TRUE(client.WaitForClose());
  }
  {
    TestClient client(port());
    ASSERT_FALSE(client.Send(
        "POST /api/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"));
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_EQ(res.body(),
              R"({"code":"bad_request","message":"malformed request body: bad chunk"})");
    EXPECT_TRUE(client.WaitForClose());
  }
}

TEST_F(HttpServerTest, AbsoluteFormTargetIsReducedToOriginForm) {
  StartServer(EchoRouter());
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("http://example.org:8080/api/abs?q=1")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(Header(res, "X-Path"), "/api/abs");
  EXPECT_EQ(Header(res, "X-Query"), "q=1");
}

TEST_F(HttpServerTest, HandlerExceptionGets500JsonAndTheConnectionGoesOn) {
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddExact("/api/throw", HttpHandler::Simple([](HttpRequest, HttpResponder) {
                              throw std::runtime_error("boom");
                            }))
                  .ok());
  ASSERT_TRUE(router.AddPrefix("/api/", EchoHandler()).ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/throw", "X-Request-Id: r1\r\n")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"code":"internal_error","message":"the request handler failed"})");
  EXPECT_EQ(Header(res, "X-Request-Id"), "r1");
  ASSERT_FALSE(client.Send(Get("/api/ok")));
  EXPECT_EQ(client.ReadResponse().result_int(), 200);
  EXPECT_EQ(server_->counters().handler_errors, 1u);
}

TEST_F(HttpServerTest, DroppedResponderGets500) {
  HttpRouter router;
  ASSERT_TRUE(
      router.AddPrefix("/api/", HttpHandler::Simple([](HttpRequest, HttpResponder) {})).ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/drop")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"code":"internal_error","message":"the request handler failed"})");
}

TEST_F(HttpServerTest, InvalidResponseHeaderFromHandlerGets500) {
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple([](HttpRequest, HttpResponder respond) {
                               HttpResponse response = TextResponse(200, "x");
                               response.headers.Add("X-Evil", "a\r\nSet-Cookie: b");
                               respond(std::move(response));
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/evil")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(Header(res, "Set-Cookie"), "<none>");
}

TEST_F(HttpServerTest, StreamingHandlerExceptionGets500) {
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/plugins/", HttpHandler::Streaming([](std::shared_ptr<HttpStream>) {
                               throw std::logic_error("bad plugin route");
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/plugins/x/y")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"code":"internal_error","message":"the request handler failed"})");
}

// --- Timeouts ------------------------------------------------------------------

HttpServerOptions ShortTimeouts() {
  HttpServerOptions options = TestOptions();
  options.header_timeout = absl::Milliseconds(300);
  options.read_idle_timeout = absl::Milliseconds(300);
  options.keep_alive_timeout = absl::Milliseconds(300);
  return options;
}

TEST_F(HttpServerTest, ClientTooSlowSendingHeadersGets408AndIsCut) {
  StartServer(EchoRouter(), ShortTimeouts());
  TestClient client(port());
  ASSERT_FALSE(client.Send("GET /api/x HTTP/1.1\r\nHost: t\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 408);
  EXPECT_EQ(
      res.body(),
      R"({"code":"request_timeout","message":"client too slow sending the request headers"})");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(server_->counters().timeouts, 1u);
}

TEST_F(HttpServerTest, ConnectionThatSendsNothingGets408AtTheHeaderDeadline) {
  StartServer(EchoRouter(), ShortTimeouts());
  TestClient client(port());
  EXPECT_EQ(client.ReadResponse().result_int(), 408);
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(HttpServerTest, TricklingHeadersAreCutAtTheTotalHeaderDeadline) {
  HttpServerOptions options = TestOptions();
  options.header_timeout = absl::Milliseconds(300);
  options.read_idle_timeout = absl::Seconds(30);
  options.linger_timeout = absl::Seconds(5);
  StartServer(EchoRouter(), options);
  TestClient client(port());
  ASSERT_FALSE(client.Send("GET /api/x HTTP/1.1\r\n"));
  // Each line arrives well within the idle timeout (pacing the client, not
  // synchronising): only the total header deadline can cut it.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_FALSE(client.Send(absl::StrCat("X-Line-", i, ": v\r\n")));
  }
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 408);
  EXPECT_EQ(
      res.body(),
      R"({"code":"request_timeout","message":"client too slow sending the request headers"})");
}

TEST_F(HttpServerTest, ClientTooSlowSendingBodyGets408) {
  std::atomic<int> calls{0};
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple([&calls](HttpRequest, HttpResponder r) {
                               ++calls;
                               r(TextResponse(200, ""));
                             }))
                  .ok());
  StartServer(std::move(router), ShortTimeouts());
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /api/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 408);
  EXPECT_EQ(res.body(),
            R"({"code":"request_timeout","message":"client too slow sending the request body"})");
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosedSilently) {
  StartServer(EchoRouter(), ShortTimeouts());
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/api/x")));
  EXPECT_EQ(client.ReadResponse().result_int(), 200);
  EXPECT_TRUE(client.WaitForClose());  // no 408 bytes before the close
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().connections_open == 0; }));
  EXPECT_EQ(server_->counters().timeouts, 0u);
}

// --- Streaming ---------------------------------------------------------------

// How a streamed read ended abnormally, as the handler saw it.
struct ReadOutcome {
  absl::Mutex mu;
  absl::Status read_error ABSL_GUARDED_BY(mu);
  absl::Status cancel_reason ABSL_GUARDED_BY(mu);
  absl::Notification read_failed;
  absl::Notification cancelled;
};

// Reads a request body chunk by chunk from a worker thread (as the gRPC
// proxy will), never keeping more than the current chunk, and answers with
// what it saw.
class BodyDigest : public std::enable_shared_from_this<BodyDigest> {
 public:
  BodyDigest(std::shared_ptr<HttpStream> stream, asio::thread_pool& workers,
             std::shared_ptr<ReadOutcome> outcome = nullptr)
      : stream_(std::move(stream)), workers_(workers), outcome_(std::move(outcome)) {}

  void Next() {
    stream_->ReadBody([self = shared_from_this()](absl::StatusOr<HttpBodyChunk> chunk) {
      asio::post(self->workers_,
                 [self, chunk = std::move(chunk)]() mutable { self->OnChunk(std::move(chunk)); });
    });
  }

 private:
  void OnChunk(absl::StatusOr<HttpBodyChunk> chunk) {
    if (!chunk.ok()) {
      if (outcome_ != nullptr) {
        absl::MutexLock lock(&outcome_->mu);
        outcome_->read_error = chunk.status();
        outcome_->read_failed.Notify();
      }
      return;
    }
    ++chunks_;
    bytes_ += chunk->data.size();
    max_chunk_ = std::max(max_chunk_, chunk->data.size());
    hash_ = Fnv1a(hash_, chunk->data);
    if (!chunk->last) {
      Next();
      return;
    }
    stream_->Respond(
        TextResponse(200, absl::StrCat("bytes=", bytes_, " hash=", hash_, " max_chunk=", max_chunk_,
                                       " chunks=", chunks_)),
        nullptr);
  }

  const std::shared_ptr<HttpStream> stream_;
  asio::thread_pool& workers_;
  const std::shared_ptr<ReadOutcome> outcome_;
  uint64_t bytes_ = 0;
  uint64_t hash_ = kFnvOffset;
  size_t max_chunk_ = 0;
  size_t chunks_ = 0;
};

TEST_F(HttpServerTest, StreamingHandlerReceives64MiBBodyInBoundedChunks) {
  asio::thread_pool workers(2);
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/plugins/",
                             HttpHandler::Streaming([&workers](std::shared_ptr<HttpStream> stream) {
                               // Drive the stream from another thread, as gRPC callbacks do.
                               asio::post(workers, [stream, &workers] {
                                 std::make_shared<BodyDigest>(stream, workers)->Next();
                               });
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /plugins/big/upload HTTP/1.1\r\nHost: t\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n"));
  constexpr uint64_t kTotal = uint64_t{64} << 20;
  constexpr size_t kPiece = 1 << 20;
  uint64_t expected_hash = kFnvOffset;
  for (uint64_t offset = 0; offset < kTotal; offset += kPiece) {
    const std::string piece = PatternBytes(offset, kPiece);
    expected_hash = Fnv1a(expected_hash, piece);
    ASSERT_FALSE(client.Send(absl::StrCat(absl::Hex(piece.size()), "\r\n", piece, "\r\n")));
  }
  ASSERT_FALSE(client.Send("0\r\n\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  const std::string prefix = absl::StrCat("bytes=", kTotal, " hash=", expected_hash, " max_chunk=");
  ASSERT_THAT(res.body(), HasSubstr(prefix));
  size_t max_chunk = 0;
  size_t chunks = 0;
  ASSERT_EQ(sscanf(res.body().c_str() + prefix.size(), "%zu chunks=%zu", &max_chunk, &chunks), 2);
  EXPECT_LE(max_chunk, 64u * 1024);
  EXPECT_GE(chunks, kTotal / (64 * 1024));
  workers.join();
}

TEST_F(HttpServerTest, StreamingBodyOverRouteLimitGets413AndTellsTheHandler) {
  asio::thread_pool workers(1);
  auto outcome = std::make_shared<ReadOutcome>();
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/plugins/",
                             HttpHandler::Streaming(
                                 [&workers, outcome](std::shared_ptr<HttpStream> stream) {
                                   stream->SetOnCancel([outcome](absl::Status reason) {
                                     absl::MutexLock lock(&outcome->mu);
                                     outcome->cancel_reason = reason;
                                     outcome->cancelled.Notify();
                                   });
                                   std::make_shared<BodyDigest>(stream, workers, outcome)->Next();
                                 },
                                 /*max_body_bytes=*/100000))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /plugins/p/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // 4 x 32 KiB > 100000: the server notices while streaming.
  for (int i = 0; i < 4; ++i) {
    ASSERT_FALSE(client.Send(absl::StrCat("8000\r\n", std::string(32768, 's'), "\r\n")));
  }
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_EQ(res.body(),
            R"({"code":"body_too_large","message":"request body exceeds 100000 bytes"})");
  EXPECT_EQ(Header(res, "Connection"), "close");
  ASSERT_TRUE(outcome->read_failed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(outcome->cancelled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&outcome->mu);
  EXPECT_EQ(outcome->read_error, absl::ResourceExhaustedError("request body too large"));
  EXPECT_EQ(outcome->cancel_reason, absl::ResourceExhaustedError("request body too large"));
}

// Writes a response of `total` bytes in 64 KiB pieces, each only after the
// previous one completed, counting the bytes the server reported written.
class PacedWriter : public std::enable_shared_from_this<PacedWriter> {
 public:
  PacedWriter(std::shared_ptr<HttpStream> stream, uint64_t total)
      : stream_(std::move(stream)), total_(total) {}

  std::atomic<uint64_t> completed{0};
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<bool> finished{false};

  void Start() {
    HttpResponseHead head;
    head.headers.Add("Content-Type", "application/octet-stream");
    stream_->WriteHead(std::move(head), [self = shared_from_this()](absl::Status s) {
      if (s.ok()) self->Next();
    });
  }

 private:
  void Next() {
    if (sent_ == total_) {
      stream_->Finish([self = shared_from_this()](absl::Status s) { self->finished = s.ok(); });
      return;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(64 * 1024, total_ - sent_));
    std::string piece = PatternBytes(sent_, n);
    sent_ += n;
    max_in_flight = std::max(max_in_flight.load(), ++in_flight);
    stream_->WriteBody(std::move(piece), [self = shared_from_this(), n](absl::Status s) {
      --self->in_flight;
      self->completed += n;
      if (s.ok()) self->Next();
    });
  }

  const std::shared_ptr<HttpStream> stream_;
  const uint64_t total_;
  uint64_t sent_ = 0;
};

uint64_t ReadProcMax(const char* path) {
  std::ifstream in(path);
  uint64_t min = 0, def = 0, max = 0;
  in >> min >> def >> max;
  return max;
}

TEST_F(HttpServerTest, StreamingResponseIsChunkedAndPacedByTheClient) {
  // What the kernel may buffer between the server's write() and our read():
  // the server's autotuned send buffer, our fixed receive buffer (doubled by
  // the kernel), and a margin for the pieces held by the server's write and
  // by our parser.
  constexpr int kReceiveBuffer = 64 * 1024;
  const uint64_t kernel_slack =
      ReadProcMax("/proc/sys/net/ipv4/tcp_wmem") + 2 * kReceiveBuffer + (2 << 20);
  const uint64_t total = std::max<uint64_t>(uint64_t{48} << 20, 4 * kernel_slack);
  std::shared_ptr<PacedWriter> writer;
  absl::Mutex mu;
  HttpRouter router;
  ASSERT_TRUE(
      router
          .AddPrefix("/plugins/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                       auto w = std::make_shared<PacedWriter>(std::move(s), total);
                       {
                         absl::MutexLock lock(&mu);
                         writer = w;
                       }
                       w->Start();
                     }))
          .ok());
  StartServer(std::move(router));
  TestClient client(port(), kReceiveBuffer);
  ASSERT_FALSE(client.Send(Get("/plugins/p/download")));
  http::response_parser<http::buffer_body> parser;
  ASSERT_FALSE(client.ReadHead(parser));
  EXPECT_EQ(parser.get().result_int(), 200);
  EXPECT_TRUE(parser.chunked());
  auto get_writer = [&] {
    absl::MutexLock lock(&mu);
    return writer;
  };
  // Let the server run ahead as far as the kernel lets it.
  ASSERT_TRUE(WaitUntil([&] { return get_writer()->completed >= (1u << 20); }));
  std::string body;
  uint64_t received = 0;
  uint64_t hash = kFnvOffset;
  uint64_t worst_lead = 0;
  while (client.ReadBodyPiece(parser, body)) {
    received += body.size();
    hash = Fnv1a(hash, body);
    body.clear();
    const uint64_t completed = get_writer()->completed;
    worst_lead = std::max(worst_lead, completed > received ? completed - received : 0);
  }
  EXPECT_EQ(received, total);
  uint64_t expected_hash = kFnvOffset;
  for (uint64_t offset = 0; offset < total; offset += 1 << 20) {
    expected_hash =
        Fnv1a(expected_hash, PatternBytes(offset, std::min<uint64_t>(1 << 20, total - offset)));
  }
  EXPECT_EQ(hash, expected_hash);
  EXPECT_LE(worst_lead, kernel_slack) << "the server ran " << worst_lead << " bytes ahead";
  EXPECT_EQ(get_writer()->max_in_flight.load(), 1);
  EXPECT_TRUE(WaitUntil([&] { return get_writer()->finished.load(); }));
}

// Echoes a streamed request body back as a chunked response, piece by
// piece: each body chunk is written before the next one is read.
void EchoStream(std::shared_ptr<HttpStream> stream) {
  stream->ReadBody([stream](absl::StatusOr<HttpBodyChunk> chunk) {
    if (!chunk.ok()) return;
    const bool last = chunk->last;
    stream->WriteBody(std::move(chunk->data), [stream, last](absl::Status s) {
      if (!s.ok()) return;
      if (last) {
        stream->Finish(nullptr);
      } else {
        EchoStream(stream);
      }
    });
  });
}

TEST_F(HttpServerTest, StreamingExchangesEchoChunkedBodiesOnOneKeptAliveConnection) {
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/plugins/", HttpHandler::Streaming([](std::shared_ptr<HttpStream> s) {
                               HttpResponseHead head;
                               head.headers.Add("Content-Type", "text/plain");
                               s->WriteHead(std::move(head), nullptr);
                               EchoStream(s);
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_FALSE(client.Send(absl::StrCat(
        "POST /plugins/p/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        "3\r\nabc\r\n", "4\r\ndefg\r\n", "0\r\n\r\n")));
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(Header(res, "Transfer-Encoding"), "chunked");
    EXPECT_EQ(Header(res, "Connection"), "<none>");
    EXPECT_EQ(res.body(), "abcdefg");
  }
  EXPECT_EQ(server_->counters().connections_accepted, 1u);
}

TEST_F(HttpServerTest, StreamingResponseWithContentLengthIsEnforced) {
  absl::Mutex mu;
  absl::Status over;
  absl::Notification done;
  HttpRouter router;
  ASSERT_TRUE(
      router
          .AddPrefix("/plugins/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                       HttpResponseHead head;
                       head.content_length = 5;
                       s->WriteHead(std::move(head), nullptr);
                       s->WriteBody("12345", nullptr);
                       s->WriteBody("6", [&](absl::Status st) {
                         absl::MutexLock lock(&mu);
                         over = st;
                       });
                       s->Finish([&, s](absl::Status) { done.Notify(); });
                     }))
          .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/plugins/p/x")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.body(), "12345");
  EXPECT_EQ(Header(res, "Content-Length"), "5");
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(over,
            absl::InvalidArgumentError("the body exceeds the declared Content-Length of 5 bytes"));
}

TEST_F(HttpServerTest, StreamingResponseToHttp10ClientIsCloseDelimited) {
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddPrefix("/plugins/", HttpHandler::Streaming([](std::shared_ptr<HttpStream> s) {
                               s->WriteHead(HttpResponseHead{}, nullptr);
                               s->WriteBody("old ", nullptr);
                               s->WriteBody("school", nullptr);
                               s->Finish([s](absl::Status) {});
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send("GET /plugins/p/x HTTP/1.0\r\n\r\n"));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.body(), "old school");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_EQ(Header(res, "Transfer-Encoding"), "<none>");
}

TEST_F(HttpServerTest, StreamApiMisuseIsReportedWithoutEndingTheExchange) {
  constexpr int kCalls = 8;
  absl::Mutex mu;
  std::vector<std::optional<absl::Status>> seen(kCalls);
  HttpRouter router;
  ASSERT_TRUE(
      router
          .AddPrefix("/plugins/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                       auto record = [&](int call) {
                         return [&, call](absl::Status st) {
                           absl::MutexLock lock(&mu);
                           seen[call] = st;
                         };
                       };
                       s->WriteBody("too early", record(0));
                       s->Finish(record(1));
                       HttpResponseHead bad;
                       bad.headers.Add("Bad Name", "x");
                       s->WriteHead(std::move(bad), record(2));
                       s->WriteHead(HttpResponseHead{202, {}, 2}, record(3));
                       s->WriteHead(HttpResponseHead{}, record(4));
                       s->WriteBody("ok", record(5));
                       s->Finish(record(6));
                       s->Finish(record(7));
                     }))
          .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/plugins/p/x")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 202);
  EXPECT_EQ(res.body(), "ok");
  ASSERT_TRUE(WaitUntil([&] {
    absl::MutexLock lock(&mu);
    return std::all_of(seen.begin(), seen.end(), [](const auto& s) { return s.has_value(); });
  }));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(*seen[0], absl::FailedPreconditionError("WriteBody before WriteHead"));
  EXPECT_EQ(*seen[1], absl::FailedPreconditionError("Finish before WriteHead"));
  EXPECT_EQ(*seen[2], absl::InvalidArgumentError("response header name 'Bad Name' is not a token"));
  EXPECT_TRUE(seen[3]->ok()) << *seen[3];
  EXPECT_EQ(*seen[4], absl::FailedPreconditionError("the response was already started"));
  EXPECT_TRUE(seen[5]->ok()) << *seen[5];
  EXPECT_TRUE(seen[6]->ok()) << *seen[6];
  EXPECT_EQ(*seen[7], absl::FailedPreconditionError("Finish was already called"));
}

TEST_F(HttpServerTest, ClientLeavingMidBodyCancelsTheStreamingHandler) {
  absl::Mutex mu;
  absl::Status cancel_reason;
  absl::Status read_error;
  absl::Notification cancelled;
  absl::Notification got_first_chunk;
  std::shared_ptr<HttpStream> held;
  HttpRouter router;
  ASSERT_TRUE(
      router
          .AddPrefix("/plugins/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                       {
                         absl::MutexLock lock(&mu);
                         held = s;
                       }
                       s->SetOnCancel([&](absl::Status reason) {
                         absl::MutexLock lock(&mu);
                         cancel_reason = reason;
                         cancelled.Notify();
                       });
                       s->ReadBody([&, s](absl::StatusOr<HttpBodyChunk> first) {
                         if (first.ok()) got_first_chunk.Notify();
                         s->ReadBody([&](absl::StatusOr<HttpBodyChunk> second) {
                           absl::MutexLock lock(&mu);
                           read_error = second.status();
                         });
                       });
                     }))
          .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(
      "POST /plugins/p/x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789"));
  ASSERT_TRUE(got_first_chunk.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client.Close();
  ASSERT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(cancel_reason, absl::CancelledError("client closed the connection"));
  EXPECT_EQ(read_error, absl::CancelledError("client closed the connection"));
  held.reset();
}

TEST_F(HttpServerTest, ReleasingTheStreamWithoutAnsweringGets500) {
  HttpRouter router;
  ASSERT_TRUE(
      router.AddPrefix("/plugins/", HttpHandler::Streaming([](std::shared_ptr<HttpStream>) {}))
          .ok());
  StartServer(std::move(router));
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/plugins/p/x")));
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"code":"internal_error","message":"the request handler failed"})");
}

// --- RespondFromHere ---------------------------------------------------------------

// Holds the stream a streaming handler was given, for the test's thread.
struct StreamSlot {
  absl::Mutex mu;
  std::shared_ptr<HttpStream> stream ABSL_GUARDED_BY(mu);

  HttpHandler Handler() {
    return HttpHandler::Streaming([this](std::shared_ptr<HttpStream> s) {
      absl::MutexLock lock(&mu);
      stream = std::move(s);
    });
  }
  // /plugins/ → Handler().
  HttpRouter Router() {
    HttpRouter router;
    EXPECT_TRUE(router.AddPrefix("/plugins/", Handler()).ok());
    return router;
  }
  // Sends GET `target` on `client` and takes the stream it gets.
  std::shared_ptr<HttpStream> Request(TestClient& client, absl::string_view target) {
    EXPECT_FALSE(client.Send(Get(target)));
    return Take();
  }
  // Waits for the next request's stream and takes it.
  std::shared_ptr<HttpStream> Take() {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(
                            +[](std::shared_ptr<HttpStream>* s) { return *s != nullptr; }, &stream),
                        absl::Seconds(10));
    return std::move(stream);
  }
};

// What a write callback saw, and on which thread.
struct WriteOutcome {
  absl::Mutex mu;
  std::optional<absl::Status> status ABSL_GUARDED_BY(mu);
  std::thread::id thread ABSL_GUARDED_BY(mu);

  HttpStream::WriteCallback Callback() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu);
      status = std::move(s);
      thread = std::this_thread::get_id();
    };
  }
  bool Ran() {
    absl::MutexLock lock(&mu);
    return status.has_value();
  }
  // Waits for the callback; its status and thread.
  std::pair<absl::Status, std::thread::id> Wait() {
    EXPECT_TRUE(WaitUntil([this] { return Ran(); }));
    absl::MutexLock lock(&mu);
    return {status.value_or(absl::UnknownError("the callback never ran")), thread};
  }
};

TEST_F(HttpServerTest, RespondFromHereWritesOnTheCallersThreadWhileTheIoThreadIsBusy) {
  StreamSlot slot;
  absl::Notification io_blocked;
  absl::Notification release_io;
  HttpRouter router = slot.Router();
  // Holds the server's only io thread (handlers must not block; this one
  // does, to show who writes the other connection's response).
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple([&](HttpRequest, HttpResponder respond) {
                               io_blocked.Notify();
                               // Longer than the client's read deadline.
                               release_io.WaitForNotificationWithTimeout(absl::Seconds(30));
                               respond(TextResponse(200, "released"));
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  std::shared_ptr<HttpStream> stream = slot.Request(client, "/plugins/p/x");
  ASSERT_NE(stream, nullptr);
  TestClient blocker(port());
  ASSERT_FALSE(blocker.Send(Get("/api/block")));
  ASSERT_TRUE(io_blocked.WaitForNotificationWithTimeout(absl::Seconds(10)));

  WriteOutcome written;
  stream->RespondFromHere(TextResponse(200, "from here"), written.Callback());
  // The io thread is still held: the bytes were sent by this thread.
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "from here");
  EXPECT_EQ(Header(res, "X-Request-Id"), stream->request().request_id);
  // The socket took it whole: the write completed in the call, so the
  // callback ran on this thread before RespondFromHere returned.
  ASSERT_TRUE(written.Ran());
  const auto [status, thread] = written.Wait();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(thread, std::this_thread::get_id());
  release_io.Notify();
  EXPECT_EQ(blocker.ReadResponse().body(), "released");
  stream.reset();

  // The connection goes on with its next request.
  stream = slot.Request(client, "/plugins/p/y");
  ASSERT_NE(stream, nullptr);
  EXPECT_EQ(stream->request().path, "/plugins/p/y");
  stream->RespondFromHere(TextResponse(201, "again"), nullptr);
  const auto second = client.ReadResponse();
  EXPECT_EQ(second.result_int(), 201);
  EXPECT_EQ(second.body(), "again");
}

TEST_F(HttpServerTest, RespondFromHereComesAfterWhatTheSameThreadAskedBefore) {
  StreamSlot slot;
  StartServer(slot.Router());
  TestClient client(port());
  for (int round = 0; round < 20; ++round) {
    ASSERT_FALSE(client.Send(Get("/plugins/p/x")));
    std::shared_ptr<HttpStream> stream = slot.Take();
    ASSERT_NE(stream, nullptr);
    // Posted first: the strand starts the response before RespondFromHere
    // may look at the connection.
    stream->WriteHead(HttpResponseHead{200, {}, 2}, nullptr);
    WriteOutcome late;
    stream->RespondFromHere(TextResponse(201, "too late"), late.Callback());
    stream->WriteBody("ok", nullptr);
    stream->Finish(nullptr);
    const auto res = client.ReadResponse();
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "ok");
    const auto [status, thread] = late.Wait();
    EXPECT_EQ(status, absl::FailedPreconditionError("the response was already started"));
    EXPECT_EQ(thread, io_thread_.get_id());
  }
}

TEST_F(HttpServerTest, RespondFromHereReportsAnInvalidHeadOnTheStrandAndTheExchangeGoesOn) {
  StreamSlot slot;
  WriteOutcome in_handler;
  HttpRouter router = slot.Router();
  // Called on the strand itself: RespondFromHere is then plain Respond.
  ASSERT_TRUE(router
                  .AddPrefix("/inline/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                               s->RespondFromHere(TextResponse(202, "inline"),
                                                  in_handler.Callback());
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient client(port());
  std::shared_ptr<HttpStream> stream = slot.Request(client, "/plugins/p/x");
  ASSERT_NE(stream, nullptr);
  HttpResponse bad = TextResponse(200, "bad");
  bad.headers.Add("Bad Name", "x");
  WriteOutcome refused;
  stream->RespondFromHere(std::move(bad), refused.Callback());
  const auto [status, thread] = refused.Wait();
  EXPECT_EQ(status, absl::InvalidArgumentError("response header name 'Bad Name' is not a token"));
  EXPECT_EQ(thread, io_thread_.get_id());
  stream->RespondFromHere(TextResponse(200, "good"), nullptr);
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "good");

  ASSERT_FALSE(client.Send(Get("/inline/x")));
  const auto inline_res = client.ReadResponse();
  EXPECT_EQ(inline_res.result_int(), 202);
  EXPECT_EQ(inline_res.body(), "inline");
  const auto [inline_status, inline_thread] = in_handler.Wait();
  EXPECT_TRUE(inline_status.ok()) << inline_status;
  EXPECT_EQ(inline_thread, io_thread_.get_id());
}

TEST_F(HttpServerTest, RespondFromHereOfMoreThanTheSocketTakesAtOnceIsWrittenWhole) {
  StreamSlot slot;
  StartServer(slot.Router());
  // A small receive buffer, and nothing read yet: the first send on the
  // caller's thread takes part of the body; the strand writes the rest.
  TestClient client(port(), /*receive_buffer=*/4096);
  std::shared_ptr<HttpStream> stream = slot.Request(client, "/plugins/p/big");
  ASSERT_NE(stream, nullptr);
  constexpr size_t kBody = 8 << 20;
  WriteOutcome written;
  stream->RespondFromHere(TextResponse(200, PatternBytes(0, kBody)), written.Callback());
  stream.reset();
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  ASSERT_EQ(res.body().size(), kBody);
  EXPECT_EQ(Fnv1a(kFnvOffset, res.body()), Fnv1a(kFnvOffset, PatternBytes(0, kBody)));
  const auto [status, thread] = written.Wait();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(thread, io_thread_.get_id());
  stream = slot.Request(client, "/plugins/p/next");
  ASSERT_NE(stream, nullptr);
  stream->RespondFromHere(TextResponse(200, "next"), nullptr);
  EXPECT_EQ(client.ReadResponse().body(), "next");
}

TEST_F(HttpServerTest, RespondFromHereServesPipelinedRequestsInOrder) {
  StreamSlot slot;
  StartServer(slot.Router());
  TestClient client(port());
  ASSERT_FALSE(client.Send(absl::StrCat(Get("/plugins/p/1"), Get("/plugins/p/2"))));
  for (const char* name : {"1", "2"}) {
    std::shared_ptr<HttpStream> stream = slot.Take();
    ASSERT_NE(stream, nullptr);
    EXPECT_EQ(stream->request().path, absl::StrCat("/plugins/p/", name));
    stream->RespondFromHere(TextResponse(200, absl::StrCat("answer ", name)), nullptr);
  }
  EXPECT_EQ(client.ReadResponse().body(), "answer 1");
  EXPECT_EQ(client.ReadResponse().body(), "answer 2");
}

TEST_F(HttpServerTest, RespondFromHereBeforeTheBodyWasReadClosesAfterTheResponse) {
  StreamSlot slot;
  StartServer(slot.Router());
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /plugins/p/x HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhalf "));
  std::shared_ptr<HttpStream> stream = slot.Take();
  ASSERT_NE(stream, nullptr);
  WriteOutcome written;
  stream->RespondFromHere(TextResponse(200, "early"), written.Callback());
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "early");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(written.Wait().first.ok());
  ASSERT_FALSE(client.Send("body"));
  EXPECT_TRUE(client.WaitForClose());
}

// The route proxy answers with its own lock held, and its ReadBody callback
// takes that lock: a plugin that answers before it took the whole body must
// not get that callback inside the answering call (a self-deadlock).
TEST_F(HttpServerTest, RespondFromHereNeverRunsAnOutstandingReadBodyCallbackInTheCall) {
  StreamSlot slot;
  StartServer(slot.Router());
  TestClient client(port());
  ASSERT_FALSE(
      client.Send("POST /plugins/p/x HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
                  "Content-Length: 10\r\n\r\n"));
  std::shared_ptr<HttpStream> stream = slot.Take();
  ASSERT_NE(stream, nullptr);
  absl::Mutex caller_mu;  // the proxy's exchange lock
  absl::Notification body_failed;
  absl::Status body_status;
  std::thread::id body_thread;
  stream->ReadBody([&](absl::StatusOr<HttpBodyChunk> chunk) {
    body_thread = std::this_thread::get_id();
    // Takes the caller's lock, as the proxy's does: on the caller's thread,
    // inside the call, that would never return (so it is not taken there).
    if (body_thread == io_thread_.get_id()) absl::MutexLock lock(&caller_mu);
    body_status = chunk.status();
    body_failed.Notify();
  });
  // The 100 is written by the same strand handler that registers the
  // ReadBody: from here on it is outstanding.
  EXPECT_EQ(client.ReadResponse().result_int(), 100);
  // One exchange on another connection, through the same io thread, after
  // the 100's write completion was queued there: once it is answered, that
  // completion has run and the connection is idle.
  TestClient other(port());
  ASSERT_FALSE(other.Send(Get("/elsewhere")));
  EXPECT_EQ(other.ReadResponse().result_int(), 404);
  WriteOutcome written;
  {
    absl::MutexLock lock(&caller_mu);
    stream->RespondFromHere(TextResponse(401, "early"), written.Callback());
  }
  const auto res = client.ReadResponse();
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(res.body(), "early");
  EXPECT_EQ(Header(res, "Connection"), "close");
  ASSERT_TRUE(body_failed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(body_thread, io_thread_.get_id()) << "the ReadBody callback ran inside the call";
  EXPECT_EQ(body_status, absl::CancelledError("the response is complete"));
  const auto [status, thread] = written.Wait();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(thread, io_thread_.get_id());
  EXPECT_TRUE(client.WaitForClose());
}

// --- Stop ----------------------------------------------------------------------

TEST_F(HttpServerTest, StopLetsTheInFlightRequestFinishAndClosesIdleConnections) {
  absl::Mutex mu;
  HttpResponder held;
  absl::Notification got_request;
  HttpRouter router;
  ASSERT_TRUE(router
                  .AddExact("/healthz", HttpHandler::Simple([](HttpRequest, HttpResponder r) {
                              r(TextResponse(200, "ok"));
                            }))
                  .ok());
  ASSERT_TRUE(router
                  .AddPrefix("/api/", HttpHandler::Simple([&](HttpRequest, HttpResponder r) {
                               absl::MutexLock lock(&mu);
                               held = std::move(r);
                               got_request.Notify();
                             }))
                  .ok());
  StartServer(std::move(router));
  TestClient idle(port());
  ASSERT_FALSE(idle.Send(Get("/healthz")));
  EXPECT_EQ(idle.ReadResponse().body(), "ok");
  TestClient busy(port());
  ASSERT_FALSE(busy.Send(Get("/api/slow")));
  ASSERT_TRUE(got_request.WaitForNotificationWithTimeout(absl::Seconds(10)));

  absl::Notification stopped;
  server_->Stop([&] { stopped.Notify(); });
  EXPECT_TRUE(idle.WaitForClose());
  TestClient late(port());
  EXPECT_EQ(late.connect_error(), asio::error::connection_refused);
  EXPECT_FALSE(stopped.HasBeenNotified());

  HttpResponder respond;
  {
    absl::MutexLock lock(&mu);
    respond = std::move(held);
  }
  respond(TextResponse(200, "finished"));
  const auto res = busy.ReadResponse();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "finished");
  EXPECT_EQ(Header(res, "Connection"), "close");
  EXPECT_TRUE(busy.WaitForClose());
  busy.Close();  // as clients do after Connection: close; ends the server's linger
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(server_->counters().connections_open, 0u);
}

TEST_F(HttpServerTest, StopCutsRequestsStillRunningAfterTheGrace) {
  absl::Mutex mu;
  std::shared_ptr<HttpStream> held;
  absl::Status cancel_reason;
  absl::Notification cancelled;
  absl::Notification got_request;
  HttpRouter router;
  ASSERT_TRUE(
      router
          .AddPrefix("/plugins/", HttpHandler::Streaming([&](std::shared_ptr<HttpStream> s) {
                       s->SetOnCancel([&](absl::Status reason) {
                         absl::MutexLock lock(&mu);
                         cancel_reason = reason;
                         cancelled.Notify();
                       });
                       absl::MutexLock lock(&mu);
                       held = std::move(s);
                       got_request.Notify();
                     }))
          .ok());
  HttpServerOptions options = TestOptions();
  options.stop_grace = absl::Milliseconds(200);
  StartServer(std::move(router), options);
  TestClient client(port());
  ASSERT_FALSE(client.Send(Get("/plugins/p/hang")));
  ASSERT_TRUE(got_request.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::Notification stopped;
  server_->Stop([&] { stopped.Notify(); });
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(client.WaitForClose());
  ASSERT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(cancel_reason, absl::UnavailableError("server is shutting down"));
  held.reset();
}

TEST_F(HttpServerTest, CountersTrackTrafficByStatusClass) {
  StartServer(EchoRouter());
  {
    TestClient client(port());
    ASSERT_FALSE(client.Send(Get("/api/a")));
    client.ReadResponse();
    ASSERT_FALSE(client.Send(Get("/missing")));
    client.ReadResponse();
  }
  EXPECT_TRUE(WaitUntil([&] { return server_->counters().connections_open == 0; }));
  const HttpServerCounters c = server_->counters();
  EXPECT_EQ(c.connections_accepted, 1u);
  EXPECT_EQ(c.requests, 2u);
  EXPECT_EQ(c.responses_2xx, 1u);
  EXPECT_EQ(c.responses_4xx, 1u);
  EXPECT_EQ(c.responses_5xx, 0u);
  EXPECT_EQ(c.bytes_received, Get("/api/a").size() + Get("/missing").size());
  EXPECT_GT(c.bytes_sent, 0u);
}

TEST_F(HttpServerTest, StartFailsWhenThePortIsTaken) {
  StartServer(EchoRouter());
  asio::io_context other_io;
  HttpServerOptions options = TestOptions();
  options.port = port();
  HttpServer second(other_io, options, HttpRouter());
  const absl::Status status = second.Start();
  EXPECT_EQ(status, absl::UnavailableError(absl::StrCat("cannot listen on 127.0.0.1:", port(),
                                                        ": Address already in use")));
}

// --- Router, headers, decoding ------------------------------------------------

TEST(HttpRouter, ExactBeatsPrefixAndLongestPrefixWins) {
  HttpRouter router;
  auto handler = [](int) { return EchoHandler(); };  // distinct objects
  ASSERT_TRUE(router.AddExact("/healthz", handler(0)).ok());
  ASSERT_TRUE(router.AddPrefix("/plugins/", handler(1)).ok());
  ASSERT_TRUE(router.AddPrefix("/plugins/special/", handler(2)).ok());
  ASSERT_TRUE(router.AddPrefix("/", handler(3)).ok());
  const HttpHandler* healthz = router.Find("/healthz");
  const HttpHandler* plugins = router.Find("/plugins/x");
  const HttpHandler* special = router.Find("/plugins/special/y");
  const HttpHandler* root = router.Find("/healthz/more");
  EXPECT_NE(healthz, nullptr);
  EXPECT_NE(plugins, nullptr);
  EXPECT_NE(special, nullptr);
  EXPECT_NE(plugins, special);
  EXPECT_NE(root, healthz);
  EXPECT_EQ(root, router.Find("/other"));

  HttpRouter empty;
  EXPECT_EQ(empty.Find("/x"), nullptr);
  EXPECT_EQ(router.AddExact("/healthz", handler(0)),
            absl::AlreadyExistsError("route '/healthz' is already bound"));
  EXPECT_EQ(router.AddPrefix("api/", handler(0)),
            absl::InvalidArgumentError("route 'api/' must start with '/'"));
}

TEST(HttpHeaders, LookupIgnoresCaseAndKeepsRepeats) {
  HttpHeaders headers;
  headers.Add("Set-Cookie", "a=1");
  headers.Add("set-cookie", "b=2");
  headers.Add("Content-Type", "text/plain");
  EXPECT_EQ(headers.Get("SET-COOKIE").value(), "a=1");
  EXPECT_THAT(headers.GetAll("Set-Cookie"), ::testing::ElementsAre("a=1", "b=2"));
  EXPECT_FALSE(headers.Get("X-Missing").has_value());
  headers.Set("CONTENT-TYPE", "application/json");
  EXPECT_EQ(headers.Get("content-type").value(), "application/json");
  EXPECT_EQ(headers.Remove("set-COOKIE"), 2u);
  EXPECT_EQ(headers.size(), 1u);
}

TEST(UrlDecoding, DecodesPercentEscapesAndRejectsBrokenOnes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc+d").value(), "a b/c+d");
  EXPECT_EQ(FormDecode("a%20b+c").value(), "a b c");
  EXPECT_EQ(PercentDecode("%e2%82%AC").value(), "\xe2\x82\xac");
  EXPECT_EQ(PercentDecode("ab%2").status(),
            absl::InvalidArgumentError("bad percent-encoding at offset 2"));
  EXPECT_EQ(PercentDecode("%zz").status(),
            absl::InvalidArgumentError("bad percent-encoding at offset 0"));
}

TEST(UrlDecoding, ParseQuerySplitsAndDecodesInOrder) {
  const auto pairs = ParseQuery("a=1&b=x%20y+z&&flag&a=2&e=");
  ASSERT_TRUE(pairs.ok());
  using Pair = std::pair<std::string, std::string>;
  EXPECT_THAT(*pairs, ::testing::ElementsAre(Pair{"a", "1"}, Pair{"b", "x y z"}, Pair{"flag", ""},
                                             Pair{"a", "2"}, Pair{"e", ""}));
  EXPECT_EQ(ParseQuery("a=%G1").status(),
            absl::InvalidArgumentError("bad percent-encoding at offset 0"));
}

}  // namespace
}  // namespace tracim::broker
