// Plugin route proxy: throughput, latency and memory of the real broker
// binary forwarding HTTP to a real plugin process (tests/plugins/route_plugin),
// side by side with the same plugin binary called directly over gRPC.
//   1. 64 connections: wrk against GET /plugins/rp/ping through the broker,
//      then 64 concurrent HandleHttp calls straight to a second instance of
//      the plugin (same binary, same route): requests/s, p50, p99, and the
//      CPU time per request of the broker and of each plugin process;
//   2. 1 connection, the same two ways: p50/p99 and the broker's added p50
//      (against the cheapest client: the completion-queue API, drained by
//      the calling thread, in a process of its own; the callback-API client
//      of case 1, one call at a time, is printed too);
//      and, as the floor of any HTTP front, a 404 the broker answers itself
//      and the same answer from a bare blocking responder thread (the
//      machine's loopback HTTP round trip, no broker code at all);
//   3. 1 GiB up through echo and 1 GiB down through download/{size}, with
//      the broker's VmRSS sampled: memory must stay flat.
// The cases alternate (broker, direct) --rounds times; medians are printed.
//
//   route_bench [--seconds S] [--connections C] [--rounds R] [--stream-bytes N]
// Defaults: S = 10, C = 64, R = 3, N = 1 GiB (0 skips case 3). Needs wrk.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_process.h"
#include "bench/ping_call.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace {

namespace v1 = tracim::plugin::v1;
using tracim::bench::Captured;
using tracim::bench::CompletionQueuePing;
using tracim::bench::ContextSwitches;
using tracim::bench::CpuSeconds;
using tracim::bench::Median;
using tracim::bench::PingAnswer;
using tracim::bench::PreparePingCall;
using tracim::bench::RunCaptured;
using tracim::bench::Spawn;
using tracim::bench::Stop;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kDirectSecret[] = "route-bench-direct-secret";

struct Figures {
  double rps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double requests = 0;  // completed in the run
};

long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The broker with the route plugin "rp"; its output goes to a log file.
class Broker {
 public:
  explicit Broker(const fs::path& dir) {
    const fs::path plugin = dir / "plugins" / "tracim_backend_rp";
    fs::create_directories(plugin);
    std::ofstream(plugin / "plugin.json")
        << "{\"command\": [\"" << TRACIM_BENCH_ROUTE_PLUGIN << "\"], \"version\": \"1.0.0\"}";
    std::ofstream(dir / "broker.ini") << "[app:main]\n"
                                         "plugin.folder_path = %(here)s/plugins\n"
                                         "broker.state_dir = %(here)s/var\n"
                                         "broker.runtime_dir = %(here)s/run\n"
                                         "broker.listen = 127.0.0.1:0\n"
                                         "broker.log_level = info\n"
                                         "broker.route_timeout_ms = 600000\n"
                                         "backend.admin_password = bench-admin-password\n";
    log_ = dir / "broker.log";
    int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_ = Spawn({TRACIM_BENCH_BROKER, "--config", (dir / "broker.ini").string()}, {}, fd);
    close(fd);
  }
  ~Broker() { Stop(pid_); }
  pid_t pid() const { return pid_; }

  // Where its output goes (the listening port is read from it).
  const fs::path& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  fs::path log_;
};

// ---------------------------------------------------------------------------
// HTTP (for readiness and streaming).

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Sends `request`, then reads until `total` bytes of response were
// received (head included) or the connection ends; returns bytes received.
uint64_t Drain(int fd, uint64_t total) {
  std::vector<char> buf(1 << 20);
  uint64_t got = 0;
  while (got < total) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<uint64_t>(n);
  }
  return got;
}

bool PingOk(int port) {
  int fd = Connect(port);
  if (fd < 0) return false;
  const std::string req = "GET /plugins/rp/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  SendAll(fd, req.data(), req.size());
  char buf[512];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  close(fd);
  return n > 12 && std::string(buf, 12) == "HTTP/1.1 200";
}

// ---------------------------------------------------------------------------
// wrk.

double ToMicros(const std::string& value) {
  double v = std::stod(value);
  if (value.find("us") != std::string::npos) return v;
  if (value.find("ms") != std::string::npos) return v * 1000;
  if (value.find('s') != std::string::npos) return v * 1e6;
  return v;
}

