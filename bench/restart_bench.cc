// Supervision: time from SIGKILL of a plugin to its route answering 200
// again, through the real broker binary, and the other plugin's route
// latency meanwhile.
//
// Two copies of the static C++ plugin bench_ping (ping_a, ping_b) behind the
// broker. Each round kills ping_a's process (pid from Admin.ListPlugins),
// then polls GET /plugins/ping_a/ping (503 while it is down) until it
// answers 200. A second thread calls GET /plugins/ping_b/ping back to back
// on a keep-alive connection the whole time; its latencies are split into
// "quiet" (no kill in progress) and "during recovery".
//
// The failure window is set shorter than the gap between kills, so each
// kill is a plugin's first failure in its window (restarted at once) — what
// an isolated crash sees. Later failures would wait for the backoff.
//
//   restart_bench [--kills N]      (default 50)
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tracim/plugin/v1/broker.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace v1 = tracim::plugin::v1;
using Clock = std::chrono::steady_clock;

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// A keep-alive HTTP/1.1 client for GETs with small bodies.
class HttpClient {
 public:
  explicit HttpClient(int port) : port_(port) {}
  ~HttpClient() { Close(); }

  // The status code, or 0 when the connection failed.
  int Get(const std::string& path) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !Connect()) return 0;
      std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
        Close();
        continue;
      }
      int status = ReadResponse();
      if (status > 0) return status;
      Close();
    }
    return 0;
  }

 private:
  bool Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    buffer_.clear();
    return true;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads one response with a Content-Length body; 0 on error.
  int ReadResponse() {
    for (;;) {
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        int status = std::atoi(buffer_.c_str() + 9);
        size_t length = 0;
        size_t at = buffer_.find("Content-Length: ");
        if (at == std::string::npos) at = buffer_.find("content-length: ");
        if (at != std::string::npos && at < end)
          length = std::strtoul(buffer_.c_str() + at + 16, nullptr, 10);
        const bool close = buffer_.find("Connection: close") < end;
        while (buffer_.size() < end + 4 + length) {
          if (!Fill()) return 0;
        }
        buffer_.erase(0, end + 4 + length);
        if (close) Close();
        return status;
      }
      if (!Fill()) return 0;
    }
  }

  bool Fill() {
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int port_;
  int fd_ = -1;
  std::string buffer_;
};

