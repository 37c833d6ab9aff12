// Runs the real tracim-plugin-broker binary for integration tests: a private
// temp folder with a config, a plugin folder and a runtime dir; the broker's
// output collected line by line; waits with deadlines on log lines and on
// the Admin service's view of the plugins.
//
// Thread-safety: one fixture per test; the output reader thread only touches
// the line buffer, which is guarded.
#ifndef TRACIM_TESTS_INTEGRATION_BROKER_FIXTURE_H_
#define TRACIM_TESTS_INTEGRATION_BROKER_FIXTURE_H_

#include <grpcpp/support/status.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/temp_dir.h"
#include "tracim/plugin/v1/broker.pb.h"

namespace tracim::testing {

using std::chrono::milliseconds;

// Build-tree paths, set by CMake.
std::filesystem::path BrokerBinary();
std::filesystem::path TestPluginBinary();
std::filesystem::path ExamplePluginsDir();  // build/plugins
std::filesystem::path TestPluginsDir();     // build/test_plugins
std::filesystem::path HelloWorldLibrary();  // libtracim_hello_world.so

void WriteFile(const std::filesystem::path& path, const std::string& content, int mode = 0644);

// Whether a process with this pid exists and is not a zombie.
bool ProcessAlive(pid_t pid);
// Waits until the process is gone; false at the deadline.
bool WaitProcessGone(pid_t pid, milliseconds timeout);

class BrokerFixture {
 public:
  BrokerFixture();
  ~BrokerFixture();

  const std::filesystem::path& dir() const { return temp_.path(); }
  std::filesystem::path plugin_folder() const { return dir() / "plugins"; }
  std::filesystem::path runtime_dir() const { return dir() / "run"; }

  // Creates plugins/tracim_backend_<name>/plugin.json with `manifest`.
  std::filesystem::path AddPlugin(const std::string& name, const std::string& manifest);
  // A plugin running the test plugin binary in `mode`; `extra` is spliced
  // into the manifest object (e.g. "\"start_timeout_ms\": 500").
  void AddTestPlugin(const std::string& name, const std::string& mode,
                     const std::string& extra = "");
  // Copies an assembled plugin folder (build/plugins/tracim_backend_x) in.
  void CopyPlugin(const std::filesystem::path& folder);

  // Extra lines for [app:main].
  void AddConfig(const std::string& lines) { config_ += lines + "\n"; }

  // Starts the broker with --config <dir>/broker.ini and the environment
  // of this process plus `env`.
  void Start(const std::map<std::string, std::string>& env = {});
  // Sends a signal to the broker.
  void Signal(int signal);
  // Waits for the broker to exit; its exit code (or -signal), nullopt at the
  // deadline.
  std::optional<int> WaitExit(milliseconds timeout);
  pid_t pid() const { return pid_; }

  // Waits until a line containing `text` has been printed (since start).
  bool WaitForLine(const std::string& text, milliseconds timeout);
  // Waits until at least `count` lines containing `text` have been printed.
  bool WaitForLines(const std::string& text, int count, milliseconds timeout);
  // Number of lines containing `text` so far.
  int CountLines(const std::string& text);
  std::string Output();

  // Backend.Publish over the control socket, with `token` as
  // tracim-backend-token (none if empty). Fills `ids` on success.
  grpc::Status Publish(const std::vector<tracim::plugin::v1::Event>& events,
                       const std::string& token, std::vector<uint64_t>* ids = nullptr);

  // Admin.ListPlugins over the control socket.
  std::vector<tracim::plugin::v1::PluginStatus> ListPlugins();
  std::optional<tracim::plugin::v1::PluginStatus> PluginStatus(const std::string& name);
  // Admin.RestartPlugin / EnablePlugin / DisablePlugin ("restart",
  // "enable", "disable"); fills `status` on success.
  grpc::Status Act(const std::string& action, const std::string& name,
                   tracim::plugin::v1::PluginStatus* status = nullptr);
  // Waits until the plugin reaches `state`; returns its status then.
  std::optional<tracim::plugin::v1::PluginStatus> WaitForState(const std::string& name,
                                                               const std::string& state,
                                                               milliseconds timeout);

 private:
  void ReadOutput(int fd);

  TempDir temp_;
  std::string config_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool exited_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

}  // namespace tracim::testing

#endif  // TRACIM_TESTS_INTEGRATION_BROKER_FIXTURE_H_
