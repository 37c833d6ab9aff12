// absl::Status ⇄ grpc::Status, one to one (the codes share their values).
// Stateless: thread-safe.
#ifndef TRACIM_BROKER_COMMON_GRPC_STATUS_H_
#define TRACIM_BROKER_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace tracim::broker {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace tracim::broker

#endif  // TRACIM_BROKER_COMMON_GRPC_STATUS_H_