// The broker binary as a child, its output collected.
class Broker {
 public:
  Broker(const fs::path& dir) : dir_(dir) {}
  ~Broker() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  bool Start() {
    int fds[2];
    if (::pipe(fds) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::string binary = TRACIM_BENCH_BROKER;
    std::string config = (dir_ / "broker.ini").string();
    std::vector<char*> argv = {binary.data(), const_cast<char*>("--config"), config.data(),
                               nullptr};
    int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) return false;
    reader_ = std::thread([this, fd = fds[0]] {
      std::string partial;
      char chunk[4096];
      ssize_t n;
      while ((n = ::read(fd, chunk, sizeof(chunk))) > 0) {
        partial.append(chunk, static_cast<size_t>(n));
        size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
          std::lock_guard<std::mutex> lock(mu_);
          lines_.push_back(partial.substr(0, nl));
          partial.erase(0, nl + 1);
          cv_.notify_all();
        }
      }
      ::close(fd);
    });
    return true;
  }

  // The text after `marker` in the first line containing it.
  std::optional<std::string> WaitFor(const std::string& marker, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<std::string> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& l : lines_) {
        size_t at = l.find(marker);
        if (at != std::string::npos) {
          found = l.substr(at + marker.size());
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

int PidOf(v1::Admin::Stub& admin, const std::string& name) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListPluginsResponse response;
  if (!admin.ListPlugins(&context, v1::ListPluginsRequest(), &response).ok()) return 0;
  for (const auto& p : response.plugins()) {
    if (p.name() == name && p.state() == "ready") return p.pid();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int kills = 50;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--kills") kills = std::atoi(argv[i + 1]);
  }
  char tmpl[] = "/tmp/restart_bench.XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);
  for (const char* name : {"ping_a", "ping_b"}) {
    fs::path folder = dir / "plugins" / (std::string("tracim_backend_") + name);
    fs::create_directories(folder);
    std::ofstream(folder / "plugin.json")
        << "{\"command\": [\"" << TRACIM_BENCH_PING << "\"], \"version\": \"1.0.0\"}";
  }
  std::ofstream(dir / "broker.ini") << "[app:main]\n"
                                       "plugin.folder_path = %(here)s/plugins\n"
                                       "broker.state_dir = %(here)s/var\n"
                                       "broker.runtime_dir = %(here)s/run\n"
                                       "broker.listen = 127.0.0.1:0\n"
                                       "broker.plugin_runner = " TRACIM_BENCH_RUNNER
                                       "\n"
                                       "broker.restart_failure_window_ms = 1\n";
  int port = 0;
  Broker broker(dir);
  if (!broker.Start()) {
    std::fprintf(stderr, "cannot start the broker\n");
    return 1;
  }
  auto listen = broker.WaitFor("HTTP listener on 127.0.0.1:", std::chrono::seconds(30));
  if (!listen) {
    std::fprintf(stderr, "the broker did not start listening\n");
    return 1;
  }
  port = std::atoi(listen->c_str());
  auto channel = grpc::CreateChannel("unix:" + (dir / "run" / "broker.sock").string(),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::Admin::NewStub(channel);

  HttpClient probe(port);
  auto ready_deadline = Clock::now() + std::chrono::seconds(30);
  while ((probe.Get("/plugins/ping_a/ping") != 200 || probe.Get("/plugins/ping_b/ping") != 200) &&
         Clock::now() < ready_deadline) {
    std::this_thread::yield();
  }

  // The other plugin, called back to back the whole time.
  std::atomic<bool> recovering{false};
  std::atomic<bool> done{false};
  std::vector<double> quiet_us, during_us;
  int other_errors = 0;
  std::thread other([&] {
    HttpClient client(port);
    while (!done.load()) {
      const bool during = recovering.load();
      auto t0 = Clock::now();
      int status = client.Get("/plugins/ping_b/ping");
      double us = Micros(Clock::now() - t0);
      if (status != 200) {
        other_errors++;
        continue;
      }
      (during || recovering.load() ? during_us : quiet_us).push_back(us);
    }
  });

  std::vector<double> recovery_ms;
  std::map<int, int> statuses;  // answers while down, by status (0: no answer)
  for (int k = 0; k < kills; ++k) {
    int pid = 0;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while ((pid = PidOf(*admin, "ping_a")) == 0 && Clock::now() < deadline) {
      std::this_thread::yield();
    }
    if (pid == 0) {
      std::fprintf(stderr, "ping_a never became ready again\n");
      break;
    }
    // A short quiet period between kills, for the "quiet" latencies.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    recovering = true;
    auto t0 = Clock::now();
    ::kill(pid, SIGKILL);
    int status = 0;
    while ((status = probe.Get("/plugins/ping_a/ping")) != 200) {
      statuses[status]++;
      if (Clock::now() - t0 > std::chrono::seconds(10)) break;
    }
    recovery_ms.push_back(Micros(Clock::now() - t0) / 1000.0);
    recovering = false;
  }
  done = true;
  other.join();

  std::printf("restart_bench: %zu SIGKILLs of a static C++ plugin (bench_ping)\n",
              recovery_ms.size());
  std::printf("  SIGKILL -> route 200 again: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
              Percentile(recovery_ms, 0.5), Percentile(recovery_ms, 0.99),
              Percentile(recovery_ms, 1.0));
  std::string answers;
  for (const auto& [code, n] : statuses) {
    answers += " " + std::to_string(n) + " x " + (code == 0 ? "no answer" : std::to_string(code));
  }
  std::printf("  answers while down:%s\n", answers.c_str());
  std::printf("  other plugin's route, quiet:           p50 %.0f us, p99 %.0f us (%zu calls)\n",
              Percentile(quiet_us, 0.5), Percentile(quiet_us, 0.99), quiet_us.size());
  std::printf("  other plugin's route, during recovery: p50 %.0f us, p99 %.0f us (%zu calls)\n",
              Percentile(during_us, 0.5), Percentile(during_us, 0.99), during_us.size());
  std::printf("  other plugin's failed calls: %d\n", other_errors);
  return 0;
}
