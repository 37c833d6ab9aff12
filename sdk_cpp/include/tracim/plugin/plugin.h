// The one header a C++ plugin includes. A plugin is a class deriving from
// Plugin that overrides the hooks it wants, registered from the entry point
// every plugin defines, as tracim's pluggy plugins do:
//
//   class HelloWorldPlugin : public tracim::plugin::Plugin {
//    public:
//     void OnPluginsLoaded(const Event& event, const PluginsLoaded& loaded) override {
//       std::cout << "Hello World !" << std::endl;
//     }
//   };
//
//   extern "C" void register_tracim_plugin(tracim::plugin::PluginManager& plugin_manager) {
//     plugin_manager.Register(std::make_unique<HelloWorldPlugin>());
//   }
//
// Built as a shared library (plugin.json "library"), the plugin is loaded by
// tracim-plugin-runner; built as an executable ("command"), it adds
// TRACIM_PLUGIN_MAIN() to one source file.
//
// Threading contract: hook methods (and Subscribe handlers) run on one SDK
// thread, one event at a time, in delivery order. When a hook returns, the
// SDK acknowledges the event to the broker. When it throws, the SDK logs one
// line to stderr naming the hook, the event id and the exception's message,
// and acknowledges the event all the same: a failing plugin never blocks its
// event stream, and never cancels the user's operation (unlike in-process
// tracim). Route handlers run on HTTP worker threads, concurrently with hooks.
#ifndef TRACIM_PLUGIN_PLUGIN_H_
#define TRACIM_PLUGIN_PLUGIN_H_

#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tracim/plugin/entities.h"
#include "tracim/plugin/entry_points.h"
#include "tracim/plugin/http.h"
#include "tracim/plugin/plugin_context.h"
#include "tracim/plugin/plugin_manager.h"

namespace tracim::plugin {

// Base class of plugins. Every hook is a no-op here; override those the
// plugin subscribes to (public, with `override`). Each receives the whole
// Event and the entity it is about.
class Plugin {
 public:
  // So that overriding classes in any namespace can write
  // `void OnUserCreated(const Event& event, const User& user) override`.
  // Declared before any use, as class-scope lookup requires.
  using Event = ::tracim::plugin::Event;
  using User = ::tracim::plugin::User;
  using Workspace = ::tracim::plugin::Workspace;
  using Membership = ::tracim::plugin::Membership;
  using Content = ::tracim::plugin::Content;
  using PluginsLoaded = ::tracim::plugin::PluginsLoaded;

  virtual ~Plugin() = default;

  // Once every plugin of the broker's start is ready or failed (and again for
  // a restarted plugin once it is ready): read settings here.
  virtual void OnPluginsLoaded(const Event& event, const PluginsLoaded& loaded) {}

  // A user deleted through the broker's REST API arrives as deleted; tracim
  // itself (an external backend publishing) reports it as modified with
  // user.is_deleted().
  virtual void OnUserCreated(const Event& event, const User& user) {}
  virtual void OnUserModified(const Event& event, const User& user) {}
  virtual void OnUserDeleted(const Event& event, const User& user) {}

  virtual void OnWorkspaceCreated(const Event& event, const Workspace& workspace) {}
  virtual void OnWorkspaceModified(const Event& event, const Workspace& workspace) {}
  virtual void OnWorkspaceDeleted(const Event& event, const Workspace& workspace) {}

  // Memberships (tracim's UserWorkspaceConfig); event.workspace() is set too.
  virtual void OnUserConfigInWorkspaceCreated(const Event& event, const Membership& member) {}
  virtual void OnUserConfigInWorkspaceModified(const Event& event, const Membership& member) {}
  virtual void OnUserConfigInWorkspaceDeleted(const Event& event, const Membership& member) {}

  // Comments and files are contents too; event.workspace() is set too.
  virtual void OnContentCreated(const Event& event, const Content& content) {}
  virtual void OnContentModified(const Event& event, const Content& content) {}
  virtual void OnContentDeleted(const Event& event, const Content& content) {}
  virtual void OnContentRevisionCreated(const Event& event, const Content& content) {}

 protected:
  // The plugin's name and settings. Valid once the plugin is registered
  // with PluginManager::Register (so from any hook or route handler).
  const PluginContext& context() const { return *context_; }