// The least an HTTP front costs on this machine: one blocking thread that
// answers each read on a connection with a fixed 404 (wrk over one
// connection sends one request at a time), no event loop, no parsing.
class BareResponder {
 public:
  BareResponder() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("bare responder");
      std::exit(1);
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~BareResponder() {
    shutdown(fd_, SHUT_RDWR);  // wakes accept
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  void Run() {
    static constexpr char kResponse[] =
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
        "{\"code\":\"not_found\"}";
    for (;;) {
      const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      const int one = 1;
      setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char buffer[8192];
      while (read(conn, buffer, sizeof buffer) > 0) {
        if (write(conn, kResponse, sizeof kResponse - 1) < 0) break;
      }
      close(conn);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

Figures RunWrk(int port, int connections, int seconds, const char* path = "/plugins/rp/ping") {
  const int threads = std::min(connections, 2);
  const std::string cmd = "wrk -t" + std::to_string(threads) + " -c" + std::to_string(connections) +
                          " -d" + std::to_string(seconds) +
                          "s --latency http://127.0.0.1:" + std::to_string(port) + path + " 2>&1";
  Figures f;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return f;
  char line[512];
  while (fgets(line, sizeof(line), p) != nullptr) {
    std::string l(line);
    char unit[32];
    double value;
    if (sscanf(line, " 50%% %lf%31s", &value, unit) == 2)
      f.p50_us = ToMicros(std::to_string(value) + unit);
    if (sscanf(line, " 99%% %lf%31s", &value, unit) == 2)
      f.p99_us = ToMicros(std::to_string(value) + unit);
    if (sscanf(line, "Requests/sec: %lf", &value) == 1) f.rps = value;
    if (sscanf(line, " %lf requests in", &value) == 1) f.requests = value;
    if ((l.find("Non-2xx") != std::string::npos && std::string(path) == "/plugins/rp/ping") ||
        l.find("Socket errors") != std::string::npos) {
      std::fprintf(stderr, "wrk: %s", line);
    }
  }
  pclose(p);
  return f;
}

// ---------------------------------------------------------------------------
// Direct gRPC: closed-loop HandleHttp calls for GET ping.

class DirectLoad {
 public:
  DirectLoad(v1::Plugin::Stub* stub, int concurrency, Clock::time_point end)
      : stub_(stub), end_(end), outstanding_(concurrency) {
    for (int i = 0; i < concurrency; ++i) new Call(this);
  }

  Figures Wait(double seconds) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return outstanding_ == 0; });
    Figures f;
    f.requests = static_cast<double>(latencies_us_.size());
    f.rps = f.requests / seconds;
    std::sort(latencies_us_.begin(), latencies_us_.end());
    if (!latencies_us_.empty()) {
      f.p50_us = latencies_us_[latencies_us_.size() / 2];
      f.p99_us = latencies_us_[latencies_us_.size() * 99 / 100];
    }
    if (failures_ > 0) std::fprintf(stderr, "direct: %d failed calls\n", failures_);
    return f;
  }

 private:
  class Call final : public grpc::ClientBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart> {
   public:
    explicit Call(DirectLoad* load) : load_(load) {
      start_ = Clock::now();
      PreparePingCall(context_, out_, kDirectSecret, "direct");
      load_->stub_->async()->HandleHttp(&context_, this);
      StartWriteLast(&out_, grpc::WriteOptions());
      StartRead(&in_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (!ok) return;
      answer_.Add(in_);
      StartRead(&in_);
    }
    void OnDone(const grpc::Status& status) override {
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start_).count();
      // Counted only if the plugin really answered the ping.
      const bool ok = status.ok() && answer_.Pong();
      DirectLoad* load = load_;
      delete this;
      load->Done(ok, us);
    }

   private:
    DirectLoad* load_;
    Clock::time_point start_;
    grpc::ClientContext context_;
    v1::HttpRequestPart out_;
    v1::HttpResponsePart in_;
    PingAnswer answer_;
  };

  void Done(bool ok, double us) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ok) {
        latencies_us_.push_back(us);
      } else {
        ++failures_;
      }
      if (Clock::now() >= end_) {
        if (--outstanding_ == 0) cv_.notify_all();
        return;
      }
    }
    new Call(this);
  }

  v1::Plugin::Stub* stub_;
  const Clock::time_point end_;
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_;
  int failures_ = 0;
  std::vector<double> latencies_us_;
};

Figures RunDirect(v1::Plugin::Stub* stub, int concurrency, int seconds) {
  const auto start = Clock::now();
  DirectLoad load(stub, concurrency, start + std::chrono::seconds(seconds));
  Figures f = load.Wait(seconds);
  f.rps = f.rps * seconds / std::chrono::duration<double>(Clock::now() - start).count();
  return f;
}

