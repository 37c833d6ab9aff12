#include "tracim/plugin/testing/plugin_harness.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk_cpp/src/http_transport.h"
#include "sdk_cpp/src/plugin_registry.h"
#include "sdk_cpp/src/string_view_compat.h"
#include "tracim/plugin/v1/hook_catalogue.h"

namespace tracim::plugin::testing {
namespace {

using internal::PluginManagerAccess;

// Event ids handed out by MakeEvent: unique within the test process.
std::atomic<uint64_t> g_next_made_event_id{1};

// Plays the broker and the client of one request in memory: the body is
// handed out in chunks, what is sent lands in a StreamedResponse. Never
// blocks.
class InMemoryTransport final : public internal::HttpTransport {
 public:
  InMemoryTransport(std::string body, const StreamOptions& options, StreamedResponse& out)
      : body_(std::move(body)), options_(options), out_(out) {}

  absl::StatusOr<std::optional<std::string>> ReadBody() override {
    if (options_.cancel_after_chunks_read == out_.chunks_read) gone_ = true;
    if (gone_) return absl::CancelledError(internal::kCancelledMessage);
    if (offset_ >= body_.size()) return std::nullopt;
    const size_t size = options_.read_chunk_bytes == 0
                            ? body_.size() - offset_
                            : std::min(options_.read_chunk_bytes, body_.size() - offset_);
    std::string chunk = body_.substr(offset_, size);
    offset_ += size;
    ++out_.chunks_read;
    return chunk;
  }

  absl::Status SendHead(int status, const HttpHeaders& headers) override {
    if (absl::Status gone = Send(); !gone.ok()) return gone;
    out_.head_sent = true;
    out_.response.status = status;
    out_.response.headers = headers;
    return absl::OkStatus();
  }

  absl::Status SendBody(std::string_view chunk) override {
    if (absl::Status gone = Send(); !gone.ok()) return gone;
    out_.response.body.append(chunk);
    out_.part_sizes.push_back(chunk.size());
    return absl::OkStatus();
  }

 private:
  absl::Status Send() {
    if (options_.cancel_after_parts_sent == parts_sent_) gone_ = true;
    if (gone_) return absl::CancelledError(internal::kCancelledMessage);
    ++parts_sent_;
    return absl::OkStatus();
  }

  const std::string body_;
  const StreamOptions& options_;
  StreamedResponse& out_;
  size_t offset_ = 0;
  size_t parts_sent_ = 0;
  bool gone_ = false;
};

}  // namespace

PluginHarness::PluginHarness(RegisterFunction register_fn, HarnessOptions options)
    : options_(std::move(options)), manager_(options_.plugin_name) {
  // Before register_fn: a plugin may keep a copy of context().host_api().
  PluginContext& context = PluginManagerAccess::Registry(manager_).mutable_context();
  if (options_.host_api != nullptr) {
    grpc::ServerBuilder builder;
    builder.RegisterService(options_.host_api);
    host_api_server_ = builder.BuildAndStart();
  }
  context.host_api_ =
      host_api_server_ != nullptr
          ? HostApi::FromChannel(host_api_server_->InProcessChannel(grpc::ChannelArguments()),
                                 kSecret)
          : HostApi::Disconnected(options_.host_api != nullptr
                                      ? "the harness could not serve HarnessOptions::host_api"
                                      : "no HarnessOptions::host_api in this PluginHarness");
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

PluginHarness::~PluginHarness() {
  if (host_api_server_ != nullptr) {
    host_api_server_->Shutdown(std::chrono::system_clock::now());
    host_api_server_->Wait();
  }
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
  return Stream(std::move(request)).response;
}

StreamedResponse PluginHarness::Stream(HttpRequest request, StreamOptions options) {
  // Routed by path here, as the broker would; a stale route is ignored.
  HttpRequestHead head{
      .method = std::move(request.method),
      .path = std::move(request.path),
      .query = std::move(request.query),
      .headers = std::move(request.headers),
      .user = std::move(request.user),
      .request_id = std::move(request.request_id),
      .remote_addr = std::move(request.remote_addr),
  };
  if (!request.body.empty()) head.content_length = request.body.size();
  StreamedResponse out;
  InMemoryTransport transport(std::move(request.body), options, out);
  out.status = PluginManagerAccess::Registry(manager_).ServeHttp(
      std::move(head), transport, [this](std::string_view line) { Log(line); });
  return out;
}

void PluginHarness::Log(std::string_view line) {
  log_lines_.emplace_back(line);
  if (options_.echo_log) {
    fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  }
}

}  // namespace tracim::plugin::testing
