// RestApi: the embedded backend's REST API under /api/ (tracim's paths and
// field names), over a Store, firing tracim's hooks after each commit.
// Thread-safe: handlers run on the HTTP io thread only long enough to match
// the route; authentication, store calls and hashing run on the blocking
// executor, which answers through the (thread-safe) HttpResponder.
//
//   boost::asio::thread_pool pool(2);
//   RestApi api(*store, [&bus](Event e) { bus.Publish(std::move(e)); }, pool.get_executor());
//   RETURN_IF_ERROR(api.Register(router));            // binds the prefix "/api/"
//   HttpServer server(io, options, std::move(router));
//   ... server.Stop(...); pool.join();                // then destroy api
#ifndef TRACIM_BROKER_BACKEND_REST_API_H_
#define TRACIM_BROKER_BACKEND_REST_API_H_

#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/any_io_executor.hpp"
#include "broker/backend/change_publisher.h"
#include "broker/http/http_handler.h"
#include "broker/http/http_request.h"
#include "broker/http/http_router.h"
#include "broker/store/store.h"
#include "tracim/plugin/v1/events.pb.h"

namespace tracim::broker {

// Events (see EventPublisher in change_publisher.h) are published on an
// executor thread, in commit order. An update that changed nothing (same
// user, workspace or role) publishes nothing; a content update always does
// (it sets modified and revision_type).

struct RestApiOptions {
  // The time stamped on events (Event.created); tests pin it.
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class RestApi {
 public:
  // `store` and the executor's execution context must outlive this object
  // and every request it accepted: stop the HttpServer and join the pool
  // before destroying it.
  RestApi(Store& store, EventPublisher publish, boost::asio::any_io_executor blocking_executor,
          RestApiOptions options = {});
  // Publishes through `changes`, shared with the other writers (the host
  // API), which must outlive this object.
  RestApi(Store& store, ChangePublisher& changes, boost::asio::any_io_executor blocking_executor,
          RestApiOptions options = {});
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  // Binds the prefix "/api/" (a simple handler, the server's default body
  // limit). Fails as HttpRouter::AddPrefix does (kAlreadyExists if bound).
  absl::Status Register(HttpRouter& router);

  // The handler Register binds; exposed for routers that dispatch
  // themselves. Call on any thread; never blocks.
  void Handle(HttpRequest request, HttpResponder respond);

 private:
  // One authenticated request on the blocking executor (rest_api.cc).
  class Exchange;

  Store& store_;
  // Set by the constructor taking an EventPublisher.
  std::unique_ptr<ChangePublisher> own_changes_;
  // Its mutex is held around each mutation and the publication of its
  // events, so that events leave in commit order.
  ChangePublisher& changes_;
  boost::asio::any_io_executor blocking_executor_;
  RestApiOptions options_;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_BACKEND_REST_API_H_
