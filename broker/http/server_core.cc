#include "broker/http/server_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "boost/asio/post.hpp"
#include "broker/http/http_connection.h"
#include "spdlog/spdlog.h"

namespace tracim::broker::http_internal {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

std::string FormatEndpoint(const std::string& host, uint16_t port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

}  // namespace

void AtomicCounters::CountResponse(int status) {
  const int cls = status / 100;
  if (cls >= 1 && cls <= 5) responses_[cls].fetch_add(1, std::memory_order_relaxed);
}

HttpServerCounters AtomicCounters::Snapshot() const {
  HttpServerCounters c;
  c.connections_accepted = connections_accepted.load();
  c.connections_open = connections_open.load();
  c.requests = requests.load();
  c.responses_1xx = responses_[1].load();
  c.responses_2xx = responses_[2].load();
  c.responses_3xx = responses_[3].load();
  c.responses_4xx = responses_[4].load();
  c.responses_5xx = responses_[5].load();
  c.bytes_received = bytes_received.load();
  c.bytes_sent = bytes_sent.load();
  c.timeouts = timeouts.load();
  c.handler_errors = handler_errors.load();
  return c;
}

ServerCore::ServerCore(asio::io_context& io, HttpServerOptions options, HttpRouter router)
    : io_(io),
      options_(std::move(options)),
      router_(std::move(router)),
      strand_(asio::make_strand(io)),
      acceptor_(strand_),
      accept_retry_timer_(strand_),
      grace_timer_(strand_) {}

absl::Status ServerCore::Listen() {
  if (listening_.exchange(true))
    return absl::FailedPreconditionError("the server was already started");
  if (options_.body_chunk_bytes == 0 || options_.max_header_bytes == 0) {
    return absl::InvalidArgumentError("body_chunk_bytes and max_header_bytes must be positive");
  }
  error_code ec;
  tcp::resolver resolver(io_);
  const auto results =
      resolver.resolve(options_.host, std::to_string(options_.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve listen host '", options_.host,
                                                   "': ", ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  const std::string where = FormatEndpoint(options_.host, options_.port);
  auto fail = [&](const error_code& e) {
    error_code ignored;
    acceptor_.close(ignored);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", where, ": ", e.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return fail(ec);
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail(ec);
  if (acceptor_.bind(endpoint, ec); ec) return fail(ec);
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) return fail(ec);
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  if (ec) return fail(ec);
  port_ = bound.port();
  asio::post(strand_, [self = shared_from_this()] { self->DoAccept(); });
  return absl::OkStatus();
}

void ServerCore::DoAccept() {
  if (!acceptor_.is_open()) return;
  acceptor_.async_accept(asio::make_strand(io_),
                         [self = shared_from_this()](error_code ec, tcp::socket socket) {
                           self->OnAccept(ec, std::move(socket));
                         });
}

void ServerCore::OnAccept(error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE and friends: do not spin; try again shortly.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry_timer_.expires_after(std::chrono::milliseconds(50));
    accept_retry_timer_.async_wait([self = shared_from_this()](error_code e) {
      if (!e) self->DoAccept();
    });
    return;
  }
  auto connection = std::make_shared<HttpConnection>(shared_from_this(), std::move(socket));
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;  // `connection` closes its socket on destruction
    connections_.emplace(connection.get(), connection);
  }
  counters_.connections_accepted++;
  counters_.connections_open++;
  connection->Start();
  DoAccept();
}

std::vector<std::shared_ptr<HttpConnection>> ServerCore::Snapshot() {
  std::vector<std::shared_ptr<HttpConnection>> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [raw, weak] : connections_) {
    if (auto strong = weak.lock()) out.push_back(std::move(strong));
  }
  return out;
}

void ServerCore::Stop(std::function<void()> done) {
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
    bool first;
    {
      absl::MutexLock lock(&self->mu_);
      if (done) self->stop_callbacks_.push_back(std::move(done));
      first = !self->stopping_;
      self->stopping_ = true;
    }
    if (first) {
      error_code ignored;
      self->acceptor_.close(ignored);
      self->accept_retry_timer_.cancel();
      for (const auto& connection : self->Snapshot()) connection->BeginShutdown();
      self->grace_timer_.expires_after(absl::ToChronoNanoseconds(
          std::clamp(self->options_.stop_grace, absl::ZeroDuration(), absl::Hours(24 * 365))));
      self->grace_timer_.async_wait([self](error_code ec) {
        if (ec) return;
        for (const auto& connection : self->Snapshot()) {
          connection->ForceClose(absl::UnavailableError("server is shutting down"));
        }
      });
    }
    self->CheckDrained();
  });
}

void ServerCore::Abandon() {
  asio::post(strand_, [self = shared_from_this()] {
    {
      absl::MutexLock lock(&self->mu_);
      self->stopping_ = true;
    }
    error_code ignored;
    self->acceptor_.close(ignored);
    self->accept_retry_timer_.cancel();
    for (const auto& connection : self->Snapshot()) {
      connection->ForceClose(absl::UnavailableError("server is shutting down"));
    }
    self->CheckDrained();
  });
}

void ServerCore::ConnectionClosed(HttpConnection* connection) {
  bool drained;
  {
    absl::MutexLock lock(&mu_);
    if (connections_.erase(connection) == 0) return;
    drained = stopping_ && connections_.empty();
  }
  counters_.connections_open--;
  if (drained) asio::post(strand_, [self = shared_from_this()] { self->CheckDrained(); });
}

void ServerCore::CheckDrained() {
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ || !connections_.empty()) return;
    callbacks.swap(stop_callbacks_);
  }
  if (callbacks.empty()) return;
  grace_timer_.cancel();
  for (auto& callback : callbacks) {
    try {
      callback();
    } catch (const std::exception& e) {
      spdlog::error("http: Stop callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("http: Stop callback threw");
    }
  }
}

}  // namespace tracim::broker::http_internal
