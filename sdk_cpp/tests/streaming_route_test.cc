// Route handlers served by PluginService over a real gRPC server on a Unix
// socket, driven by a raw Plugin.HandleHttp client as the broker drives it:
// streaming routes (echo, download, cancellation, exceptions, memory held),
// buffered routes, and the threading model (streaming handlers never starve
// buffered ones).
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk_cpp/src/http_transport.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/plugin_service.h"
#include "sdk_cpp/src/work_queue.h"
#include "sdk_cpp/tests/http_exchange.h"
#include "tests/common/temp_dir.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::plugin {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr char kSecret[] = "streaming-test-secret";
constexpr size_t kChunk = 64 * 1024;

// Byte `i` of the test bodies: not periodic over a chunk, cheap to check.
char PatternByte(uint64_t i) { return static_cast<char>((i ^ (i >> 8) ^ (i >> 17)) & 0xff); }

std::string PatternChunk(uint64_t offset, size_t size) {
  std::string chunk(size, '\0');
  for (size_t i = 0; i < size; ++i) chunk[i] = PatternByte(offset + i);
  return chunk;
}

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
int64_t ProcStatusKiB(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// Waits until `done` holds, checking every millisecond, at most kTimeout.
template <typename Predicate>
bool WaitUntil(Predicate done) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// What a handler saw, reported to the test thread.
class Observed {
 public:
  void Set(absl::Status status) {
    absl::MutexLock lock(&mu_);
    status_ = std::move(status);
    done_.Notify();
  }
  // The status reported, or DEADLINE_EXCEEDED when none came in time.
  absl::Status Wait() {
    if (!done_.WaitForNotificationWithTimeout(kTimeout)) {
      return absl::DeadlineExceededError("the handler reported nothing");
    }
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

v1::HttpRequestHead Head(const std::string& method, const std::string& path,
                         int64_t content_length = -1) {
  v1::HttpRequestHead head;
  head.set_method(method);
  head.set_path(path);
  head.set_route(path);
  head.set_request_id("req-1");
  head.set_content_length(content_length);
  return head;
}

using Exchanged = tracim::plugin::testing::HttpExchange;

class SdkStreamingRouteTest : public ::testing::Test {
 protected:
  // gRPC stays initialized for the whole process: otherwise the last gRPC
  // object of each test shuts the library down, which may wait for a timer
  // of its executor (up to 10 s after a long stream).
  static void SetUpTestSuite() { grpc_init(); }

  ~SdkStreamingRouteTest() override {
    stub_.reset();
    if (server_ != nullptr) {
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      server_->Wait();
      server_.reset();
    }
    http_queue_.Stop(absl::Now() + absl::Seconds(5));
    service_.reset();  // waits for the streaming handlers
  }

  // Serves the routes registered on manager_ so far.
  void StartServer() {
    ASSERT_TRUE(manager_.status().ok()) << manager_.status();
    service_ = std::make_unique<internal::PluginService>(
        internal::PluginManagerAccess::Registry(manager_), kSecret, event_queue_, http_queue_,
        [](std::string, std::chrono::milliseconds) {},
        [this](std::string_view line) {
          absl::MutexLock lock(&log_mu_);
          log_lines_.emplace_back(line);
        });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir_.path().string() + "/plugin.sock",
                             grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    event_queue_.Start();
    http_queue_.Start();
    stub_ = v1::Plugin::NewStub(grpc::CreateChannel("unix:" + dir_.path().string() + "/plugin.sock",
                                                    grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + kTimeout));
    context->AddMetadata(v1::kSecretMetadataKey, kSecret);
    return context;
  }

  // Sends `head` and `body`, half-closes, then reads the whole response.
  Exchanged Exchange(const v1::HttpRequestHead& head, const std::vector<std::string>& body) {
    auto context = Context();
    return tracim::plugin::testing::ExchangeHttp(*stub_, *context, head, body);
  }

  std::vector<std::string> log_lines() {
    absl::MutexLock lock(&log_mu_);
    return log_lines_;
  }

  const internal::HttpCallStats& stats() const { return service_->http_stats(); }

  tracim::testing::TempDir dir_{"sdk_streaming"};
  PluginManager manager_{"s"};
  internal::WorkQueue event_queue_{1};
  internal::WorkQueue http_queue_{4};
  std::unique_ptr<internal::PluginService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Plugin::Stub> stub_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_lines_ ABSL_GUARDED_BY(log_mu_);
};

void Echo(const HttpRequestHead& request, HttpStream& stream) {
  if (!stream.WriteHead(200, {{"Content-Type", "application/octet-stream"}}).ok()) return;
  while (true) {
    absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
    if (!chunk.ok() || !chunk->has_value()) return;
    if (!stream.Write(**chunk).ok()) return;
  }
}

TEST_F(SdkStreamingRouteTest, Echoes64MiBHoldingOneChunkEachWayAndLittleMemory) {
  manager_.AddStreamingRoute("POST", "/plugins/s/echo", &Echo);
  StartServer();
  constexpr uint64_t kTotal = uint64_t{64} << 20;

  // Warm up the channel and the allocator, then measure from here.
  ASSERT_TRUE(Exchange(Head("POST", "/plugins/s/echo", 5), {"hello"}).status.ok());
  { std::ofstream("/proc/self/clear_refs") << "5"; }  // resets VmHWM to VmRSS
  const int64_t rss_before_kib = ProcStatusKiB("VmRSS");

  auto context = Context();
  auto stream = stub_->HandleHttp(context.get());
  // The response is read and checked as it arrives, never kept.
  uint64_t received = 0;
  uint64_t mismatches = 0;
  std::optional<v1::HttpResponseHead> head;
  std::thread reader([&] {
    v1::HttpResponsePart part;
    while (stream->Read(&part)) {
      if (part.has_head()) {
        head = part.head();
        continue;
      }
      for (char c : part.body()) mismatches += c != PatternByte(received++);
    }
  });
  v1::HttpRequestPart part;
  *part.mutable_head() = Head("POST", "/plugins/s/echo", static_cast<int64_t>(kTotal));
  bool written = stream->Write(part);
  for (uint64_t offset = 0; written && offset < kTotal; offset += kChunk) {
    part.set_body(PatternChunk(offset, kChunk));
    written = stream->Write(part);
  }
  part.Clear();
  stream->WritesDone();
  reader.join();
  const grpc::Status status = stream->Finish();
  const int64_t peak_kib = ProcStatusKiB("VmHWM");

  ASSERT_TRUE(written);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status(), 200);
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(mismatches, 0u);
  // One request chunk waiting for the handler plus one response chunk
  // being written, at most.
  EXPECT_LE(stats().peak_streaming_bytes_held.load(), 2 * kChunk);
  // Client and server share this process: both stream, so the growth is
  // gRPC's flow-control windows, not the 64 MiB body. (ASan's quarantine
  // keeps freed chunks resident: the figure means nothing there.)
#if !defined(__SANITIZE_ADDRESS__)
  const int64_t growth_kib = peak_kib - rss_before_kib;
  RecordProperty("rss_growth_kib", static_cast<int>(growth_kib));
  std::cerr << "RSS growth while echoing 64 MiB: " << growth_kib << " KiB" << std::endl;
  EXPECT_LT(growth_kib, 32 * 1024);
#else
  (void)peak_kib;
  (void)rss_before_kib;
#endif
}

TEST_F(SdkStreamingRouteTest, StreamsADownloadIn64KiBPartsWrittenInLargerChunks) {
  manager_.AddStreamingRoute("GET", "/plugins/s/download",
                             [](const HttpRequestHead& request, HttpStream& stream) {
                               if (!stream.WriteHead(200, {{"Content-Length", "4194304"}}).ok())
                                 return;
                               for (uint64_t offset = 0; offset < (4u << 20); offset += 1u << 20) {
                                 if (!stream.Write(PatternChunk(offset, 1u << 20)).ok()) return;
                               }
                             });
  StartServer();
  Exchanged result = Exchange(Head("GET", "/plugins/s/download"), {});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_TRUE(result.head.has_value());
  EXPECT_EQ(result.head->status(), 200);
  ASSERT_EQ(result.head->headers_size(), 1);
  EXPECT_EQ(result.head->headers(0).name(), "Content-Length");
  EXPECT_EQ(result.head->headers(0).value(), "4194304");
  EXPECT_EQ(result.chunk_sizes.size(), 64u);
  EXPECT_THAT(result.chunk_sizes, Each(kChunk));
  EXPECT_EQ(result.body, PatternChunk(0, 4u << 20));
}

TEST_F(SdkStreamingRouteTest, HandsTheHeadWithParamsUserAndContentLengthToTheHandler) {
  Observed observed;
  manager_.AddStreamingRoute(
      "PUT", "/plugins/s/files/{name}", [&](const HttpRequestHead& request, HttpStream& stream) {
        std::string body;
        while (true) {
          absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
          if (!chunk.ok()) return observed.Set(chunk.status());
          if (!*chunk) break;
          body += **chunk;
        }
        const std::string seen = absl::StrCat(
            request.method, " ", request.path, " ", request.route,
            " name=", request.path_params.at("name"), " q=", request.QueryParam("q").value_or(""),
            " x=", request.Header("x-test").value_or(""),
            " user=", request.user ? request.user->username() : "-", " id=", request.request_id,
            " length=", request.content_length.value_or(0), " body=", body);
        (void)stream.WriteHead(201);
        (void)stream.Write(seen);
        observed.Set(absl::OkStatus());
      });
  StartServer();
  v1::HttpRequestHead head = Head("PUT", "/plugins/s/files/a b", 11);
  head.set_route("/plugins/s/files/{name}");
  (*head.mutable_path_params())["name"] = "a b";
  head.set_query("q=1%202");
  v1::HttpHeader* header = head.add_headers();
  header->set_name("X-Test");
  header->set_value("yes");
  head.mutable_user()->set_username("bob");
  Exchanged result = Exchange(head, {"hello", " ", "world"});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_TRUE(observed.Wait().ok());
  EXPECT_EQ(result.head->status(), 201);
  EXPECT_EQ(result.body,
            "PUT /plugins/s/files/a b /plugins/s/files/{name} name=a b q=1 2 x=yes user=bob "
            "id=req-1 length=11 body=hello world");
}

TEST_F(SdkStreamingRouteTest, AClientCancellingADownloadFailsTheHandlersWriteAndFreesTheCall) {
  Observed observed;
  std::atomic<int> parts_written{0};
  manager_.AddStreamingRoute("GET", "/plugins/s/endless",
                             [&](const HttpRequestHead& request, HttpStream& stream) {
                               absl::Status status = stream.WriteHead(200);
                               const std::string chunk = PatternChunk(0, kChunk);
                               while (status.ok()) {
                                 status = stream.Write(chunk);
                                 if (status.ok()) parts_written++;
                               }
                               observed.Set(status);
                             });
  StartServer();
  auto context = Context();
  auto stream = stub_->HandleHttp(context.get());
  v1::HttpRequestPart part;
  *part.mutable_head() = Head("GET", "/plugins/s/endless");
  ASSERT_TRUE(stream->Write(part));
  stream->WritesDone();
  v1::HttpResponsePart response;
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(stream->Read(&response));  // head + 10 parts
  context->TryCancel();
  EXPECT_EQ(observed.Wait(), absl::CancelledError(internal::kCancelledMessage));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Writes 1-9 returned before the 10th started; the 10th may report the
  // cancellation although its part arrived.
  EXPECT_GE(parts_written.load(), 9);
  // The handler returned and the reactor is gone: nothing leaks.
  EXPECT_TRUE(WaitUntil([&] {
    return stats().live_calls.load() == 0 && stats().running_streaming_handlers.load() == 0;
  }));
  EXPECT_THAT(log_lines(), IsEmpty());
}

TEST_F(SdkStreamingRouteTest, AClientCancellingAnUploadFailsTheHandlersRead) {
  Observed observed;
  std::atomic<int> chunks_read{0};
  manager_.AddStreamingRoute("POST", "/plugins/s/upload",
                             [&](const HttpRequestHead& request, HttpStream& stream) {
                               while (true) {
                                 absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
                                 if (!chunk.ok()) return observed.Set(chunk.status());
                                 if (!*chunk) return observed.Set(absl::OkStatus());
                                 chunks_read++;
                               }
                             });
  StartServer();
  auto context = Context();
  auto stream = stub_->HandleHttp(context.get());
  v1::HttpRequestPart part;
  *part.mutable_head() = Head("POST", "/plugins/s/upload", 100 * kChunk);
  ASSERT_TRUE(stream->Write(part));
  for (int i = 0; i < 3; ++i) {
    part.set_body(PatternChunk(0, kChunk));
    ASSERT_TRUE(stream->Write(part));
  }
  ASSERT_TRUE(WaitUntil([&] { return chunks_read.load() == 3; }));
  context->TryCancel();
  EXPECT_EQ(observed.Wait(), absl::CancelledError(internal::kCancelledMessage));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitUntil([&] {
    return stats().live_calls.load() == 0 && stats().running_streaming_handlers.load() == 0;
  }));
}

TEST_F(SdkStreamingRouteTest, ABodyShorterThanItsContentLengthIsACancelledRead) {
  Observed observed;
  manager_.AddStreamingRoute("POST", "/plugins/s/upload",
                             [&](const HttpRequestHead& request, HttpStream& stream) {
                               while (true) {
                                 absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
                                 if (!chunk.ok()) return observed.Set(chunk.status());
                                 if (!*chunk) break;
                               }
                               observed.Set(absl::OkStatus());
                               (void)stream.WriteHead(204);
                             });
  StartServer();
  Exchanged result = Exchange(Head("POST", "/plugins/s/upload", 10), {"12345"});
  EXPECT_EQ(observed.Wait(), absl::CancelledError(internal::kCancelledMessage));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(result.status.error_message(), internal::kCancelledMessage);
  EXPECT_FALSE(result.head.has_value());
}

TEST_F(SdkStreamingRouteTest, AnExceptionBeforeTheHeadIsA500WithItsMessage) {
  manager_.AddStreamingRoute("GET", "/plugins/s/early", [](const HttpRequestHead&, HttpStream&) {
    throw std::runtime_error("disk \"full\"");
  });
  StartServer();
  Exchanged result = Exchange(Head("GET", "/plugins/s/early"), {});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.head->status(), 500);
  EXPECT_EQ(result.body, R"({"message":"disk \"full\""})");
  EXPECT_THAT(log_lines(), ElementsAre("route GET /plugins/s/early threw: disk \"full\""));
}