 private:
  friend class PluginManager;
  const PluginContext* context_ = nullptr;
};

// RegisterFunction and kRegisterSymbol: see entry_points.h.

// Runs a plugin as the broker expects (docs/protocol.md): reads the
// handshake environment, calls `register_fn`, serves tracim.plugin.v1.Plugin
// and grpc.health.v1.Health on $TRACIM_PLUGIN_SOCKET, registers with the
// broker, dispatches events and requests until Shutdown, SIGTERM or SIGINT.
// Returns the process exit code: 0 after a graceful stop, 1 when the
// handshake fails (the reason is logged on stderr), 2 when started by hand.
// Call it once per process, from main().
int RunPlugin(RegisterFunction register_fn, int argc, char** argv);

namespace internal {
// Given the types of &T::Hook and &Plugin::Hook: true when they differ, i.e.
// when T (or a base between T and Plugin) overrides the hook.
template <typename Derived, typename Base>
inline constexpr bool kOverrides = !std::is_same_v<Derived, Base>;
}  // namespace internal

template <typename T>
void PluginManager::Register(std::unique_ptr<T> plugin) {
  static_assert(std::is_base_of_v<Plugin, T>,
                "PluginManager::Register takes a class derived from tracim::plugin::Plugin");
  std::vector<std::string_view> hooks;
  // &T::Method names Plugin::Method (same type) unless T or one of its bases
  // between it and Plugin overrides it.
#define TRACIM_PLUGIN_DETECT_HOOK_(method, hook)                                       \
  if constexpr (internal::kOverrides<decltype(&T::method), decltype(&Plugin::method)>) \
  hooks.push_back(hook)
  TRACIM_PLUGIN_DETECT_HOOK_(OnPluginsLoaded, "on_plugins_loaded");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserCreated, "on_user_created");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserModified, "on_user_modified");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserDeleted, "on_user_deleted");
  TRACIM_PLUGIN_DETECT_HOOK_(OnWorkspaceCreated, "on_workspace_created");
  TRACIM_PLUGIN_DETECT_HOOK_(OnWorkspaceModified, "on_workspace_modified");
  TRACIM_PLUGIN_DETECT_HOOK_(OnWorkspaceDeleted, "on_workspace_deleted");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserConfigInWorkspaceCreated, "on_user_config_in_workspace_created");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserConfigInWorkspaceModified,
                             "on_user_config_in_workspace_modified");
  TRACIM_PLUGIN_DETECT_HOOK_(OnUserConfigInWorkspaceDeleted, "on_user_config_in_workspace_deleted");
  TRACIM_PLUGIN_DETECT_HOOK_(OnContentCreated, "on_content_created");
  TRACIM_PLUGIN_DETECT_HOOK_(OnContentModified, "on_content_modified");
  TRACIM_PLUGIN_DETECT_HOOK_(OnContentDeleted, "on_content_deleted");
  TRACIM_PLUGIN_DETECT_HOOK_(OnContentRevisionCreated, "on_content_revision_created");
#undef TRACIM_PLUGIN_DETECT_HOOK_
  RegisterPlugin(std::move(plugin), std::move(hooks));
}

}  // namespace tracim::plugin

// Marks the entry point as exported even when a plugin builds with
// -fvisibility=hidden.
#define TRACIM_PLUGIN_EXPORT __attribute__((visibility("default")))

// The entry point every C++ plugin defines (see above).
extern "C" TRACIM_PLUGIN_EXPORT void register_tracim_plugin(
    tracim::plugin::PluginManager& plugin_manager);

// RunPlugin for tracim-plugin-runner, which finds it with dlsym() (see
// entry_points.h).
extern "C" TRACIM_PLUGIN_EXPORT int tracim_plugin_run(tracim::plugin::RegisterFunction register_fn,
                                                      int argc, char** argv);

// For a plugin built as an executable: defines main() running the plugin.
#define TRACIM_PLUGIN_MAIN()                                                   \
  int main(int argc, char** argv) {                                            \
    return ::tracim::plugin::RunPlugin(&::register_tracim_plugin, argc, argv); \
  }

#endif  // TRACIM_PLUGIN_PLUGIN_H_
