// Spawn-to-ready of a plugin: from the supervisor's Start (posix_spawn of
// tracim-plugin-runner) to the plugin being ready (Register accepted and the
// broker's connect-back health check answered), over N launches, with the
// real broker components in this process and a real plugin process.
//
//   spawn_to_ready_bench [--plugin-dir DIR] [--runner PATH] [--launches N]
//
// Defaults: build/plugins/tracim_backend_hello_world (a C++ library plugin
// loaded by the runner), 50 launches. Prints min/p50/p90/p99/max in ms.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "broker/app/runtime_dir.h"
#include "broker/control/control_server.h"
#include "broker/discovery/plugin_discovery.h"
#include "broker/process/posix_process_launcher.h"
#include "broker/supervisor/plugin_host.h"
#include "spdlog/spdlog.h"

using namespace tracim::broker;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::filesystem::path plugin_dir = TRACIM_BENCH_PLUGIN_DIR;
  std::filesystem::path runner = TRACIM_BENCH_RUNNER;
  int launches = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--plugin-dir") plugin_dir = argv[i + 1];
    if (a == "--runner") runner = argv[i + 1];
    if (a == "--launches") launches = std::stoi(argv[i + 1]);
  }
  spdlog::set_level(getenv("BENCH_DEBUG") ? spdlog::level::debug : spdlog::level::warn);

  auto found = DiscoverPlugins(plugin_dir.parent_path());
  if (!found.ok()) {
    std::fprintf(stderr, "%s\n", std::string(found.status().message()).c_str());
    return 1;
  }
  std::vector<PluginManifest> manifests;
  std::string wanted = plugin_dir.filename().string().substr(std::string("tracim_backend_").size());
  for (auto& m : found->plugins) {
    if (m.name == wanted) manifests.push_back(m);
  }
  if (manifests.empty()) {
    std::fprintf(stderr, "no plugin '%s' under %s\n", wanted.c_str(),
                 plugin_dir.parent_path().c_str());
    return 1;
  }

  auto runtime = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  PosixProcessLauncher launcher(io);

  std::mutex mu;
  std::condition_variable cv;
  int ready_count = 0;
  bool failed = false;
  PluginHost::Options options;
  options.runner = runner;
  options.runtime_dir = runtime->path();
  options.broker_socket = runtime->path() / "broker.sock";
  options.on_settled = [&](const std::string&, PluginState state) {
    std::lock_guard<std::mutex> lock(mu);
    if (state == PluginState::kReady) ready_count++;
    if (state == PluginState::kFailed) failed = true;
    cv.notify_all();
  };
  auto host = PluginHost::Create(io, launcher, manifests, options);
  auto control = ControlServer::Start(options.broker_socket, **host);
  // The io thread lives for the whole run (it spawns the plugins).
  std::thread io_thread([&io] { io.run(); });

  PluginSupervisor& plugin = *(*host)->plugins().front();
  std::vector<double> ms;
  for (int i = 0; i < launches; ++i) {
    auto t0 = Clock::now();
    plugin.Start();
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return ready_count > i || failed; });
      if (failed) {
        std::fprintf(stderr, "the plugin failed to start: %s\n",
                     plugin.Status().last_exit_reason().c_str());
        return 1;
      }
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::mutex stop_mu;
    std::condition_variable stop_cv;
    bool stopped = false;
    plugin.Stop("benchmark", [&] {
      std::lock_guard<std::mutex> lock(stop_mu);
      stopped = true;
      stop_cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(stop_mu);
    stop_cv.wait(lock, [&] { return stopped; });
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, size_t(p * (ms.size() - 1) + 0.5))];
  };
  std::printf(
      "spawn_to_ready plugin=%s launches=%d min=%.2fms p50=%.2fms p90=%.2fms p99=%.2fms "
      "max=%.2fms\n",
      wanted.c_str(), launches, ms.front(), pct(0.5), pct(0.9), pct(0.99), ms.back());

  bool done = false;
  (*host)->StopAll([&] {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  (*control)->Shutdown();
  work.reset();
  io.stop();
  io_thread.join();
  return 0;
}