TEST_F(SdkStreamingRouteTest, AnExceptionAfterTheHeadEndsTheCallWithInternal) {
  manager_.AddStreamingRoute("GET", "/plugins/s/late",
                             [](const HttpRequestHead&, HttpStream& stream) {
                               if (!stream.WriteHead(200).ok()) return;
                               if (!stream.Write("partial").ok()) return;
                               throw std::runtime_error("boom");
                             });
  StartServer();
  Exchanged result = Exchange(Head("GET", "/plugins/s/late"), {});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(result.status.error_message(),
            "route GET /plugins/s/late threw after the response head: boom");
  EXPECT_EQ(result.head->status(), 200);
  EXPECT_EQ(result.body, "partial");
  EXPECT_THAT(log_lines(),
              ElementsAre("route GET /plugins/s/late threw after the response head: boom"));
}

TEST_F(SdkStreamingRouteTest, AHandlerReturningWithoutAHeadGetsA500) {
  manager_.AddStreamingRoute("GET", "/plugins/s/silent",
                             [](const HttpRequestHead&, HttpStream&) {});
  StartServer();
  Exchanged result = Exchange(Head("GET", "/plugins/s/silent"), {});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.head->status(), 500);
  EXPECT_EQ(result.body,
            R"({"message":"the streaming route handler returned without a response head"})");
  EXPECT_THAT(log_lines(), ElementsAre("route GET /plugins/s/silent: the streaming route handler "
                                       "returned without a response head"));
}

