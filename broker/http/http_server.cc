#include "broker/http/http_server.h"

#include <utility>

#include "broker/http/server_core.h"

namespace tracim::broker {

HttpServer::HttpServer(boost::asio::io_context& io, HttpServerOptions options, HttpRouter router)
    : core_(
          std::make_shared<http_internal::ServerCore>(io, std::move(options), std::move(router))) {}

HttpServer::~HttpServer() { core_->Abandon(); }

absl::Status HttpServer::Start() { return core_->Listen(); }

uint16_t HttpServer::port() const { return core_->port(); }

void HttpServer::Stop(std::function<void()> done) { core_->Stop(std::move(done)); }

HttpServerCounters HttpServer::counters() const { return core_->counters().Snapshot(); }

}  // namespace tracim::broker
