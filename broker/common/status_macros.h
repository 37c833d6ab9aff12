// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr.
// Debian's Abseil ships no status_macros.h; these are the two we use.
// Header-only, no state: safe from any thread.
#ifndef TRACIM_BROKER_COMMON_STATUS_MACROS_H_
#define TRACIM_BROKER_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status tracim_status_ = (expr);          \
    if (!tracim_status_.ok()) return tracim_status_; \
  } while (false)

#define TRACIM_STATUS_CONCAT_INNER_(a, b) a##b
#define TRACIM_STATUS_CONCAT_(a, b) TRACIM_STATUS_CONCAT_INNER_(a, b)

// `ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());` declares or
// assigns `lhs` from the value, or returns the error status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  TRACIM_ASSIGN_OR_RETURN_IMPL_(TRACIM_STATUS_CONCAT_(tracim_statusor_, __LINE__), lhs, expr)

#define TRACIM_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                  \
  if (!var.ok()) return std::move(var).status();      \
  lhs = std::move(var).value()

#endif  // TRACIM_BROKER_COMMON_STATUS_MACROS_H_
