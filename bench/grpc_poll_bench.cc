// What gRPC's threading costs one call at a time, on this machine: the same
// HandleHttp ping to a route plugin process (tests/plugins/route_plugin, in
// its no-register mode), one call in flight, made three ways in turn:
//   cq        completion-queue API, and this thread is the process's only
//             gRPC poller (how the broker's proxy would run if nothing else in
//             the broker used gRPC's callback API);
//   cq+cb     the same client while a callback-API server runs in the same
//             process: gRPC 1.51 then runs its two "nexting" threads, which
//             take turns at polling (the broker today);
//   callback  a callback-API client (route_bench's direct client).
// For each: p50 and p90 of the call, the client process's CPU time and
// voluntary context switches per call, the plugin's CPU time per call. Each
// case runs in a fresh client process (once started, gRPC's callback
// threads stay for the life of the channel or server that needed them). The
// cases alternate --rounds times; medians of the rounds are printed.
//
//   grpc_poll_bench [--seconds S] [--rounds R]     (defaults: S = 5, R = 3)
#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_process.h"
#include "bench/ping_call.h"
#include "tracim/plugin/v1/handshake.h"
#include "tracim/plugin/v1/plugin.grpc.pb.h"

namespace tracim::bench {
namespace {

namespace v1 = tracim::plugin::v1;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kSecret[] = "grpc-poll-bench-secret";

class CallbackCall final
    : public grpc::ClientBidiReactor<v1::HttpRequestPart, v1::HttpResponsePart> {
 public:
  explicit CallbackCall(v1::Plugin::Stub& stub) {
    PreparePingCall(context_, out_, kSecret, "grpc-poll-bench");
    stub.async()->HandleHttp(&context_, this);
    StartWriteLast(&out_, grpc::WriteOptions());
    StartRead(&in_);
    StartCall();
  }
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return ok_;
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    answer_.Add(in_);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    ok_ = status.ok() && answer_.Pong();
    done_ = true;
    cv_.notify_one();
  }

 private:
  grpc::ClientContext context_;
  v1::HttpRequestPart out_;
  v1::HttpResponsePart in_;
  PingAnswer answer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool ok_ = false;
};

// A callback-API service with nothing registered: serving it is what makes
// gRPC start its callback threads.
class IdleCallbackService final : public grpc::CallbackGenericService {};

struct Figures {
  double p50_us = 0;
  double p90_us = 0;
  double cpu_us = 0;         // the client process, per call
  double switches = 0;       // voluntary context switches of the client, per call
  double plugin_cpu_us = 0;  // per call
};

double ProcessCpuSeconds(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// One case, in a client process of its own: prints its figures on one line.
int RunCase(const std::string& mode, const fs::path& dir, pid_t plugin, int seconds) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // as on the broker's channels to plugins
  auto channel = grpc::CreateCustomChannel("unix:" + (dir / "plugin.sock").string(),
                                           grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "grpc_poll_bench: cannot reach the route plugin\n");
    return 1;
  }
  std::unique_ptr<v1::Plugin::Stub> stub = v1::Plugin::NewStub(channel);
  IdleCallbackService idle;
  std::unique_ptr<grpc::Server> server;
  if (mode == "cq+cb") {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + (dir / "idle.sock").string(),
                             grpc::InsecureServerCredentials());
    builder.RegisterCallbackGenericService(&idle);
    server = builder.BuildAndStart();
  }
  grpc::CompletionQueue cq;
  std::vector<double> latencies;
  int failures = 0;
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const double plugin_before = CpuSeconds(plugin, false);
  const Clock::time_point end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    const Clock::time_point start = Clock::now();
    bool ok = false;
    if (mode == "callback") {
      CallbackCall call(*stub);
      ok = call.Wait();
    } else {
      ok = CompletionQueuePing(*stub, cq, kSecret, "grpc-poll-bench");
    }
    if (!ok) {
      ++failures;
      continue;
    }
    latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  const double plugin_cpu = CpuSeconds(plugin, false) - plugin_before;
  if (server != nullptr) server->Shutdown();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  if (failures > 0) std::fprintf(stderr, "%s: %d failed calls\n", mode.c_str(), failures);
  if (latencies.empty()) return 1;
  const double n = static_cast<double>(latencies.size());
  std::sort(latencies.begin(), latencies.end());
  std::printf("%f %f %f %f %f\n", latencies[latencies.size() / 2],
              latencies[latencies.size() * 9 / 10],
              (ProcessCpuSeconds(after) - ProcessCpuSeconds(before)) * 1e6 / n,
              static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / n, plugin_cpu * 1e6 / n);
  return 0;
}

