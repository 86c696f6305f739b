#include "base/errno_status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace rehome {

absl::Status ErrnoToStatus(int error_number, std::string_view what) {
  std::string message =
      absl::StrCat(absl::string_view(what.data(), what.size()), ": ", std::strerror(error_number));
  switch (error_number) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return absl::NotFoundError(message);
    case EINVAL:
    case E2BIG:
    case ENOEXEC:
    case ERANGE:
      return absl::InvalidArgumentError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    case EAGAIN:
    case EBUSY:
    case EINTR:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
      return absl::UnavailableError(message);
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ETIMEDOUT:
      return absl::DeadlineExceededError(message);
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status LastErrnoStatus(std::string_view what) { return ErrnoToStatus(errno, what); }

}  // namespace rehome
