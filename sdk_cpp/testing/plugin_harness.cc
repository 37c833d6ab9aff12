#include "tracim/plugin/testing/plugin_harness.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::plugin::testing {
namespace {

using internal::PluginManagerAccess;

// Event ids handed out by MakeEvent: unique within the test process.
std::atomic<uint64_t> g_next_made_event_id{1};

}  // namespace

PluginHarness::PluginHarness(RegisterFunction register_fn, HarnessOptions options)
    : options_(std::move(options)), manager_(options_.plugin_name) {
  try {
    register_fn(manager_);
  } catch (const std::exception& e) {
    register_status_ =
        absl::InternalError(absl::StrCat("register_tracim_plugin threw: ", e.what()));
  } catch (...) {
    register_status_ = absl::InternalError("register_tracim_plugin threw an unknown exception");
  }
  if (register_status_.ok() && !manager_.status().ok()) {
    register_status_ = absl::InvalidArgumentError(
        absl::StrCat("register_tracim_plugin: ", manager_.status().message()));
  }
  SetSettings(options_.settings);
}

absl::Status PluginHarness::status() const { return register_status_; }

std::vector<std::string> PluginHarness::hooks() const {
  return PluginManagerAccess::Registry(manager_).Hooks();
}

std::vector<v1::Route> PluginHarness::routes() const {
  return PluginManagerAccess::Registry(manager_).Routes();
}

std::string PluginHarness::version() const {
  return PluginManagerAccess::Registry(manager_).version().value_or("");
}

std::string PluginHarness::description() const {
  return PluginManagerAccess::Registry(manager_).description().value_or("");
}

void PluginHarness::SetSettings(std::map<std::string, std::string> settings) {
  PluginManagerAccess::Registry(manager_).SetRegistration(std::move(settings), "harness");
}

Event PluginHarness::MakeEvent(std::string_view hook) {
  Event event;
  event.set_event_id(g_next_made_event_id.fetch_add(1));
  event.set_hook(std::string(hook));
  // An unknown hook has no event type (nor subscribers: Deliver refuses it).
  event.set_event_type(v1::EventTypeForHook(internal::AsAbsl(hook)).value_or(""));
  return event;
}

absl::Status PluginHarness::Deliver(Event event) {
  std::vector<std::string> subscribed = hooks();
  if (std::find(subscribed.begin(), subscribed.end(), event.hook()) == subscribed.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the plugin does not subscribe to '", event.hook(), "'"));
  }
  if (event.event_id() == 0) event.set_event_id(g_next_made_event_id.fetch_add(1));
  absl::Status status = PluginManagerAccess::Registry(manager_).DispatchEvent(
      event, [this](std::string_view line) { Log(line); });
  // Same rule as the SDK's event thread: acknowledged whatever happened.
  acked_event_ids_.push_back(event.event_id());
  return status;
}

HttpResponse PluginHarness::Call(HttpRequest request) {
  // Routed by path here, as the broker would; a stale route is ignored.
  request.route.clear();
  request.path_params.clear();
  return PluginManagerAccess::Registry(manager_).HandleHttp(
      std::move(request), [this](std::string_view line) { Log(line); });
}

void PluginHarness::Log(std::string_view line) {
  log_lines_.emplace_back(line);
  if (options_.echo_log) {
    fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  }
}

}  // namespace tracim::plugin::testing
