// A plugin for the restart benchmark: one public route, GET
// /plugins/<name>/ping → 200 "pong", where <name> is the name the broker
// launched it as (so one binary serves several plugin folders).
#include <cstdlib>
#include <memory>
#include <string>

#include "tracim/plugin/plugin.h"

namespace {

class BenchPing : public tracim::plugin::Plugin {};

}  // namespace

extern "C" void register_tracim_plugin(tracim::plugin::PluginManager& plugin_manager) {
  const char* name = std::getenv("TRACIM_PLUGIN_NAME");
  plugin_manager.Register(std::make_unique<BenchPing>());
  plugin_manager.AddRoute(
      "GET", std::string("/plugins/") + (name != nullptr ? name : "bench_ping") + "/ping",
      [](const tracim::plugin::HttpRequest&) {
        return tracim::plugin::HttpResponse::Text(200, "pong");
      },
      tracim::plugin::RouteOptions{.public_route = true});
}

TRACIM_PLUGIN_MAIN()
