#include "base/mapped_region.h"

#include "base/errno_status.h"

namespace rehome {

absl::StatusOr<MappedRegion> MappedRegion::Map(size_t size, int prot, int flags, int fd,
                                               off_t offset) {
  void* addr = ::mmap(nullptr, size, prot, flags, fd, offset);
  if (addr == MAP_FAILED) return LastErrnoStatus("mmap");
  return MappedRegion(addr, size);
}

}  // namespace rehome