// Direct gRPC, one call at a time, with the cheapest client: the
// completion-queue API drained by the calling thread (CompletionQueuePing),
// in a fresh process of this program, so that no callback-API object (whose
// threads would share gRPC's polling with it, see grpc_poll_bench) exists
// there. The baseline of the broker's added p50.
int DirectCaseMain(const std::string& socket, int seconds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // as on the broker's channels to plugins
  auto channel =
      grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "cannot reach the direct plugin at %s\n", socket.c_str());
    return 1;
  }
  std::unique_ptr<v1::Plugin::Stub> stub = v1::Plugin::NewStub(channel);
  grpc::CompletionQueue cq;
  std::vector<double> latencies_us;
  int failures = 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    const Clock::time_point call_start = Clock::now();
    if (!CompletionQueuePing(*stub, cq, kDirectSecret, "direct")) {
      ++failures;
      continue;
    }
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - call_start).count());
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  if (failures > 0) std::fprintf(stderr, "direct: %d failed calls\n", failures);
  if (latencies_us.empty()) return 1;
  std::sort(latencies_us.begin(), latencies_us.end());
  std::printf("%f %f %f %f\n", static_cast<double>(latencies_us.size()) / elapsed,
              latencies_us[latencies_us.size() / 2], latencies_us[latencies_us.size() * 99 / 100],
              static_cast<double>(latencies_us.size()));
  return 0;
}

// Runs DirectCaseMain in a child process; its figures (zeros if it failed).
Figures RunDirectOneCall(const fs::path& socket, int seconds) {
  Figures f;
  const Captured run = RunCaptured(
      {"/proc/self/exe", "--direct-case", socket.string(), "--seconds", std::to_string(seconds)});
  if (!run.ok || std::sscanf(run.out.c_str(), "%lf %lf %lf %lf", &f.rps, &f.p50_us, &f.p99_us,
                             &f.requests) != 4) {
    std::fprintf(stderr, "route_bench: the direct one-call case failed: %s\n", run.out.c_str());
    return Figures{};
  }
  return f;
}

// ---------------------------------------------------------------------------
// Streaming memory.

struct StreamFigures {
  long rss_before = 0;
  long rss_max = 0;
  double seconds = 0;
  bool ok = false;
};

