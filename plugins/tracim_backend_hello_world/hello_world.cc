// tracim_backend_hello_world: the seed's tracim plugin, out of process. Says
// hello once all plugins are loaded, names each new user, and serves
// GET /plugins/hello_world/user with the caller's account.
//
// Thread-safety: hooks run on the SDK's event thread, the route on its HTTP
// workers; the plugin keeps no state, so nothing is shared.
#include <iostream>
#include <memory>

#include "tracim/plugin/json.h"
#include "tracim/plugin/plugin.h"

namespace tracim_backend_hello_world {

using tracim::plugin::HttpRequest;
using tracim::plugin::HttpResponse;

class HelloWorldPlugin : public tracim::plugin::Plugin {
 public:
  void OnPluginsLoaded(const Event& event, const PluginsLoaded& loaded) override {
    std::cout << "Hello World !" << std::endl;
  }

  void OnUserCreated(const Event& event, const User& user) override {
    std::cout << "created user " << user.public_name() << std::endl;
  }
};

// GET /plugins/hello_world/user: the authenticated caller, as tracim's
// /api/auth/whoami names the fields.
HttpResponse CurrentUser(const HttpRequest& request) {
  if (!request.user) return HttpResponse::Message(401, "authentication required");
  const tracim::plugin::User& user = *request.user;
  return tracim::plugin::JsonResponse(200, boost::json::object{
                                               {"user_id", user.user_id()},
                                               {"public_name", user.public_name()},
                                               {"username", user.username()},
                                               {"email", user.email()},
                                               {"profile", user.profile()},
                                           });
}

}  // namespace tracim_backend_hello_world

extern "C" void register_tracim_plugin(tracim::plugin::PluginManager& plugin_manager) {
  plugin_manager.Register(std::make_unique<tracim_backend_hello_world::HelloWorldPlugin>());
  plugin_manager.AddRoute("GET", "/plugins/hello_world/user",
                          &tracim_backend_hello_world::CurrentUser);
}
