// PluginsApi: the operators' view of the plugins over HTTP, for
// administrators (the same data as the Admin gRPC service):
//   GET  /api/plugins                  → [PluginStatus JSON, ...]
//   GET  /api/plugins/{name}           → PluginStatus JSON
//   POST /api/plugins/{name}/restart   → PluginStatus JSON (action begun)
//   POST /api/plugins/{name}/enable
//   POST /api/plugins/{name}/disable
// Errors as the REST API's: 401 without valid credentials, 403 for a caller
// who is not an administrator, 404 for an unknown plugin or path, 405 with
// Allow for a wrong method.
// Thread-safe: authentication runs on the blocking executor; the answer
// goes through the (thread-safe) HttpResponder.
#ifndef TRACIM_BROKER_ADMIN_PLUGINS_API_H_
#define TRACIM_BROKER_ADMIN_PLUGINS_API_H_

#include <string>

#include "absl/status/status.h"
#include "boost/asio/any_io_executor.hpp"
#include "boost/json/value.hpp"
#include "broker/http/http_handler.h"
#include "broker/http/http_router.h"
#include "broker/store/store.h"
#include "broker/supervisor/plugin_host.h"
#include "tracim/plugin/v1/broker.pb.h"

namespace tracim::broker {

// The JSON form of a plugin's status (field names as in PluginStatus).
boost::json::value PluginStatusJson(const tracim::plugin::v1::PluginStatus& status);

class PluginsApi {
 public:
  // `store`, `host` and the executor's context must outlive every request:
  // stop the HttpServer and join the pool before destroying them.
  PluginsApi(Store& store, PluginHost& host, boost::asio::any_io_executor blocking_executor);

  // Binds the exact path "/api/plugins" and the prefix "/api/plugins/"
  // (more specific than the REST API's "/api/").
  absl::Status Register(HttpRouter& router);

  void Handle(HttpRequest request, HttpResponder respond);

 private:
  void Authorized(const HttpRequest& request, HttpResponder respond);

  Store& store_;
  PluginHost& host_;
  boost::asio::any_io_executor blocking_executor_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_ADMIN_PLUGINS_API_H_
