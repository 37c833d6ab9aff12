// Owns one PluginSupervisor per discovered plugin: starts them in name order,
// sends on_plugins_loaded once every plugin is ready or failed, publishes
// events to them, and stops them all.
//
// Threading: StartAll/StopAll/Publish may be called from any thread; the
// host's own bookkeeping runs on its strand. Find() and plugins() read a
// list fixed at construction: safe from any thread.
#ifndef TRACIM_BROKER_SUPERVISOR_PLUGIN_HOST_H_
#define TRACIM_BROKER_SUPERVISOR_PLUGIN_HOST_H_

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "broker/discovery/plugin_manifest.h"
#include "broker/supervisor/plugin_supervisor.h"

namespace tracim::broker {

class PluginHost : public PluginSupervisor::Listener {
 public:
  struct Options {
    std::filesystem::path runner;
    // 0700 folder for the sockets.
    std::filesystem::path runtime_dir;
    std::filesystem::path broker_socket;
    absl::Duration start_timeout = absl::Seconds(10);
    absl::Duration shutdown_grace = absl::Seconds(3);
    // plugin name → settings (plugin.<name>.<setting> keys).
    std::map<std::string, std::map<std::string, std::string>> settings;
    // Environment passed on to plugins (already filtered).
    std::vector<std::string> base_env;
    // Per plugin: broker.event_queue_size, broker.event_ack_timeout_ms.
    size_t event_queue_size = 10000;
    absl::Duration event_ack_timeout = absl::Seconds(30);
    // Defaults for every plugin; a manifest's "restart" / "health" objects
    // override them field by field.
    RestartPolicy restart;
    absl::Duration health_interval = absl::Seconds(5);
    absl::Duration health_timeout = absl::Seconds(2);
    int health_failures = 3;
    // broker.plugin_log_rate / broker.plugin_log_burst.
    uint32_t plugin_log_rate = 200;
    uint32_t plugin_log_burst = 1000;
    // The completion queue of the calls to plugins: the control server's
    // (ControlServer::queue(), so that the broker's gRPC has one polling
    // thread). Unset: the host makes a queue of its own.
    CompletionQueueThread* calls = nullptr;
    // Told, on the host's strand, each time a plugin becomes ready or fails
    // (service readiness notification, benchmarks). Must not block.
    std::function<void(const std::string& name, PluginState state)> on_settled;
    // Told once, on the host's strand, when every plugin of the start is
    // ready or failed (right after on_plugins_loaded was queued).
    std::function<void()> on_all_settled;
  };

  // Fails (INVALID_ARGUMENT naming broker.runtime_dir) when a plugin socket
  // path cannot be kept under the 108-byte limit of Unix socket paths.
  static absl::StatusOr<std::unique_ptr<PluginHost>> Create(boost::asio::io_context& io,
                                                            ProcessLauncher& launcher,
                                                            std::vector<PluginManifest> plugins,
                                                            Options options);

  // Starts every plugin, in name order.
  void StartAll();
  // Stops every plugin; `done` runs once all are stopped and no call to a
  // plugin is outstanding.
  void StopAll(std::function<void()> done);

  // nullptr if no such plugin.
  PluginSupervisor* Find(absl::string_view name) const;
  // The plugin whose current launch holds `secret` (host API callers);
  // nullopt for an unknown, empty or stale secret.
  std::optional<std::string> PluginNameForSecret(const std::string& secret) const;
  const std::vector<std::unique_ptr<PluginSupervisor>>& plugins() const { return plugins_; }

  // An operator action on the plugin `name`; `done` gets the plugin's status
  // once the action has begun (from the plugin's strand), or NOT_FOUND
  // "no plugin named 'x'" at once.
  void Act(absl::string_view name, PluginSupervisor::Action action,
           std::function<void(absl::StatusOr<tracim::plugin::v1::PluginStatus>)> done);

  // Gives each event the next event id (in order) and the current time if
  // it has none, and queues them for every subscriber: one hop to each
  // plugin's strand for the whole list. Returns the ids, in order. Plugins
  // receive events in id order, also from concurrent publishers.
  std::vector<uint64_t> Publish(std::vector<tracim::plugin::v1::Event> events);
  // The same, with back-pressure: `done` runs at once (OK) while at most
  // event_queue_size events are on their way to the plugins' strands, this
  // call's included; beyond that, once every strand has queued (or dropped)
  // this call's events (OK, from a strand). UNAVAILABLE once
  // AbandonPendingPublishes ran (nothing published then). Backend.Publish
  // answers from `done`: a publisher faster than the io thread waits
  // instead of piling events up between the RPC and the strands, where no
  // per-plugin queue limit applies. `done` may run before Publish returns.
  std::vector<uint64_t> Publish(std::vector<tracim::plugin::v1::Event> events,
                                std::function<void(absl::Status)> done);
  // Runs the `done` of every Publish still waiting, with UNAVAILABLE; later
  // ones run it at once. After the io_context stopped, before the control
  // server shuts down (which waits for the calls those `done` answer).
  void AbandonPendingPublishes();
  // The same for one event; returns its id.
  uint64_t Publish(tracim::plugin::v1::Event event);

  void OnPluginSettled(PluginSupervisor& plugin, PluginState state) override;

  // The socket path for a plugin: <runtime>/plugin-<name>.sock, or a short
  // <runtime>/p<index>.sock when that would not fit in a sockaddr_un.
  static absl::StatusOr<std::filesystem::path> SocketPathFor(
      const std::filesystem::path& runtime_dir, const std::string& name, size_t index);

 private:
  PluginHost(boost::asio::io_context& io) : io_(io), strand_(boost::asio::make_strand(io)) {}
  void DoSettled(std::string name, PluginState state);
  // Gives the events the next ids (and the current time if they have none).
  // Under publish_mu_, held until they are handed to the plugins, so that
  // id order is delivery order for every plugin.
  std::shared_ptr<const PluginSupervisor::EventList> Stamp(
      std::vector<tracim::plugin::v1::Event> events) ABSL_EXCLUSIVE_LOCKS_REQUIRED(publish_mu_);
  void SendPluginsLoaded(const std::vector<PluginSupervisor*>& to);
  void WaitForCalls(std::function<void()> done, int attempts_left);

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  // Options::calls when none was given; outlives the supervisors.
  std::unique_ptr<CompletionQueueThread> own_calls_;
  std::vector<std::unique_ptr<PluginSupervisor>> plugins_;
  std::function<void(const std::string&, PluginState)> on_settled_;
  std::function<void()> on_all_settled_;
  absl::Mutex publish_mu_;
  uint64_t next_event_id_ ABSL_GUARDED_BY(publish_mu_) = 1;
  // Publish calls whose events are on their way to the plugins' strands.
  struct PendingPublish {
    size_t strands_left = 0;
    size_t events = 0;
    std::function<void(absl::Status)> done;  // null: answered already
  };
  void StrandQueued(uint64_t publish) ABSL_LOCKS_EXCLUDED(pending_mu_);
  absl::Mutex pending_mu_;
  uint64_t next_publish_ ABSL_GUARDED_BY(pending_mu_) = 0;
  std::map<uint64_t, PendingPublish> pending_ ABSL_GUARDED_BY(pending_mu_);
  bool abandoned_ ABSL_GUARDED_BY(pending_mu_) = false;
  size_t events_in_transit_ ABSL_GUARDED_BY(pending_mu_) = 0;
  // Options::event_queue_size.
  size_t max_events_in_transit_ = 10000;
  // Strand only.
  std::set<std::string> settled_;
  bool initial_load_done_ = false;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_SUPERVISOR_PLUGIN_HOST_H_
