// Event delivery throughput and memory, with the broker's real components in
// this process, real plugin processes and the real Backend gRPC service:
//   1. events/s published through Backend.Publish and acknowledged by one
//      C++ plugin (bench_sink: subscribes on_user_created, does nothing);
//   2. the same with 4 plugins at once (each acknowledges every event);
//   3. broker RSS while one plugin never acknowledges and --stuck-events
//      events are published: memory must stay bounded by the queue size.
//      Read when the last Publish returned (rss_at_return: includes events
//      handed over and not yet queued or dropped by the plugin's strand) and
//      once every event was queued or dropped (rss_after).
//
//   events_bench [--events N] [--batch B] [--publishers P] [--plugins LIST]
//                [--stuck-events M] [--queue Q] [--idle-poll-us U]
// Defaults: N = 500000, B = 1000 events per Publish call, P = 1 publishing
// thread (each with one call in flight), LIST = 1,4 (the plugin counts to
// measure), M = 1000000 (0 skips case 3), Q = 10000, U = the broker's
// default broker.idle_poll_us (200).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/thread_pool.hpp"
#include "broker/app/runtime_dir.h"
#include "broker/config/broker_config.h"
#include "broker/control/control_server.h"
#include "broker/discovery/plugin_discovery.h"
#include "broker/process/posix_process_launcher.h"
#include "broker/supervisor/plugin_host.h"
#include "spdlog/spdlog.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"

using namespace tracim::broker;
namespace v1 = tracim::plugin::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kToken[] = "events-bench-token-0123456789";