// `upload`: POST /echo with a Content-Length body, reading the echo while
// sending; else GET /download/{bytes}.
StreamFigures Stream(int port, pid_t broker, uint64_t bytes, bool upload) {
  StreamFigures f;
  f.rss_before = f.rss_max = RssKiB(broker);
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      f.rss_max = std::max(f.rss_max, RssKiB(broker));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const auto start = Clock::now();
  int fd = Connect(port);
  std::string head = upload ? "POST /plugins/rp/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                  std::to_string(bytes) + "\r\n\r\n"
                            : "GET /plugins/rp/download/" + std::to_string(bytes) +
                                  " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  SendAll(fd, head.data(), head.size());
  std::thread sender;
  if (upload) {
    sender = std::thread([fd, bytes] {
      std::string block(1 << 20, 'u');
      for (uint64_t sent = 0; sent < bytes; sent += block.size()) {
        if (!SendAll(fd, block.data(), std::min<uint64_t>(block.size(), bytes - sent))) return;
      }
    });
  }
  // Chunked echo adds framing; a download is exact: either way at least
  // `bytes` arrive.
  const uint64_t got = Drain(fd, bytes);
  if (sender.joinable()) sender.join();
  close(fd);
  f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  sampling = false;
  sampler.join();
  f.ok = got >= bytes;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 10, connections = 64, rounds = 3;
  uint64_t stream_bytes = uint64_t{1} << 30;
  std::string direct_case;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    // Internal: the one-call direct case, in this process (RunDirectOneCall).
    if (a == "--direct-case") direct_case = argv[i + 1];
    if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (a == "--connections") connections = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--stream-bytes") stream_bytes = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (!direct_case.empty()) return DirectCaseMain(direct_case, seconds);
  if (std::system("command -v wrk > /dev/null 2>&1") != 0) {
    std::fprintf(stderr, "route_bench: wrk is not installed (apt-get install wrk)\n");
    return 2;
  }
  char tmpl[] = "/tmp/route_bench.XXXXXX";
  const fs::path dir = mkdtemp(tmpl);

  // The broker, with "rp"; its port from the log ("HTTP listener on ...").
  Broker broker(dir);
  int port = -1;
  for (int i = 0; i < 500 && port < 0; ++i) {
    std::ifstream log(broker.log());
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    const std::string marker = "HTTP listener on 127.0.0.1:";
    size_t at = text.find(marker);
    if (at != std::string::npos) port = std::stoi(text.substr(at + marker.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a log file
  }
  if (port < 0) {
    std::fprintf(stderr, "route_bench: the broker did not start (see %s)\n", broker.log().c_str());
    return 1;
  }
  for (int i = 0; i < 500 && !PingOk(port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling readiness
  }

  // The same plugin binary, served directly on its own socket.
  const fs::path direct_socket = dir / "direct.sock";
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  pid_t direct = Spawn({TRACIM_BENCH_ROUTE_PLUGIN, "--mode=no-register"},
                       {std::string(v1::kEnvPluginName) + "=rp",
                        std::string(v1::kEnvPluginSecret) + "=" + kDirectSecret,
                        std::string(v1::kEnvPluginSocket) + "=" + direct_socket.string(),
                        std::string(v1::kEnvBrokerSocket) + "=" + (dir / "none.sock").string()},
                       devnull);
  close(devnull);
  auto channel =
      grpc::CreateChannel("unix:" + direct_socket.string(), grpc::InsecureChannelCredentials());
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stub = v1::Plugin::NewStub(channel);

  BareResponder bare;
  std::printf("route_bench: GET /plugins/rp/ping, %d s per case, %d round(s), wrk -c%d\n", seconds,
              rounds, connections);
  // Warm-up.
  RunWrk(port, connections, 1);
  RunDirect(stub.get(), connections, 1);

  std::map<std::string, std::vector<double>> fig;
  for (int r = 0; r < rounds; ++r) {
    // CPU per request of the broker alone and of its plugin (runner
    // included), and of the direct plugin: on a shared machine these vary
    // less than requests/s.
    const double broker_cpu0 = CpuSeconds(broker.pid(), false);
    const double plugins_cpu0 = CpuSeconds(broker.pid(), true) - broker_cpu0;
    const double broker_switches0 = ContextSwitches(broker.pid());
    Figures b = RunWrk(port, connections, seconds);
    const double broker_switches = ContextSwitches(broker.pid()) - broker_switches0;
    const double broker_cpu = CpuSeconds(broker.pid(), false) - broker_cpu0;
    const double plugin_cpu =
        CpuSeconds(broker.pid(), true) - broker_cpu0 - broker_cpu - plugins_cpu0;
    const double direct_cpu0 = CpuSeconds(direct, false);
    Figures d = RunDirect(stub.get(), connections, seconds);
    const double direct_cpu = CpuSeconds(direct, false) - direct_cpu0;
    Figures floor1 = RunWrk(port, 1, seconds, "/plugins/none/ping");
    Figures bare1 = RunWrk(bare.port(), 1, seconds, "/");
    const double broker1_cpu0 = CpuSeconds(broker.pid(), false);
    const double broker1_switches0 = ContextSwitches(broker.pid());
    Figures b1 = RunWrk(port, 1, seconds);
    const double broker1_switches = ContextSwitches(broker.pid()) - broker1_switches0;
    const double broker1_cpu = CpuSeconds(broker.pid(), false) - broker1_cpu0;
    Figures d1 = RunDirectOneCall(direct_socket, seconds);
    Figures d1cb = RunDirect(stub.get(), 1, seconds);
    const double b_cpu_us = b.requests > 0 ? broker_cpu * 1e6 / b.requests : 0;
    const double bp_cpu_us = b.requests > 0 ? plugin_cpu * 1e6 / b.requests : 0;
    const double d_cpu_us = d.requests > 0 ? direct_cpu * 1e6 / d.requests : 0;
    const double b_switches = b.requests > 0 ? broker_switches / b.requests : 0;
    const double b1_cpu_us = b1.requests > 0 ? broker1_cpu * 1e6 / b1.requests : 0;
    const double b1_switches = b1.requests > 0 ? broker1_switches / b1.requests : 0;
    std::printf(
        "round %d: broker %.0f req/s p50 %.0f us p99 %.0f us (CPU/request: broker %.0f us, its "
        "plugin %.0f us) | direct %.0f req/s p50 %.0f us p99 %.0f us (plugin CPU/request %.0f us) "
        "| 1 conn: broker p50 %.0f us p99 %.0f us, direct p50 %.0f us p99 %.0f us (callback "
        "client p50 %.0f us), HTTP alone p50 %.0f us, bare responder p50 %.0f us\n",
        r + 1, b.rps, b.p50_us, b.p99_us, b_cpu_us, bp_cpu_us, d.rps, d.p50_us, d.p99_us, d_cpu_us,
        b1.p50_us, b1.p99_us, d1.p50_us, d1.p99_us, d1cb.p50_us, floor1.p50_us, bare1.p50_us);
    std::fflush(stdout);
    fig["b.rps"].push_back(b.rps);
    fig["b.p50"].push_back(b.p50_us);
    fig["b.p99"].push_back(b.p99_us);
    fig["d.rps"].push_back(d.rps);
    fig["d.p50"].push_back(d.p50_us);
    fig["d.p99"].push_back(d.p99_us);
    fig["b1.rps"].push_back(b1.rps);
    fig["b1.p50"].push_back(b1.p50_us);
    fig["b1.p99"].push_back(b1.p99_us);
    fig["d1.rps"].push_back(d1.rps);
    fig["d1.p50"].push_back(d1.p50_us);
    fig["d1.p99"].push_back(d1.p99_us);
    fig["d1cb.rps"].push_back(d1cb.rps);
    fig["d1cb.p50"].push_back(d1cb.p50_us);
    fig["d1cb.p99"].push_back(d1cb.p99_us);
    // A failed direct case (no call answered) has no baseline.
    if (d1.requests > 0) fig["added"].push_back(b1.p50_us - d1.p50_us);
    fig["floor1.p50"].push_back(floor1.p50_us);
    fig["bare1.p50"].push_back(bare1.p50_us);
    fig["b.cpu"].push_back(b_cpu_us);
    fig["bp.cpu"].push_back(bp_cpu_us);
    fig["d.cpu"].push_back(d_cpu_us);
    fig["ratio"].push_back(bp_cpu_us > 0 ? b_cpu_us / bp_cpu_us : 0);
    fig["b.switches"].push_back(b_switches);
    fig["b1.cpu"].push_back(b1_cpu_us);
    fig["b1.switches"].push_back(b1_switches);
  }
  auto m = [&](const char* k) { return Median(fig[k]); };
  std::printf("\nmedians of %d round(s)           req/s      p50 (us)   p99 (us)\n", rounds);
  std::printf("broker, %3d connections (wrk) %10.0f %10.0f %10.0f\n", connections, m("b.rps"),
              m("b.p50"), m("b.p99"));
  std::printf("direct, %3d concurrent calls  %10.0f %10.0f %10.0f\n", connections, m("d.rps"),
              m("d.p50"), m("d.p99"));
  std::printf("broker,   1 connection  (wrk) %10.0f %10.0f %10.0f\n", m("b1.rps"), m("b1.p50"),
              m("b1.p99"));
  std::printf("direct,   1 call at a time    %10.0f %10.0f %10.0f\n", m("d1.rps"), m("d1.p50"),
              m("d1.p99"));
  std::printf("  (the same, callback client) %10.0f %10.0f %10.0f\n", m("d1cb.rps"), m("d1cb.p50"),
              m("d1cb.p99"));
  if (fig["added"].empty()) {
    std::printf("broker's added p50 (1 connection): no figure, the direct case failed\n");
  } else {
    std::printf("broker's added p50 (1 connection, against the completion-queue client): %.0f us\n",
                m("added"));
  }
  std::printf("HTTP alone (a 404 the broker answers itself, 1 connection): p50 %.0f us\n",
              m("floor1.p50"));
  std::printf("loopback HTTP floor (a bare blocking responder, 1 connection): p50 %.0f us\n",
              m("bare1.p50"));
  std::printf(
      "CPU per request at %d connections: broker %.0f us, its plugin %.0f us (broker/plugin "
      "%.2f); the plugin called directly %.0f us\n",
      connections, m("b.cpu"), m("bp.cpu"), m("ratio"), m("d.cpu"));
  std::printf(
      "the broker's context switches per request (all threads): %.1f at %d connections; at "
      "1 connection %.1f, with %.0f us of its CPU per request\n",
      m("b.switches"), connections, m("b1.switches"), m("b1.cpu"));

  if (stream_bytes > 0) {
    for (bool upload : {true, false}) {
      StreamFigures s = Stream(port, broker.pid(), stream_bytes, upload);
      std::printf(
          "%s %llu MiB %s: %.1f s (%.0f MiB/s), broker VmRSS %ld KiB before, %ld KiB max "
          "(+%ld KiB)\n",
          upload ? "upload+echo" : "download   ",
          static_cast<unsigned long long>(stream_bytes >> 20), s.ok ? "ok" : "FAILED", s.seconds,
          static_cast<double>(stream_bytes >> 20) / s.seconds, s.rss_before, s.rss_max,
          s.rss_max - s.rss_before);
    }
  }
  Stop(direct);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
