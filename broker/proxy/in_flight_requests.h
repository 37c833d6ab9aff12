// InFlightRequests: the requests the route proxy is forwarding right now,
// by plugin and request id, with the caller each one was authenticated as.
// HostApi.GetCurrentUser(request_id) reads it, so that a plugin learns the
// user of one of ITS OWN requests in flight, and nothing else.
// Thread-safe: every method may be called from any thread.
//
//   InFlightRequests in_flight;
//   {
//     InFlightRequests::Entry entry = in_flight.Add("wiki", "5f0c…", user);
//     ... forward the request ...
//   }  // removed here
//   in_flight.Find("wiki", "5f0c…");  // the user while the entry lives
#ifndef TRACIM_BROKER_PROXY_IN_FLIGHT_REQUESTS_H_
#define TRACIM_BROKER_PROXY_IN_FLIGHT_REQUESTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tracim/plugin/v1/entities.pb.h"

namespace tracim::broker {

class InFlightRequests {
 public:
  // Removes its request when destroyed (or reset). Movable, not copyable;
  // must not outlive the registry.
  class Entry {
   public:
    Entry() = default;
    Entry(Entry&& other) noexcept { *this = std::move(other); }
    Entry& operator=(Entry&& other) noexcept;
    ~Entry() { Reset(); }
    void Reset();

   private:
    friend class InFlightRequests;
    Entry(InFlightRequests* registry, std::string plugin, std::string request_id, uint64_t ticket)
        : registry_(registry),
          plugin_(std::move(plugin)),
          request_id_(std::move(request_id)),
          ticket_(ticket) {}

    InFlightRequests* registry_ = nullptr;
    std::string plugin_;
    std::string request_id_;
    uint64_t ticket_ = 0;
  };

  InFlightRequests() = default;
  InFlightRequests(const InFlightRequests&) = delete;
  InFlightRequests& operator=(const InFlightRequests&) = delete;

  // Records a request to `plugin` with `request_id`, made by `user` (nullopt:
  // anonymous), until the returned entry goes away.
  [[nodiscard]] Entry Add(std::string plugin, std::string request_id,
                          std::optional<tracim::plugin::v1::User> user);

  // The user of the request `request_id` in flight to `plugin`; nullopt if
  // there is none, if it is anonymous, or if several requests with that id
  // (client-chosen X-Request-Id values may collide) are in flight with
  // different users: a plugin is never given a user it cannot be sure of.
  std::optional<tracim::plugin::v1::User> Find(const std::string& plugin,
                                               const std::string& request_id) const;

  // Requests in flight, all plugins together.
  size_t size() const;

 private:
  void Remove(const std::string& plugin, const std::string& request_id, uint64_t ticket);

  struct Request {
    std::optional<tracim::plugin::v1::User> user;
  };
  using Key = std::pair<std::string, std::string>;  // plugin, request id

  mutable absl::Mutex mu_;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  // Per key, the requests by ticket (usually exactly one).
  std::map<Key, std::map<uint64_t, Request>> requests_ ABSL_GUARDED_BY(mu_);
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_PROXY_IN_FLIGHT_REQUESTS_H_
