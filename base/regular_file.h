// base/regular_file.h: opening a file the user named that must be a regular file (a kernel
// image, a disk image, a domain XML), without ever blocking on what it really is: a FIFO is
// opened non-blocking and refused, a directory, device or socket is refused, each with a one-line
// InvalidArgument naming the path and what it is. Thread-safe (no state).
#ifndef REHOME_BASE_REGULAR_FILE_H_
#define REHOME_BASE_REGULAR_FILE_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace rehome {

// "a FIFO", "a directory", "a character device", ... for a stat mode.
const char* FileTypeName(mode_t mode);

// Opens `path` with `flags` (O_RDONLY or O_RDWR, plus e.g. O_DIRECT; O_CLOEXEC is added) and
// checks that it is a regular file; the fd is left in blocking mode. Errors name the file as
// "<what> '<path>'": errno-mapped (NotFound, PermissionDenied, ...) when open fails, else
// InvalidArgument "<what> '<path>': is a FIFO, not a regular file" (and the like).
absl::StatusOr<UniqueFd> OpenRegularFile(const std::string& path, int flags, std::string_view what);

}  // namespace rehome

#endif  // REHOME_BASE_REGULAR_FILE_H_
