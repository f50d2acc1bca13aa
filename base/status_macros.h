// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr,
// which abseil 20220623 does not provide. Add context where the error is
// returned (absl::Status messages), not where it is logged.
#ifndef SPATE_BASE_STATUS_MACROS_H_
#define SPATE_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status spate_status_ = (expr);         \
    if (ABSL_PREDICT_FALSE(!spate_status_.ok())) { \
      return spate_status_;                        \
    }                                              \
  } while (false)

#define SPATE_STATUS_CONCAT_INNER(a, b) a##b
#define SPATE_STATUS_CONCAT(a, b) SPATE_STATUS_CONCAT_INNER(a, b)

#define ASSIGN_OR_RETURN(lhs, expr)                                           \
  SPATE_ASSIGN_OR_RETURN_IMPL(SPATE_STATUS_CONCAT(spate_statusor_, __LINE__), \
                              lhs, expr)

#define SPATE_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {              \
    return std::move(statusor).status();                 \
  }                                                      \
  lhs = std::move(statusor).value()

#endif  // SPATE_BASE_STATUS_MACROS_H_
