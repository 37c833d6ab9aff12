// The two C symbols through which tracim-plugin-runner starts a C++ plugin
// built as a shared library: the plugin's register_tracim_plugin, and the
// SDK's tracim_plugin_run, both found with dlsym() on the plugin's handle
// (which also searches the SDK, a dependency of the plugin). The runner thus
// links neither the SDK nor gRPC, and plugins run with exec (Python, Go, ...)
// do not pay for loading them. Declarations only: thread-safe.
#ifndef TRACIM_PLUGIN_ENTRY_POINTS_H_
#define TRACIM_PLUGIN_ENTRY_POINTS_H_

namespace tracim::plugin {

class PluginManager;

// The entry point's type, and the symbol every C++ plugin exports.
using RegisterFunction = void (*)(PluginManager& plugin_manager);
inline constexpr char kRegisterSymbol[] = "register_tracim_plugin";

// extern "C" int tracim_plugin_run(RegisterFunction, int argc, char** argv):
// RunPlugin behind a C name.
using RunFunction = int (*)(RegisterFunction register_fn, int argc, char** argv);
inline constexpr char kRunSymbol[] = "tracim_plugin_run";

}  // namespace tracim::plugin

#endif  // TRACIM_PLUGIN_ENTRY_POINTS_H_
