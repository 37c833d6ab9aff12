#include "broker/supervisor/plugin_host.h"

#include <sys/un.h>

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::broker {

namespace asio = boost::asio;
namespace v1 = tracim::plugin::v1;

absl::StatusOr<std::filesystem::path> PluginHost::SocketPathFor(
    const std::filesystem::path& runtime_dir, const std::string& name, size_t index) {
  constexpr size_t kMax = sizeof(sockaddr_un{}.sun_path) - 1;
  auto path = runtime_dir / absl::StrCat("plugin-", name, ".sock");
  if (path.string().size() <= kMax) return path;
  path = runtime_dir / absl::StrCat("p", index, ".sock");
  if (path.string().size() <= kMax) return path;
  return absl::InvalidArgumentError(absl::StrCat(
      "broker.runtime_dir: '", runtime_dir.string(), "' is too long for Unix socket paths (",
      path.string().size(), " bytes with a socket name, the limit is ", kMax, ")"));
}

absl::StatusOr<std::unique_ptr<PluginHost>> PluginHost::Create(asio::io_context& io,
                                                               ProcessLauncher& launcher,
                                                               std::vector<PluginManifest> plugins,
                                                               Options options) {
  std::unique_ptr<PluginHost> host(new PluginHost(io));
  host->max_events_in_transit_ = options.event_queue_size;
  host->on_settled_ = std::move(options.on_settled);
  host->on_all_settled_ = std::move(options.on_all_settled);
  if (options.calls == nullptr) {
    host->own_calls_ = std::make_unique<CompletionQueueThread>("plugin-calls");
    options.calls = host->own_calls_.get();
  }
  for (size_t i = 0; i < plugins.size(); ++i) {
    PluginSupervisor::Options o;
    o.runner = options.runner;
    auto socket = SocketPathFor(options.runtime_dir, plugins[i].name, i);
    if (!socket.ok()) return socket.status();
    o.socket_path = *socket;
    o.broker_socket = options.broker_socket;
    o.start_timeout = options.start_timeout;
    o.shutdown_grace = options.shutdown_grace;
    if (auto it = options.settings.find(plugins[i].name); it != options.settings.end()) {
      o.settings = it->second;
    }
    o.base_env = options.base_env;
    o.event_queue_capacity = options.event_queue_size;
    o.ack_timeout = options.event_ack_timeout;
    const PluginManifest& m = plugins[i];
    o.restart = options.restart;
    o.restart.initial_backoff = m.restart.backoff_initial.value_or(o.restart.initial_backoff);
    o.restart.max_backoff = m.restart.backoff_max.value_or(o.restart.max_backoff);
    o.restart.max_failures = m.restart.max_failures.value_or(o.restart.max_failures);
    o.restart.failure_window = m.restart.failure_window.value_or(o.restart.failure_window);
    o.health_interval = m.health.interval.value_or(options.health_interval);
    o.health_timeout = m.health.timeout.value_or(options.health_timeout);
    o.health_failures = m.health.failures.value_or(options.health_failures);
    o.output_log_rate = options.plugin_log_rate;
    o.output_log_burst = options.plugin_log_burst;
    o.calls = options.calls;
    host->plugins_.push_back(std::make_unique<PluginSupervisor>(io, launcher, std::move(plugins[i]),
                                                                std::move(o), host.get()));
  }
  return host;
}

void PluginHost::StartAll() {
  // Name order (discovery sorted them); each Start only spawns, so plugins
  // come up in parallel.
  for (auto& p : plugins_) p->Start();
  if (plugins_.empty()) {
    asio::post(strand_, [this] {
      initial_load_done_ = true;
      if (on_all_settled_) on_all_settled_();
    });
  }
}

PluginSupervisor* PluginHost::Find(absl::string_view name) const {
  for (const auto& p : plugins_) {
    if (p->name() == name) return p.get();
  }
  return nullptr;
}

void PluginHost::Act(absl::string_view name, PluginSupervisor::Action action,
                     std::function<void(absl::StatusOr<v1::PluginStatus>)> done) {
  PluginSupervisor* plugin = Find(name);
  if (plugin == nullptr) {
    done(absl::NotFoundError(absl::StrCat("no plugin named '", name, "'")));
    return;
  }
  plugin->Act(action,
              [done = std::move(done)](v1::PluginStatus status) { done(std::move(status)); });
}

std::optional<std::string> PluginHost::PluginNameForSecret(const std::string& secret) const {
  if (secret.empty()) return std::nullopt;
  for (const auto& p : plugins_) {
    if (p->IsCurrentSecret(secret)) return p->name();
  }
  return std::nullopt;
}

std::shared_ptr<const PluginSupervisor::EventList> PluginHost::Stamp(
    std::vector<v1::Event> events) {
  const google::protobuf::Timestamp now =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::GetCurrentTimeNanos());
  auto list = std::make_shared<PluginSupervisor::EventList>();
  list->reserve(events.size());
  for (v1::Event& event : events) {
    event.set_event_id(next_event_id_++);
    if (!event.has_created()) *event.mutable_created() = now;
    // Encoded once for every plugin. One allocation per event rather than
    // one per list: a plugin that holds a few events unacknowledged must not
    // keep whole lists alive.
    list->push_back(MakePublishedEvent(std::move(event)));
  }
  return list;
}

std::vector<uint64_t> PluginHost::Publish(std::vector<v1::Event> events) {
  // The events count as in transit like any others; nobody waits.
  return Publish(std::move(events), nullptr);
}

