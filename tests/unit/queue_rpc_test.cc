// CompletionQueueThread and the unary calls served and made on it
// (broker/common/queue_rpc.h), over a real Unix socket.
#include "broker/common/queue_rpc.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "broker/common/completion_queue_thread.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace tracim::broker {
namespace {

namespace health = grpc::health::v1;
using std::chrono::milliseconds;

constexpr auto kTimeout = std::chrono::seconds(15);

// A completion that blocks the queue's thread until released.
struct Blocker final : CompletionQueueThread::Completion {
  void OnComplete(bool) override {
    entered.Notify();
    release.WaitForNotification();
    finished = true;
  }
  absl::Notification entered;
  absl::Notification release;
  bool finished = false;
};

TEST(CompletionQueueThreadTest, BarrierWaitsForWhatTheThreadIsRunning) {
  CompletionQueueThread queue("test-queue");
  Blocker blocker;
  grpc::Alarm alarm;
  alarm.Set(queue.cq(), gpr_time_0(GPR_CLOCK_MONOTONIC), CompletionQueueThread::Tag(&blocker));
  blocker.entered.WaitForNotification();
  auto barrier = std::async(std::launch::async, [&] {
    queue.Barrier();
    return blocker.finished;
  });
  // Still blocked: the barrier cannot have been reached.
  EXPECT_EQ(barrier.wait_for(milliseconds(100)), std::future_status::timeout);
  blocker.release.Notify();
  ASSERT_EQ(barrier.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(barrier.get());
}

TEST(CompletionQueueThreadTest, BarrierAfterShutdownReturnsAtOnce) {
  CompletionQueueThread queue("test-queue");
  queue.Shutdown();
  queue.Barrier();
  queue.Shutdown();  // idempotent
}

// The CPU-time clock of `queue`'s thread, from a completion run on it; nullopt
// if that completion did not run in time.
std::optional<clockid_t> CpuClockOf(CompletionQueueThread& queue) {
  struct Clock final : CompletionQueueThread::Completion {
    void OnComplete(bool) override {
      if (pthread_getcpuclockid(pthread_self(), &clock) == 0) found = true;
      done.Notify();
    }
    clockid_t clock{};
    bool found = false;
    absl::Notification done;
  };
  // Owned by the alarm's completion if it has not run in time: left to leak
  // then, as the completion may still come.
  auto* completion = new Clock;
  grpc::Alarm alarm;
  alarm.Set(queue.cq(), gpr_time_0(GPR_CLOCK_MONOTONIC), CompletionQueueThread::Tag(completion));
  if (!completion->done.WaitForNotificationWithTimeout(absl::Seconds(15))) {
    alarm.Cancel();
    return std::nullopt;
  }
  std::optional<clockid_t> clock;
  if (completion->found) clock = completion->clock;
  delete completion;
  return clock;
}

// CPU time used so far by the thread whose CPU-time clock is `clock`.
std::chrono::nanoseconds CpuTime(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

TEST(CompletionQueueThreadTest, WithinItsIdlePollTheThreadKeepsPolling) {
  // Far longer than the test: the thread polls from its first completion on.
  CompletionQueueThread queue("test-queue", std::chrono::seconds(60));
  const std::optional<clockid_t> clock = CpuClockOf(queue);
  ASSERT_TRUE(clock.has_value());
  // Nothing else is queued: a thread that slept would use no CPU at all.
  const std::chrono::nanoseconds start = CpuTime(*clock);
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (CpuTime(*clock) - start < milliseconds(20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_GE(CpuTime(*clock) - start, milliseconds(20));
}

TEST(CompletionQueueThreadTest, OnceItsIdlePollIsOverTheThreadSleeps) {
  for (const std::chrono::microseconds idle_poll :
       {std::chrono::microseconds(0), std::chrono::microseconds(1000)}) {
    SCOPED_TRACE(idle_poll.count());
    CompletionQueueThread queue("test-queue", idle_poll);
    const std::optional<clockid_t> clock = CpuClockOf(queue);
    ASSERT_TRUE(clock.has_value());
    // A window of 100 ms in which the thread used (almost) no CPU: one that
    // kept polling would use most of it, even on a loaded machine.
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    std::chrono::nanoseconds used{};
    do {
      const std::chrono::nanoseconds before = CpuTime(*clock);
      std::this_thread::sleep_for(milliseconds(100));
      used = CpuTime(*clock) - before;
    } while (used >= milliseconds(5) && std::chrono::steady_clock::now() < deadline);
    EXPECT_LT(used, milliseconds(5));
  }
}

// A grpc.health.v1 server whose Check is served with ServeUnary by
// `handler`, and a client.
class QueueRpcTest : public ::testing::Test {
 protected:
  void Serve(UnaryHandler<health::HealthCheckRequest, health::HealthCheckResponse> handler) {
    const std::string address = "unix:" + (dir_.path() / "s.sock").string();
    grpc::ServerBuilder builder;
    queue_ = CompletionQueueThread::ForServer("test-queue", builder);
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ServeUnary(*queue_, service_, &health::Health::AsyncService::RequestCheck, std::move(handler));
    stub_ =
        health::Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }

  ~QueueRpcTest() override {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + kTimeout);
      server_->Wait();
    }
    if (queue_ != nullptr) queue_->Shutdown();
  }

  grpc::Status Check(const std::string& service, health::HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTimeout);
    health::HealthCheckRequest request;
    request.set_service(service);
    return stub_->Check(&context, request, response);
  }

  tracim::testing::TempDir dir_;
  health::Health::AsyncService service_;
  std::unique_ptr<CompletionQueueThread> queue_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<health::Health::Stub> stub_;
};

TEST_F(QueueRpcTest, AnswersWithTheResponseOrTheError) {
  Serve([](grpc::ServerContext&, const health::HealthCheckRequest& request,
           health::HealthCheckResponse& response, UnaryDone done) {
    if (request.service() == "bad") {
      response.set_status(health::HealthCheckResponse::SERVING);  // not sent with an error
      done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad service"));
      return;
    }
    response.set_status(health::HealthCheckResponse::NOT_SERVING);
    done(grpc::Status::OK);
  });
  health::HealthCheckResponse response;
  ASSERT_TRUE(Check("good", &response).ok());
  EXPECT_EQ(response.status(), health::HealthCheckResponse::NOT_SERVING);
  grpc::Status status = Check("bad", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "bad service");
}

// Calls run side by side: the next call is requested as soon as one
// arrives, and a call is answered later, from another thread.
TEST_F(QueueRpcTest, CallsAnsweredLaterFromAnotherThreadRunSideBySide) {
  absl::Mutex mu;
  std::vector<std::pair<std::string, UnaryDone>> waiting;
  Serve([&](grpc::ServerContext&, const health::HealthCheckRequest& request,
            health::HealthCheckResponse& response, UnaryDone done) {
    response.set_status(health::HealthCheckResponse::SERVING);
    absl::MutexLock lock(&mu);
    waiting.emplace_back(request.service(), done);
  });
  constexpr int kCalls = 3;
  std::vector<std::future<grpc::Status>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::async(std::launch::async, [this, i] {
      health::HealthCheckResponse response;
      return Check("call" + std::to_string(i), &response);
    }));
  }
  // Every call is in the handler's hands, none answered yet.
  {
    absl::MutexLock lock(&mu);
    auto all_waiting = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return waiting.size() == kCalls; };
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_waiting), absl::Seconds(15)));
  }
  std::thread answerer([&] {
    absl::MutexLock lock(&mu);
    for (auto& [name, done] : waiting) done(grpc::Status::OK);
  });
  answerer.join();
  for (auto& call : calls) {
    ASSERT_EQ(call.wait_for(kTimeout), std::future_status::ready);
    EXPECT_TRUE(call.get().ok());
  }
}