TEST_F(SdkStreamingRouteTest, BufferedRoutesStillGetTheWholeBodyAndStreamTheirResponse) {
  manager_.AddRoute("POST", "/plugins/s/buffered/{id}", [](const HttpRequest& request) {
    return HttpResponse::Text(
        200, absl::StrCat(
                 request.path_params.at("id"), ":", request.body, ":",
                 std::string(200000 - request.body.size() - 2 - request.path_params.at("id").size(),
                             '.')));
  });
  StartServer();
  v1::HttpRequestHead head = Head("POST", "/plugins/s/buffered/7", 9);
  head.set_route("/plugins/s/buffered/{id}");
  (*head.mutable_path_params())["id"] = "7";
  Exchanged result = Exchange(head, {"one", "two", "six"});
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.head->status(), 200);
  EXPECT_EQ(result.body.substr(0, 12), "7:onetwosix:");
  EXPECT_EQ(result.body.size(), 200000u);
  EXPECT_THAT(result.chunk_sizes, ElementsAre(65536, 65536, 65536, 3392));
}

TEST_F(SdkStreamingRouteTest, AnswersAnUnknownPathWith404AndAnotherMethodWith405) {
  manager_.AddStreamingRoute("POST", "/plugins/s/echo", &Echo);
  StartServer();
  v1::HttpRequestHead head = Head("GET", "/plugins/s/nothing");
  head.clear_route();
  Exchanged missing = Exchange(head, {});
  ASSERT_TRUE(missing.status.ok()) << missing.status.error_message();
  EXPECT_EQ(missing.head->status(), 404);
  EXPECT_EQ(missing.body, R"({"message":"no route for /plugins/s/nothing"})");
  head.set_path("/plugins/s/echo");
  Exchanged other = Exchange(head, {"ignored"});
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(other.head->status(), 405);
  EXPECT_EQ(other.body, R"({"message":"method GET not allowed on /plugins/s/echo"})");
}

