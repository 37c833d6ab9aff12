#include "broker/proxy/in_flight_requests.h"

namespace tracim::broker {

namespace v1 = tracim::plugin::v1;

InFlightRequests::Entry& InFlightRequests::Entry::operator=(Entry&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    plugin_ = std::move(other.plugin_);
    request_id_ = std::move(other.request_id_);
    ticket_ = other.ticket_;
  }
  return *this;
}

void InFlightRequests::Entry::Reset() {
  if (registry_ == nullptr) return;
  registry_->Remove(plugin_, request_id_, ticket_);
  registry_ = nullptr;
}

InFlightRequests::Entry InFlightRequests::Add(std::string plugin, std::string request_id,
                                              std::optional<v1::User> user) {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  requests_[Key(plugin, request_id)].emplace(ticket, Request{std::move(user)});
  ++size_;
  return Entry(this, std::move(plugin), std::move(request_id), ticket);
}

void InFlightRequests::Remove(const std::string& plugin, const std::string& request_id,
                              uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  auto it = requests_.find(Key(plugin, request_id));
  if (it == requests_.end()) return;
  size_ -= it->second.erase(ticket);
  if (it->second.empty()) requests_.erase(it);
}

std::optional<v1::User> InFlightRequests::Find(const std::string& plugin,
                                               const std::string& request_id) const {
  absl::MutexLock lock(&mu_);
  auto it = requests_.find(Key(plugin, request_id));
  if (it == requests_.end()) return std::nullopt;
  const std::optional<v1::User>& first = it->second.begin()->second.user;
  if (!first.has_value()) return std::nullopt;
  for (const auto& [ticket, request] : it->second) {
    if (!request.user.has_value() || request.user->user_id() != first->user_id()) {
      return std::nullopt;
    }
  }
  return first;
}

size_t InFlightRequests::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

}  // namespace tracim::broker
