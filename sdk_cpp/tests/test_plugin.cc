// sdk_test_plugin: a plugin executable (TRACIM_PLUGIN_MAIN) driven by
// run_plugin_test.cc through the real handshake. Its hooks print what they
// see on stdout; routes cover params, bodies, users, large responses,
// failures and a streaming echo. Its version comes from ./plugin.json (none is set here).
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "tracim/plugin/json.h"
#include "tracim/plugin/plugin.h"

namespace {

using namespace tracim::plugin;

class TestPlugin : public Plugin {
 public:
  void OnPluginsLoaded(const Event& event, const PluginsLoaded& loaded) override {
    std::cout << "plugins loaded, greeting=" << context().Setting("greeting", "none") << std::endl;
  }
  void OnUserCreated(const Event& event, const User& user) override {
    if (user.public_name() == "throw") throw std::runtime_error("boom");
    std::cout << "created user " << user.public_name() << std::endl;
  }
};

}  // namespace

extern "C" void register_tracim_plugin(PluginManager& plugin_manager) {
  plugin_manager.Register(std::make_unique<TestPlugin>());
  plugin_manager.Subscribe("on_reaction_created", [](const Event& event) {
    std::cout << "reaction " << event.event_id() << std::endl;
  });
  const std::string base = "/plugins/" + plugin_manager.name();
  plugin_manager.AddRoute("POST", base + "/echo/{word}", [](const HttpRequest& request) {
    boost::json::object body{
        {"word", request.path_params.at("word")},
        {"route", request.route},
        {"query", request.query},
        {"x_test", request.Header("x-test").value_or("")},
        {"body", request.body},
        {"user", request.user ? boost::json::value(request.user->username()) : nullptr},
        {"request_id", request.request_id},
    };
    return JsonResponse(200, body);
  });
  plugin_manager.AddRoute(
      "GET", base + "/big",
      [](const HttpRequest& request) {
        const size_t size = std::stoul(request.QueryParam("size").value_or("0"));
        std::string body(size, '\0');
        for (size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + i % 26);
        return HttpResponse::Text(200, std::move(body));
      },
      RouteOptions{.public_route = true, .timeout = std::chrono::milliseconds(2500)});
  plugin_manager.AddRoute("GET", base + "/throw", [](const HttpRequest&) -> HttpResponse {
    throw std::runtime_error("route failed");
  });
  // Echoes the body as it arrives; says on stdout how a read failed.
  plugin_manager.AddStreamingRoute(
      "POST", base + "/stream", [](const HttpRequestHead& request, HttpStream& stream) {
        if (!stream.WriteHead(200).ok()) return;
        while (true) {
          absl::StatusOr<std::optional<std::string>> chunk = stream.Read();
          if (!chunk.ok()) {
            std::cout << "stream read failed: " << chunk.status().message() << std::endl;
            return;
          }
          if (!*chunk || !stream.Write(**chunk).ok()) return;
        }
      });
}

TRACIM_PLUGIN_MAIN()
