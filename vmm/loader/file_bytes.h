// vmm/loader/file_bytes.h: reads a whole regular file (a kernel, an initrd) into memory with
// one-line errors that name it. Thread-safe (no shared state).
#ifndef REHOME_VMM_LOADER_FILE_BYTES_H_
#define REHOME_VMM_LOADER_FILE_BYTES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome {

// The bytes of the file at `path`. Errors, prefixed with `what` (e.g. "kernel 'x'"): errno
// statuses (NotFound, PermissionDenied, ...) for an unreadable file, InvalidArgument when it is
// not a regular file or larger than `max_bytes`.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(std::string_view path, std::string_view what,
                                                   uint64_t max_bytes);

}  // namespace rehome

#endif  // REHOME_VMM_LOADER_FILE_BYTES_H_
