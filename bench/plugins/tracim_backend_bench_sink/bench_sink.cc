// A plugin for the event benchmarks: subscribes to on_user_created and does
// nothing with it, so that what is measured is delivery and acknowledgement.
#include <cstring>
#include <memory>

#include "tracim/plugin/plugin.h"

namespace {

class BenchSink : public tracim::plugin::Plugin {
 public:
  void OnUserCreated(const Event&, const User&) override {}
};

}  // namespace

extern "C" void register_tracim_plugin(tracim::plugin::PluginManager& plugin_manager) {
  plugin_manager.Register(std::make_unique<BenchSink>());
}

TRACIM_PLUGIN_MAIN()