// Runs one case in a fresh process of this program; its figures.
std::optional<Figures> Run(const std::string& mode, const fs::path& dir, pid_t plugin,
                           int seconds) {
  const Captured run =
      RunCaptured({"/proc/self/exe", "--case", mode, "--dir", dir.string(), "--plugin",
                   std::to_string(plugin), "--seconds", std::to_string(seconds)});
  Figures f;
  if (!run.ok || std::sscanf(run.out.c_str(), "%lf %lf %lf %lf %lf", &f.p50_us, &f.p90_us,
                             &f.cpu_us, &f.switches, &f.plugin_cpu_us) != 5) {
    std::fprintf(stderr, "grpc_poll_bench: case %s failed: %s\n", mode.c_str(), run.out.c_str());
    return std::nullopt;
  }
  return f;
}

int Main(int argc, char** argv) {
  int seconds = 5;
  int rounds = 3;
  std::string case_mode;
  std::string case_dir;
  pid_t case_plugin = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
    // Internal: one case in this process (see Run).
    if (std::strcmp(argv[i], "--case") == 0) case_mode = argv[i + 1];
    if (std::strcmp(argv[i], "--dir") == 0) case_dir = argv[i + 1];
    if (std::strcmp(argv[i], "--plugin") == 0) case_plugin = std::atoi(argv[i + 1]);
  }
  if (!case_mode.empty()) return RunCase(case_mode, case_dir, case_plugin, seconds);

  char dir_template[] = "/tmp/grpc_poll_bench.XXXXXX";
  const fs::path dir = mkdtemp(dir_template);
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t plugin = Spawn(
      {TRACIM_BENCH_ROUTE_PLUGIN, "--mode=no-register"},
      {std::string(v1::kEnvPluginName) + "=rp", std::string(v1::kEnvPluginSecret) + "=" + kSecret,
       std::string(v1::kEnvPluginSocket) + "=" + (dir / "plugin.sock").string(),
       std::string(v1::kEnvBrokerSocket) + "=" + (dir / "none.sock").string()},
      devnull);
  close(devnull);
  if (plugin <= 0) {
    std::fprintf(stderr, "grpc_poll_bench: cannot start the route plugin\n");
    return 1;
  }
  const std::vector<std::string> modes = {"cq", "cq+cb", "callback"};
  std::printf("grpc_poll_bench: HandleHttp ping, 1 call in flight, %d s per case, %d round(s)\n",
              seconds, rounds);
  int exit_code = 0;
  std::map<std::string, std::vector<Figures>> results;
  for (const std::string& mode : modes) Run(mode, dir, plugin, 1);  // warm-up
  for (int round = 1; round <= rounds && exit_code == 0; ++round) {
    for (const std::string& mode : modes) {
      const std::optional<Figures> f = Run(mode, dir, plugin, seconds);
      if (!f.has_value()) {
        exit_code = 1;
        break;
      }
      results[mode].push_back(*f);
      std::printf(
          "round %d %-8s p50 %4.0f us p90 %4.0f us | CPU/call %4.0f us, voluntary switches/call "
          "%.2f | plugin CPU/call %3.0f us\n",
          round, mode.c_str(), f->p50_us, f->p90_us, f->cpu_us, f->switches, f->plugin_cpu_us);
    }
  }
  if (exit_code == 0) {
    std::printf("\nmedians (us)     p50      p90  CPU/call  switches/call  plugin CPU/call\n");
    for (const std::string& mode : modes) {
      auto m = [&](double Figures::*field) {
        std::vector<double> v;
        for (const Figures& f : results[mode]) v.push_back(f.*field);
        return Median(v);
      };
      std::printf("%-10s %8.0f %8.0f %9.0f %14.2f %16.0f\n", mode.c_str(), m(&Figures::p50_us),
                  m(&Figures::p90_us), m(&Figures::cpu_us), m(&Figures::switches),
                  m(&Figures::plugin_cpu_us));
    }
  }
  Stop(plugin);
  fs::remove_all(dir);
  return exit_code;
}

}  // namespace
}  // namespace tracim::bench

int main(int argc, char** argv) { return tracim::bench::Main(argc, argv); }
