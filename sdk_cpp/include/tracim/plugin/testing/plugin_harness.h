// PluginHarness: runs a plugin's register function in-process, without
// sockets or a broker, to unit-test its hooks and routes with the SDK's own
// dispatch rules (a throwing hook is logged and its event still acknowledged;
// a throwing route gives 500), for buffered and streaming routes alike.
//
//   PluginHarness harness(&register_tracim_plugin, {.plugin_name = "hello_world"});
//   ASSERT_TRUE(harness.status().ok());
//   EXPECT_THAT(harness.hooks(), ElementsAre("on_plugins_loaded", "on_user_created"));
//   Event event = PluginHarness::MakeEvent("on_user_created");
//   event.mutable_user()->set_public_name("Bob");
//   EXPECT_TRUE(harness.Deliver(event).ok());
//   HttpResponse response = harness.Call({.method = "GET", .path = "/plugins/hello_world/user"});
//   StreamedResponse streamed = harness.Stream(
//       {.method = "POST", .path = "/plugins/hello_world/echo", .body = std::string(200000, 'x')},
//       {.read_chunk_bytes = 65536});
//   EXPECT_TRUE(streamed.status.ok());
//   EXPECT_EQ(streamed.chunks_read, 4u);
//
// The plugin's context().host_api() reaches HarnessOptions::host_api, a fake
// HostApi service served in-process (see below).
//
// Thread-safety: thread-compatible; handlers run on the calling thread.
#ifndef TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_
#define TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "tracim/plugin/plugin.h"
#include "tracim/plugin/v1/broker.pb.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tracim::plugin::testing {

struct HarnessOptions {
  // TRACIM_PLUGIN_NAME: routes must be under /plugins/<plugin_name>/.
  std::string plugin_name = "test";
  // The settings the broker would answer Register with.
  std::map<std::string, std::string> settings{};
  // Also copy each dispatch log line to stderr (the harness keeps them in
  // log_lines() either way).
  bool echo_log = true;
  // What the plugin's context().host_api() calls, served in-process (no
  // socket) from the harness's construction on: typically a class deriving
  // from tracim::plugin::v1::HostApi::Service (broker.grpc.pb.h) that
  // overrides the RPCs the test needs; the others answer UNIMPLEMENTED.
  // Calls carry the metadata tracim-plugin-secret: PluginHarness::kSecret.
  // Not owned: it must outlive the harness. nullptr: every host API call
  // fails with FAILED_PRECONDITION.
  grpc::Service* host_api = nullptr;
};

// How PluginHarness::Stream plays the broker and the client.
struct StreamOptions {
  // request.body reaches a streaming handler's HttpStream::Read() in chunks
  // of this many bytes (the last may be shorter); 0: in one chunk.
  size_t read_chunk_bytes = 0;
  // A client that goes away: once the handler read this many body chunks,
  // or once this many response parts (the head counts as one) were sent,
  // every later Read, WriteHead and Write fails with CANCELLED. Unset: never.
  std::optional<size_t> cancel_after_chunks_read{};
  std::optional<size_t> cancel_after_parts_sent{};
};

// What the broker would have received for one request.
struct StreamedResponse {
  // OK when the response is complete. Otherwise the status the SDK ends the
  // call with, after which the broker cuts the response: INTERNAL "route
  // <METHOD> <route> threw after the response head: <what>", or CANCELLED
  // (the client went away, see StreamOptions).
  absl::Status status;
  // Whether a head was sent; without one, response.status is 0.
  bool head_sent = false;
  // The head and the concatenation of every body part sent.
  HttpResponse response{.status = 0};
  // The size of each body part sent (at most 64 KiB each: larger writes are
  // cut, as over gRPC).
  std::vector<size_t> part_sizes;
  // Body chunks the handler read.
  size_t chunks_read = 0;
};

class PluginHarness {
 public:
  // Calls `register_fn` at once, as the SDK does in a real launch. A register
  // function that throws or misregisters leaves a non-OK status().
  explicit PluginHarness(RegisterFunction register_fn, HarnessOptions options = {});
  ~PluginHarness();
  PluginHarness(const PluginHarness&) = delete;
  PluginHarness& operator=(const PluginHarness&) = delete;

  // The secret the plugin's host API client sends to HarnessOptions::host_api.
  static constexpr char kSecret[] = "harness-secret";

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
  // route and path_params, as the broker would), synchronously, on the
  // calling thread. No match: 404 or 405 {"message"}. Broker-side checks
  // (401 for a non-public route without user) are not applied: set
  // request.user yourself. A streaming route gets request.body in one chunk
  // and its response collected; use Stream to see a cut response.
  HttpResponse Call(HttpRequest request);

  // Call with the exchange in detail, for streaming routes especially:
  // request.body is fed in chunks, the client may go away midway, and the
  // result tells how the call ended. The handler's HttpRequestHead has
  // content_length = request.body.size() when the body is not empty. No
  // sockets, no threads: the in-memory stream never blocks.
  StreamedResponse Stream(HttpRequest request, StreamOptions options = {});

  // Ids of acknowledged events, in order, and every dispatch log line.
  const std::vector<uint64_t>& acked_event_ids() const { return acked_event_ids_; }
  const std::vector<std::string>& log_lines() const { return log_lines_; }

 private:
  void Log(std::string_view line);

  HarnessOptions options_;
  PluginManager manager_;
  // Serves options_.host_api in-process; null without one.
  std::unique_ptr<grpc::Server> host_api_server_;
  absl::Status register_status_;
  std::vector<uint64_t> acked_event_ids_;
  std::vector<std::string> log_lines_;
};

}  // namespace tracim::plugin::testing

#endif  // TRACIM_PLUGIN_TESTING_PLUGIN_HARNESS_H_
