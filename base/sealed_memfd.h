// base/sealed_memfd.h: shared memory between rehome's processes: memfds whose size is sealed
// (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), so that no process that maps one can be made to
// fault by a truncation, and the checked mapping of one received from another process.
// Thread-safety: stateless functions.
#ifndef REHOME_BASE_SEALED_MEMFD_H_
#define REHOME_BASE_SEALED_MEMFD_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

// A close-on-exec memfd named `name` of exactly `size` bytes (zero-filled), its size sealed.
absl::StatusOr<UniqueFd> CreateSealedMemfd(const char* name, uint64_t size);

// Maps all of `fd` shared and read/write (plus `extra_flags`, e.g. MAP_POPULATE) after checking
// that it is exactly `size` bytes: InvalidArgument "<what>: size N, expected M" otherwise.
absl::StatusOr<MappedRegion> MapSharedOfSize(int fd, uint64_t size, std::string_view what,
                                             int extra_flags = 0);

}  // namespace rehome

#endif  // REHOME_BASE_SEALED_MEMFD_H_
