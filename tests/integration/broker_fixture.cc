#include "tests/integration/broker_fixture.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "tracim/plugin/v1/broker.grpc.pb.h"

extern char** environ;

namespace tracim::testing {

namespace v1 = tracim::plugin::v1;
using Clock = std::chrono::steady_clock;

std::filesystem::path BrokerBinary() { return TRACIM_TEST_BROKER_BINARY; }
std::filesystem::path TestPluginBinary() { return TRACIM_TEST_PLUGIN_BINARY; }
std::filesystem::path ExamplePluginsDir() { return TRACIM_TEST_EXAMPLE_PLUGINS_DIR; }
std::filesystem::path TestPluginsDir() { return TRACIM_TEST_TEST_PLUGINS_DIR; }
std::filesystem::path HelloWorldLibrary() { return TRACIM_TEST_HELLO_WORLD_LIBRARY; }

void WriteFile(const std::filesystem::path& path, const std::string& content, int mode) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
}

bool ProcessAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  // "pid (comm) S ...": the state follows the last ')'.
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

bool WaitProcessGone(pid_t pid, milliseconds timeout) {
  // A pidfd becomes readable when the process exits, whoever its parent is.
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return !ProcessAlive(pid);
  auto deadline = Clock::now() + timeout;
  bool gone = false;
  while (!gone) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) > 0) gone = true;
  }
  close(fd);
  return gone || !ProcessAlive(pid);
}

BrokerFixture::BrokerFixture() { std::filesystem::create_directories(plugin_folder()); }

BrokerFixture::~BrokerFixture() {
  if (pid_ > 0 && !exited_) {
    kill(pid_, SIGKILL);
    WaitExit(milliseconds(5000));
  }
  if (reader_.joinable()) reader_.join();
  if (pidfd_ >= 0) close(pidfd_);
}

std::filesystem::path BrokerFixture::AddPlugin(const std::string& name,
                                               const std::string& manifest) {
  auto folder = plugin_folder() / ("tracim_backend_" + name);
  WriteFile(folder / "plugin.json", manifest);
  return folder;
}

void BrokerFixture::AddTestPlugin(const std::string& name, const std::string& mode,
                                  const std::string& extra) {
  std::string manifest = "{\"command\": [\"" + TestPluginBinary().string() +
                         "\", \"--mode=" + mode + "\"], \"version\": \"1.0.0\"" +
                         (extra.empty() ? "" : ", " + extra) + "}";
  AddPlugin(name, manifest);
}

void BrokerFixture::CopyPlugin(const std::filesystem::path& folder) {
  std::filesystem::copy(folder, plugin_folder() / folder.filename(),
                        std::filesystem::copy_options::recursive);
}

void BrokerFixture::Start(const std::map<std::string, std::string>& env) {
  WriteFile(dir() / "broker.ini",
            "[app:main]\n"
            "plugin.folder_path = %(here)s/plugins\n"
            "broker.state_dir = %(here)s/var\n"
            "broker.runtime_dir = %(here)s/run\n"
            "broker.listen = 127.0.0.1:0\n" +
                config_);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var = *e;
    if (env.count(var.substr(0, var.find('='))) == 0) env_strings.push_back(var);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string binary = BrokerBinary().string();
  std::string config = (dir() / "broker.ini").string();
  std::vector<char*> argv = {binary.data(), const_cast<char*>("--config"), config.data(), nullptr};
  int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  ASSERT_EQ(rc, 0) << "cannot start " << binary;
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  reader_ = std::thread([this, fd = out[0]] { ReadOutput(fd); });
}

void BrokerFixture::ReadOutput(int fd) {
  std::string partial;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    std::lock_guard<std::mutex> lock(mu_);
    while ((nl = partial.find('\n')) != std::string::npos) {
      lines_.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  if (!partial.empty()) lines_.push_back(partial);
  lines_.push_back("<end of output>");
  cv_.notify_all();
}

void BrokerFixture::Signal(int signal) { kill(pid_, signal); }

std::optional<int> BrokerFixture::WaitExit(milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  pollfd p{pidfd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) return std::nullopt;
  exited_ = true;
  if (reader_.joinable()) reader_.join();
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

bool BrokerFixture::WaitForLine(const std::string& text, milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    for (const auto& l : lines_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  });
}

bool BrokerFixture::WaitForLines(const std::string& text, int count, milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    int n = 0;
    for (const auto& l : lines_) n += l.find(text) != std::string::npos;
    return n >= count;
  });
}

int BrokerFixture::CountLines(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& l : lines_) n += l.find(text) != std::string::npos;
  return n;
}

std::string BrokerFixture::Output() {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const auto& l : lines_) out << l << "\n";
  return out.str();
}

grpc::Status BrokerFixture::Publish(const std::vector<v1::Event>& events, const std::string& token,
                                    std::vector<uint64_t>* ids) {
  auto channel = grpc::CreateChannel("unix:" + (runtime_dir() / "broker.sock").string(),
                                     grpc::InsecureChannelCredentials());
  auto backend = v1::Backend::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  context.set_wait_for_ready(true);
  if (!token.empty()) context.AddMetadata("tracim-backend-token", token);
  v1::PublishRequest request;
  for (const auto& e : events) *request.add_events() = e;
  v1::PublishResponse response;
  grpc::Status status = backend->Publish(&context, request, &response);
  if (ids != nullptr) ids->assign(response.event_ids().begin(), response.event_ids().end());
  return status;
}

std::vector<v1::PluginStatus> BrokerFixture::ListPlugins() {
  auto channel = grpc::CreateChannel("unix:" + (runtime_dir() / "broker.sock").string(),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::Admin::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  context.set_wait_for_ready(true);
  v1::ListPluginsResponse response;
  grpc::Status status = admin->ListPlugins(&context, v1::ListPluginsRequest(), &response);
  if (!status.ok()) return {};
  return {response.plugins().begin(), response.plugins().end()};
}

grpc::Status BrokerFixture::Act(const std::string& action, const std::string& name,
                                v1::PluginStatus* status) {
  auto channel = grpc::CreateChannel("unix:" + (runtime_dir() / "broker.sock").string(),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::Admin::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::PluginActionRequest request;
  request.set_name(name);
  v1::PluginStatus response;
  grpc::Status result;
  if (action == "restart") {
    result = admin->RestartPlugin(&context, request, &response);
  } else if (action == "enable") {
    result = admin->EnablePlugin(&context, request, &response);
  } else {
    result = admin->DisablePlugin(&context, request, &response);
  }
  if (result.ok() && status != nullptr) *status = response;
  return result;
}

std::optional<v1::PluginStatus> BrokerFixture::PluginStatus(const std::string& name) {
  for (auto& p : ListPlugins()) {
    if (p.name() == name) return p;
  }
  return std::nullopt;
}

std::optional<v1::PluginStatus> BrokerFixture::WaitForState(const std::string& name,
                                                            const std::string& state,
                                                            milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto status = PluginStatus(name);
    if (status && status->state() == state) return status;
    if (Clock::now() >= deadline) return std::nullopt;
    // Every state change is logged: wait for the next line (bounded, so a
    // change that raced with the query is still seen).
    std::unique_lock<std::mutex> lock(mu_);
    size_t seen = lines_.size();
    cv_.wait_until(lock, std::min(deadline, Clock::now() + milliseconds(100)),
                   [&] { return lines_.size() > seen; });
  }
}

}  // namespace tracim::testing
