// PluginHarness: runs a plugin's register function in-process, without
// sockets or a broker, to unit-test its hooks and routes with the SDK's own
// dispatch rules (a throwing hook is logged and its event still acknowledged;
// a throwing route gives 500).
//
//   PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
//   ASSERT_TRUE(harness.status().ok());
//   EXPECT_THAT(harness.hooks(), ElementsAre("on_plugins_loaded", "on_user_created"));
//   Event event = PluginHarness::MakeEvent("on_user_created");
//   event.mutable_user()->set_public_name("Bob");
//   EXPECT_TRUE(harness.Deliver(event).ok());
//   HttpResponse response = harness.Call({.method = "GET", .path = "/plugins/hello_world/user"});
//
// Thread-safety: thread-compatible; handlers run on the calling thread.
#ifndef TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_
#define TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/v1/broker.pb.h"

namespace tracim::plugin::testing {

struct HarnessOptions {
  // TRACIM_PLUGIN_NAME: routes must be under /plugins/<plugin_name>/.
  std::string plugin_name = "test";
  // The settings the broker would answer Register with.
  std::map<std::string, std::string> settings{};
  // Also copy each dispatch log line to stderr (the harness keeps them in
  // log_lines() either way).
  bool echo_log = true;
};

class PluginHarness {
 public:
  // Calls `register_fn` at once, as the SDK does in a real launch. A register
  // function that throws or misregisters leaves a non-OK status().
  explicit PluginHarness(RegisterFunction register_fn, HarnessOptions options = {});
  PluginHarness(const PluginHarness&) = delete;
  PluginHarness& operator=(const PluginHarness&) = delete;

  // OK, or what RunPlugin would refuse to start with (the same messages).
  absl::Status status() const;

  // What the plugin would send in RegisterRequest: subscribed hooks (sorted)
  // and routes (registration order), version and description as set by the
  // register function ("" when unset).
  std::vector<std::string> hooks() const;
  std::vector<v1::Route> routes() const;
  std::string version() const;
  std::string description() const;

  // Replaces the settings, as a registration answer would.
  void SetSettings(std::map<std::string, std::string> settings);
  PluginManager& plugin_manager() { return manager_; }
  const PluginContext& context() const { return manager_.context(); }

  // An event for `hook` with its event type ("on_user_created" →
  // "user.created") and the next event id; fill the entity yourself.
  static Event MakeEvent(std::string_view hook);

  // Delivers `event` synchronously to the handlers of event.hook(), as the
  // SDK's event thread would (an event_id of 0 gets the next id). OK when
  // every handler returned; INTERNAL with the logged line when one threw
  // (the event is acknowledged anyway); FAILED_PRECONDITION, without calling
  // anything, when the plugin did not subscribe to the hook (the broker
  // would not have sent it).
  absl::Status Deliver(Event event);

  // Calls the route matching request.method and request.path (filling
  // route and path_params, as the broker would), synchronously. No match:
  // 404 or 405 {"message"}. Broker-side checks (401 for a non-public route
  // without user) are not applied: set request.user yourself.
  HttpResponse Call(HttpRequest request);

  // Ids of acknowledged events, in order, and every dispatch log line.
  const std::vector<uint64_t>& acked_event_ids() const { return acked_event_ids_; }
  const std::vector<std::string>& log_lines() const { return log_lines_; }

 private:
  void Log(std::string_view line);

  HarnessOptions options_;
  PluginManager manager_;
  absl::Status register_status_;
  std::vector<uint64_t> acked_event_ids_;
  std::vector<std::string> log_lines_;
};

}  // namespace tracim::plugin::testing

#endif  // TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_
