// Spawn-to-ready of a plugin: from the supervisor's Start (posix_spawn of
// tracim-plugin-runner) to the plugin being ready (Register accepted and the
// broker's connect-back health check answered), over N launches, with the
// real broker components in this process and real plugin processes.
//
//   spawn_to_ready_bench [--launches N] [--plugin-dir DIR]...
//
// Default: hello_world in both of its shapes, measured in the same run:
//   executable  build/plugins/tracim_backend_hello_world (linked statically,
//               the deployed form)
//   library     libtracim_hello_world.so loaded by the runner
// Prints min/p50/p90/p99/max in ms per plugin. Launches alternate between
// the plugins so that noise from the shared machine hits both alike.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
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

namespace {

PluginManifest ManifestOf(const std::filesystem::path& folder) {
  std::ifstream in(folder / kManifestFileName);
  std::stringstream text;
  text << in.rdbuf();
  std::string name = folder.filename().string().substr(std::string(kPluginFolderPrefix).size());
  auto manifest = ParsePluginManifest(text.str(), folder, name);
  if (!manifest.ok()) {
    std::fprintf(stderr, "%s: %s\n", folder.c_str(),
                 std::string(manifest.status().message()).c_str());
    std::exit(1);
  }
  return *manifest;
}

double Percentile(const std::vector<double>& sorted, double p) {
  return sorted[std::min(sorted.size() - 1, size_t(p * double(sorted.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  int launches = 50;
  std::vector<std::filesystem::path> folders;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--plugin-dir") folders.push_back(argv[i + 1]);
    if (a == "--launches") launches = std::stoi(argv[i + 1]);
  }
  spdlog::set_level(getenv("BENCH_DEBUG") ? spdlog::level::debug : spdlog::level::warn);
  auto runtime = RuntimeDir::Prepare(std::nullopt, std::nullopt);
  if (folders.empty()) {
    folders.push_back(TRACIM_BENCH_PLUGIN_DIR);
    // Same plugin name (its routes are under /plugins/hello_world/), another
    // folder, measured by its own host.
    auto lib = runtime->path() / "library" / "tracim_backend_hello_world";
    std::filesystem::create_directories(lib);
    std::ofstream(lib / kManifestFileName)
        << R"({"library": ")" << TRACIM_BENCH_LIBRARY << R"(", "version": "1.0.0"})";
    folders.push_back(lib);
  }
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  PosixProcessLauncher launcher(io);
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> ready;  // by label
  std::string failed;

  // One host (and control socket) per folder: the plugins may share a name.
  struct Case {
    std::string label;
    std::unique_ptr<PluginHost> host;
    std::unique_ptr<ControlServer> control;
  };
  std::vector<Case> cases;
  for (size_t i = 0; i < folders.size(); ++i) {
    PluginManifest manifest = ManifestOf(folders[i]);
    std::string label = manifest.library.empty() ? "executable" : "library";
    if (folders.size() > 2 || std::count_if(cases.begin(), cases.end(),
                                            [&](const Case& c) { return c.label == label; })) {
      label += "#" + std::to_string(i);
    }
    auto dir = runtime->path() / ("host" + std::to_string(i));
    std::filesystem::create_directories(dir);
    PluginHost::Options options;
    options.runner = TRACIM_BENCH_RUNNER;
    options.runtime_dir = dir;
    options.broker_socket = dir / "broker.sock";
    options.on_settled = [&, label](const std::string&, PluginState state) {
      std::lock_guard<std::mutex> lock(mu);
      if (state == PluginState::kReady) ready[label]++;
      if (state == PluginState::kFailed) failed = label;
      cv.notify_all();
    };
    auto host = PluginHost::Create(io, launcher, {manifest}, options);
    auto control = ControlServer::Start(options.broker_socket, **host);
    if (!host.ok() || !control.ok()) {
      std::fprintf(stderr, "cannot set up %s\n", folders[i].c_str());
      return 1;
    }
    cases.push_back({label, std::move(*host), std::move(*control)});
  }
  // The io thread lives for the whole run (it spawns the plugins).
  std::thread io_thread([&io] { io.run(); });

  std::map<std::string, std::vector<double>> ms;
  for (int i = 0; i < launches; ++i) {
    for (auto& c : cases) {
      PluginSupervisor& plugin = *c.host->plugins().front();
      auto t0 = Clock::now();
      plugin.Start();
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return ready[c.label] > i || !failed.empty(); });
        if (!failed.empty()) {
          std::fprintf(stderr, "plugin %s (%s) failed to start: %s\n", plugin.name().c_str(),
                       failed.c_str(), plugin.Status().last_exit_reason().c_str());
          std::_Exit(1);
        }
      }
      ms[c.label].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      bool stopped = false;
      plugin.Stop("benchmark", [&] {
        std::lock_guard<std::mutex> lock(mu);
        stopped = true;
        cv.notify_all();
      });
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stopped; });
    }
  }
  for (auto& [name, v] : ms) {
    std::sort(v.begin(), v.end());
    std::printf(
        "spawn_to_ready %s launches=%d min=%.2fms p50=%.2fms p90=%.2fms p99=%.2fms "
        "max=%.2fms\n",
        name.c_str(), launches, v.front(), Percentile(v, 0.5), Percentile(v, 0.9),
        Percentile(v, 0.99), v.back());
  }

  for (auto& c : cases) {
    bool done = false;
    c.host->StopAll([&] {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
      cv.notify_all();
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    }
    c.control->Shutdown();
  }
  work.reset();
  io.stop();
  io_thread.join();
  return 0;
}
