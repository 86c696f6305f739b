// base/errno_status.h: the one place where errno values become absl::Status.
// Thread-safe (pure functions).
#ifndef REHOME_BASE_ERRNO_STATUS_H_
#define REHOME_BASE_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace rehome {

// Maps `error_number` to a status code (ENOENT -> NotFound, EINVAL -> InvalidArgument,
// EACCES/EPERM -> PermissionDenied, EAGAIN/EBUSY -> Unavailable, ...) and builds a message
// "<what>: <strerror>".
absl::Status ErrnoToStatus(int error_number, std::string_view what);

// Same, reading the calling thread's errno.
absl::Status LastErrnoStatus(std::string_view what);

}  // namespace rehome

#endif  // REHOME_BASE_ERRNO_STATUS_H_
