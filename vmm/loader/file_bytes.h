// vmm/loader/file_bytes.h: reads a whole regular file (a kernel, an initrd) into memory with
// one-line errors that name it. Thread-safe (no shared state).
#ifndef REHOME_VMM_LOADER_FILE_BYTES_H_
#define REHOME_VMM_LOADER_FILE_BYTES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome {

// The bytes of the file at `path`, which must be a regular file: it is opened without ever
// blocking (a FIFO is refused, not waited on; base/regular_file.h). Errors name the file as
// "<what> '<path>'" (`what` e.g. "kernel", "initrd"): errno statuses (NotFound,
// PermissionDenied, ...) for an unreadable file, InvalidArgument "<what> '<path>': is a FIFO, not
// a regular file" (and the like) or for a file larger than `max_bytes`.
absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(std::string_view path, std::string_view what,
                                                   uint64_t max_bytes);

}  // namespace rehome

#endif  // REHOME_VMM_LOADER_FILE_BYTES_H_