// Six streaming handlers blocked on clients that send nothing hold six
// threads, more than the HTTP pool's four: buffered routes and further
// streaming routes are still served.
TEST_F(SdkStreamingRouteTest, BlockedStreamingHandlersStarveNeitherBufferedNorStreamingRoutes) {
  manager_.AddStreamingRoute("POST", "/plugins/s/echo", &Echo);
  manager_.AddRoute("GET", "/plugins/s/ping",
                    [](const HttpRequest&) { return HttpResponse::Text(200, "pong"); });
  StartServer();
  struct Blocked {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::HttpRequestPart, v1::HttpResponsePart>> stream;
  };
  std::vector<Blocked> blocked;
  for (int i = 0; i < 6; ++i) {
    Blocked call{Context(), nullptr};
    call.stream = stub_->HandleHttp(call.context.get());
    v1::HttpRequestPart part;
    *part.mutable_head() = Head("POST", "/plugins/s/echo");
    ASSERT_TRUE(call.stream->Write(part));
    blocked.push_back(std::move(call));
  }
  ASSERT_TRUE(WaitUntil([&] { return stats().running_streaming_handlers.load() == 6; }));

  Exchanged ping = Exchange(Head("GET", "/plugins/s/ping"), {});
  ASSERT_TRUE(ping.status.ok()) << ping.status.error_message();
  EXPECT_EQ(ping.body, "pong");
  Exchanged echo = Exchange(Head("POST", "/plugins/s/echo", 4), {"ab", "cd"});
  ASSERT_TRUE(echo.status.ok()) << echo.status.error_message();
  EXPECT_EQ(echo.body, "abcd");

  for (Blocked& call : blocked) {
    v1::HttpRequestPart part;
    part.set_body("x");
    ASSERT_TRUE(call.stream->Write(part));
    call.stream->WritesDone();
    v1::HttpResponsePart response;
    std::string body;
    while (call.stream->Read(&response)) {
      body += response.has_head() ? response.head().body() : response.body();
    }
    EXPECT_TRUE(call.stream->Finish().ok());
    EXPECT_EQ(body, "x");
  }
  EXPECT_TRUE(WaitUntil([&] { return stats().live_calls.load() == 0; }));
}

}  // namespace
}  // namespace tracim::plugin