TEST_F(QueueRpcTest, UnaryCallRunsDoneOnTheQueuesThreadWithTheResult) {
  Serve([](grpc::ServerContext& context, const health::HealthCheckRequest& request,
           health::HealthCheckResponse& response, UnaryDone done) {
    auto it = context.client_metadata().find("x-test");
    const bool tagged = it != context.client_metadata().end() && it->second == "yes";
    response.set_status(tagged ? health::HealthCheckResponse::SERVING
                               : health::HealthCheckResponse::UNKNOWN);
    done(request.service().empty() ? grpc::Status::OK
                                   : grpc::Status(grpc::StatusCode::NOT_FOUND, "no such service"));
  });
  struct Result {
    grpc::Status status;
    health::HealthCheckResponse response;
    std::thread::id thread;
  };
  auto call = [&](const std::string& service) {
    std::promise<Result> result;
    auto* unary = new UnaryCall<health::HealthCheckResponse>(
        [&result](const grpc::Status& status, const health::HealthCheckResponse& response) {
          result.set_value({status, response, std::this_thread::get_id()});
        });
    unary->context().AddMetadata("x-test", "yes");
    unary->context().set_deadline(std::chrono::system_clock::now() + kTimeout);
    health::HealthCheckRequest request;
    request.set_service(service);
    unary->Start(*queue_, [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
      return stub_->PrepareAsyncCheck(context, request, cq);
    });
    return result.get_future().get();
  };
  // The queue's thread id, from a barrier-like completion.
  std::promise<std::thread::id> queue_thread;
  struct Probe final : CompletionQueueThread::Completion {
    explicit Probe(std::promise<std::thread::id>& p) : p(p) {}
    void OnComplete(bool) override { p.set_value(std::this_thread::get_id()); }
    std::promise<std::thread::id>& p;
  } probe(queue_thread);
  grpc::Alarm alarm;
  alarm.Set(queue_->cq(), gpr_time_0(GPR_CLOCK_MONOTONIC), CompletionQueueThread::Tag(&probe));
  const std::thread::id queue_id = queue_thread.get_future().get();

  Result ok = call("");
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.response.status(), health::HealthCheckResponse::SERVING);
  EXPECT_EQ(ok.thread, queue_id);
  Result missing = call("other");
  EXPECT_EQ(missing.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.status.error_message(), "no such service");
  EXPECT_EQ(missing.thread, queue_id);
}

TEST_F(QueueRpcTest, UnaryCallPastItsDeadlineReportsDeadlineExceeded) {
  std::optional<UnaryDone> held;  // never answered before the deadline
  absl::Notification arrived;
  Serve([&](grpc::ServerContext&, const health::HealthCheckRequest&, health::HealthCheckResponse&,
            UnaryDone done) {
    held = done;
    arrived.Notify();
  });
  std::promise<grpc::Status> result;
  auto* unary = new UnaryCall<health::HealthCheckResponse>(
      [&result](const grpc::Status& status, const health::HealthCheckResponse&) {
        result.set_value(status);
      });
  unary->context().set_deadline(std::chrono::system_clock::now() + milliseconds(200));
  health::HealthCheckRequest request;
  unary->Start(*queue_, [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
    return stub_->PrepareAsyncCheck(context, request, cq);
  });
  grpc::Status status = result.get_future().get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server side is answered late (the server's shutdown waits for it).
  arrived.WaitForNotification();
  (*held)(grpc::Status::OK);
}

}  // namespace
}  // namespace tracim::broker