std::vector<uint64_t> PluginHost::Publish(std::vector<v1::Event> events,
                                          std::function<void(absl::Status)> done) {
  std::vector<uint64_t> ids;
  ids.reserve(events.size());
  const size_t count = events.size();
  uint64_t publish = 0;
  bool answer_now = true;
  absl::Status now_status;
  {
    absl::MutexLock lock(&pending_mu_);
    if (abandoned_) {
      now_status = absl::UnavailableError("the broker is stopping: events not queued");
    } else if (!plugins_.empty() && count > 0) {
      publish = ++next_publish_;
      PendingPublish& pending = pending_[publish];
      pending.strands_left = plugins_.size();
      pending.events = count;
      events_in_transit_ += count;
      // Within one queue's worth of events in transit the publisher goes on
      // at once (calls pipeline); beyond it, it waits for the strands.
      if (events_in_transit_ > max_events_in_transit_) {
        pending.done = std::move(done);
        answer_now = false;
      }
    }
  }
  if (now_status.ok()) {
    absl::MutexLock lock(&publish_mu_);
    auto list = Stamp(std::move(events));
    for (const auto& e : *list) ids.push_back(e->event.event_id());
    if (publish != 0) {
      for (auto& p : plugins_) p->Deliver(list, [this, publish] { StrandQueued(publish); });
    }
  }
  if (answer_now && done) done(now_status);
  return ids;
}

void PluginHost::StrandQueued(uint64_t publish) {
  std::function<void(absl::Status)> done;
  {
    absl::MutexLock lock(&pending_mu_);
    auto it = pending_.find(publish);
    if (it == pending_.end() || --it->second.strands_left > 0) return;
    events_in_transit_ -= it->second.events;
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  if (done) done(absl::OkStatus());
}

void PluginHost::AbandonPendingPublishes() {
  std::map<uint64_t, PendingPublish> pending;
  {
    absl::MutexLock lock(&pending_mu_);
    abandoned_ = true;
    pending.swap(pending_);
    events_in_transit_ = 0;
  }
  for (auto& [id, p] : pending) {
    if (p.done) {
      p.done(
          absl::UnavailableError("the broker stopped before every plugin had queued the events"));
    }
  }
}

uint64_t PluginHost::Publish(v1::Event event) {
  std::vector<v1::Event> events;
  events.push_back(std::move(event));
  return Publish(std::move(events)).front();
}

void PluginHost::OnPluginSettled(PluginSupervisor& plugin, PluginState state) {
  asio::post(strand_, [this, name = plugin.name(), state] { DoSettled(name, state); });
}

void PluginHost::DoSettled(std::string name, PluginState state) {
  if (on_settled_) on_settled_(name, state);
  if (initial_load_done_) {
    // A plugin that comes back later gets its own on_plugins_loaded.
    if (state == PluginState::kReady) SendPluginsLoaded({Find(name)});
    return;
  }
  settled_.insert(name);
  if (settled_.size() < plugins_.size()) return;
  initial_load_done_ = true;
  std::vector<PluginSupervisor*> ready;
  for (auto& p : plugins_) {
    if (p->Status().state() == PluginStateName(PluginState::kReady)) ready.push_back(p.get());
  }
  spdlog::info("plugins loaded: {} ready, {} failed", ready.size(), plugins_.size() - ready.size());
  SendPluginsLoaded(ready);
  if (on_all_settled_) on_all_settled_();
}

void PluginHost::SendPluginsLoaded(const std::vector<PluginSupervisor*>& to) {
  v1::Event event;
  event.set_hook(v1::kOnPluginsLoaded);
  event.set_event_type(v1::kPluginsLoadedEventType);
  for (auto& p : plugins_) {
    bool ready = p->Status().state() == PluginStateName(PluginState::kReady);
    if (ready) {
      event.mutable_plugins_loaded()->add_ready(p->name());
    } else {
      event.mutable_plugins_loaded()->add_failed(p->name());
    }
  }
  std::vector<v1::Event> events;
  events.push_back(std::move(event));
  absl::MutexLock lock(&publish_mu_);
  auto list = Stamp(std::move(events));
  for (PluginSupervisor* p : to) p->Deliver(list);
}

void PluginHost::StopAll(std::function<void()> done) {
  auto remaining = std::make_shared<size_t>(plugins_.size());
  auto all_stopped = [this, done = std::move(done)]() mutable {
    WaitForCalls(std::move(done), /*attempts_left=*/200);
  };
  if (plugins_.empty()) {
    asio::post(strand_, std::move(all_stopped));
    return;
  }
  auto shared_done = std::make_shared<decltype(all_stopped)>(std::move(all_stopped));
  for (auto& p : plugins_) {
    p->Stop("broker stopping", [this, remaining, shared_done] {
      asio::post(strand_, [remaining, shared_done] {
        if (--*remaining == 0) (*shared_done)();
      });
    });
  }
}

void PluginHost::WaitForCalls(std::function<void()> done, int attempts_left) {
  int pending = 0;
  for (auto& p : plugins_) pending += p->PendingCalls();
  if (pending == 0 || attempts_left == 0) {
    if (pending > 0) spdlog::warn("{} calls to plugins still outstanding at exit", pending);
    done();
    return;
  }
  // Completions of calls to exited plugins arrive within milliseconds.
  auto timer = std::make_shared<asio::steady_timer>(strand_, std::chrono::milliseconds(10));
  timer->async_wait([this, timer, done = std::move(done),
                     attempts_left](const boost::system::error_code&) mutable {
    WaitForCalls(std::move(done), attempts_left - 1);
  });
}

}  // namespace tracim::broker