// User + system CPU time of `who` (RUSAGE_SELF, RUSAGE_CHILDREN), seconds.
double CpuSeconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// One broker (host + control socket + io thread) with the given plugins.
class Broker {
 public:
  Broker(const std::filesystem::path& dir, std::vector<PluginManifest> plugins, size_t queue,
         std::chrono::microseconds idle_poll)
      : work_(boost::asio::make_work_guard(io_)), launcher_(io_) {
    PluginHost::Options options;
    options.runner = TRACIM_BENCH_RUNNER;
    options.runtime_dir = dir;
    options.broker_socket = dir / "broker.sock";
    options.event_queue_size = queue;
    options.on_all_settled = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      settled_ = true;
      cv_.notify_all();
    };
    // As in the broker: the calls to plugins share the control server's queue.
    control_ = ControlServer::Create(options.broker_socket, idle_poll);
    options.calls = &control_->queue();
    host_ = std::move(*PluginHost::Create(io_, launcher_, std::move(plugins), options));
    if (absl::Status s = control_->Start(*host_, kToken, {}, blocking_.get_executor()); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::_Exit(1);
    }
    thread_ = std::thread([this] { io_.run(); });
    host_->StartAll();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return settled_; });
    for (auto& p : host_->plugins()) {
      if (p->Status().state() != "ready") {
        std::fprintf(stderr, "plugin %s: %s\n", p->name().c_str(),
                     p->Status().last_exit_reason().c_str());
        std::_Exit(1);
      }
    }
    channel_ = grpc::CreateChannel("unix:" + options.broker_socket.string(),
                                   grpc::InsecureChannelCredentials());
    backend_ = v1::Backend::NewStub(channel_);
  }

  ~Broker() {
    bool done = false;
    host_->StopAll([&] {
      std::lock_guard<std::mutex> lock(mu_);
      done = true;
      cv_.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return done; });
    }
    control_->Shutdown();
    blocking_.join();  // Publish calls answer from it, on the control server's queue
    control_.reset();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // The smallest acknowledged count over the plugins.
  uint64_t MinAcknowledged() {
    uint64_t m = UINT64_MAX;
    for (auto& p : host_->plugins()) m = std::min<uint64_t>(m, p->Status().events_acknowledged());
    return m;
  }

  // Publishes `n` (a multiple of `batch`) on_user_created events in
  // Publish calls of `batch` events, from `publishers` threads with one call
  // in flight each. With `window` > 0, keeps at most `window` events
  // unacknowledged (a sustained rate without overflowing the plugins'
  // queues); 0 publishes flat out.
  void Publish(uint64_t n, uint64_t batch, uint64_t window = 0, int publishers = 1) {
    v1::PublishRequest request;
    for (uint64_t i = 0; i < batch; ++i) {
      auto* e = request.add_events();
      e->set_hook("on_user_created");
      e->mutable_user()->set_user_id(static_cast<int64_t>(i));
      e->mutable_user()->set_public_name("user");
    }
    std::atomic<uint64_t> claimed{0};
    auto publish = [&] {
      while (true) {
        const uint64_t first = claimed.fetch_add(batch);
        if (first >= n) return;
        while (window > 0 && first + batch > MinAcknowledged() + window) {
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        grpc::ClientContext context;
        context.AddMetadata("tracim-backend-token", kToken);
        v1::PublishResponse response;
        grpc::Status status = backend_->Publish(&context, request, &response);
        if (!status.ok()) {
          std::fprintf(stderr, "Publish: %s\n", status.error_message().c_str());
          std::_Exit(1);
        }
      }
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < publishers; ++i) threads.emplace_back(publish);
    publish();
    for (auto& t : threads) t.join();
  }

  // Waits until every plugin acknowledged `n` events; exits if one dropped.
  void WaitAcknowledged(uint64_t n) {
    while (MinAcknowledged() < n) {
      for (auto& p : host_->plugins()) {
        if (p->Status().events_dropped() > 0) {
          std::fprintf(stderr, "plugin %s dropped events\n", p->name().c_str());
          std::_Exit(1);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  PluginHost& host() { return *host_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  PosixProcessLauncher launcher_;
  // The broker's blocking pool, where Backend.Publish does its work.
  boost::asio::thread_pool blocking_{2};
  std::unique_ptr<PluginHost> host_;
  std::unique_ptr<ControlServer> control_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool settled_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Backend::Stub> backend_;
};

PluginManifest Manifest(const std::string& name, std::vector<std::string> command) {
  PluginManifest m;
  m.name = name;
  m.folder = std::filesystem::path(command[0]).parent_path();
  m.command = std::move(command);
  m.version = "1.0.0";
  return m;
}

void Throughput(const std::filesystem::path& dir, int plugins, uint64_t events, uint64_t batch,
                int publishers, size_t queue, std::chrono::microseconds idle_poll) {
  std::vector<PluginManifest> manifests;
  for (int i = 0; i < plugins; ++i) {
    manifests.push_back(Manifest("sink" + std::to_string(i), {TRACIM_BENCH_SINK}));
  }
  auto sub = dir / ("throughput" + std::to_string(plugins));
  std::filesystem::create_directories(sub);
  double seconds = 0, process_cpu = 0;
  uint64_t dropped = 0;
  const double children_before = CpuSeconds(RUSAGE_CHILDREN);
  {
    Broker broker(sub, std::move(manifests), queue, idle_poll);
    const double cpu0 = CpuSeconds(RUSAGE_SELF);
    auto t0 = Clock::now();
    std::thread publisher([&] { broker.Publish(events, batch, queue / 2, publishers); });
    broker.WaitAcknowledged(events);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    process_cpu = CpuSeconds(RUSAGE_SELF) - cpu0;
    publisher.join();
    for (auto& p : broker.host().plugins()) dropped += p->Status().events_dropped();
  }
  // The plugins' CPU time is known once they exited and were reaped (it
  // includes their start and stop, a few ms each).
  const double plugins_cpu = CpuSeconds(RUSAGE_CHILDREN) - children_before;
  // rate: events acknowledged by every plugin per second; deliveries: the
  // broker's total (events x plugins) per second. CPU per event, robust to
  // a noisy machine: this process (broker + publishing client) and the
  // plugin processes, in microseconds per event published.
  std::printf(
      "events_acknowledged plugins=%d events=%llu batch=%llu publishers=%d seconds=%.2f "
      "rate=%.0f/s deliveries=%.0f/s dropped=%llu cpu_us_per_event: broker+client=%.2f "
      "plugins=%.2f\n",
      plugins, static_cast<unsigned long long>(events), static_cast<unsigned long long>(batch),
      publishers, seconds, double(events) / seconds, double(events) * plugins / seconds,
      static_cast<unsigned long long>(dropped), process_cpu * 1e6 / double(events),
      plugins_cpu * 1e6 / double(events));
}

void StuckPlugin(const std::filesystem::path& dir, uint64_t events, uint64_t batch, size_t queue,
                 std::chrono::microseconds idle_poll) {
  auto sub = dir / "stuck";
  std::filesystem::create_directories(sub);
  Broker broker(sub, {Manifest("stuck", {TRACIM_BENCH_TEST_PLUGIN, "--mode=no-ack"})}, queue,
                idle_poll);
  long before = RssKiB();
  auto t0 = Clock::now();
  broker.Publish(events, batch);
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // Backend.Publish returns once the events are stamped and handed to the
  // plugins' strands; those may still be working through them.
  long at_return = RssKiB();
  auto& plugin = *broker.host().plugins().front();
  // Every event queued or dropped (+1: the plugin's on_plugins_loaded).
  auto settled = [&] {
    auto s = plugin.Status();
    return s.events_queued() + s.events_dropped() >= events + 1;
  };
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!settled() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  long after = RssKiB();
  auto status = plugin.Status();
  std::printf(
      "stuck_plugin events=%llu queue=%zu seconds=%.2f rss_before=%ldKiB "
      "rss_at_return=%ldKiB rss_after=%ldKiB queued=%llu dropped=%llu\n",
      static_cast<unsigned long long>(events), queue, seconds, before, at_return, after,
      static_cast<unsigned long long>(status.events_queued()),
      static_cast<unsigned long long>(status.events_dropped()));
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 500000, batch = 1000, stuck_events = 1000000;
  int publishers = 1;
  std::vector<int> plugin_counts = {1, 4};
  size_t queue = 10000;
  // The broker's default (broker.idle_poll_us).
  std::chrono::microseconds idle_poll = absl::ToChronoMicroseconds(BrokerConfig().idle_poll);
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--events") events = std::stoull(argv[i + 1]);
    if (a == "--batch") batch = std::max<uint64_t>(1, std::stoull(argv[i + 1]));
    if (a == "--publishers") publishers = std::max(1, std::stoi(argv[i + 1]));
    if (a == "--stuck-events") stuck_events = std::stoull(argv[i + 1]);
    if (a == "--queue") queue = std::stoull(argv[i + 1]);
    if (a == "--idle-poll-us") idle_poll = std::chrono::microseconds(std::stoll(argv[i + 1]));
    if (a == "--plugins") {
      plugin_counts.clear();
      std::string list = argv[i + 1];
      for (size_t start = 0; start < list.size();) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        plugin_counts.push_back(std::stoi(list.substr(start, comma - start)));
        start = comma + 1;
      }
    }
  }
  // Whole Publish calls only.
  events = (events + batch - 1) / batch * batch;
  spdlog::set_level(spdlog::level::err);
  // As in the broker's main().
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto runtime = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  for (int plugins : plugin_counts) {
    Throughput(runtime->path(), plugins, events, batch, publishers, queue, idle_poll);
  }
  if (stuck_events > 0) StuckPlugin(runtime->path(), stuck_events, batch, queue, idle_poll);
  return 0;
}
