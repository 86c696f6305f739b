// base/status_macros.h: RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
// Header-only; no state, thread-safe.
#ifndef REHOME_BASE_STATUS_MACROS_H_
#define REHOME_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define REHOME_CONCAT_INNER_(a, b) a##b
#define REHOME_CONCAT_(a, b) REHOME_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status rehome_status_ = (expr);          \
    if (!rehome_status_.ok()) return rehome_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns its
// status, otherwise moves the value into `lhs` (which may be a declaration: `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  REHOME_ASSIGN_OR_RETURN_IMPL_(REHOME_CONCAT_(rehome_statusor_, __LINE__), lhs, expr)
#define REHOME_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#endif  // REHOME_BASE_STATUS_MACROS_H_
