// base/mapped_region.h: move-only owner of an mmap()ed range; munmap()s it in the destructor and
// nulls the source on move. Not thread-safe (one owner); the mapped bytes themselves may be
// shared with other threads, processes and KVM.
#ifndef REHOME_BASE_MAPPED_REGION_H_
#define REHOME_BASE_MAPPED_REGION_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"

namespace rehome {

class MappedRegion final {
 public:
  MappedRegion() = default;
  MappedRegion(void* addr, size_t size) : addr_(addr), size_(size) {}
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  MappedRegion(MappedRegion&& other) noexcept
      : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedRegion& operator=(MappedRegion&& other) noexcept {
    if (this != &other) {
      Reset();
      addr_ = std::exchange(other.addr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~MappedRegion() { Reset(); }

  // mmap(nullptr, size, prot, flags, fd, offset) with the error converted to a Status.
  static absl::StatusOr<MappedRegion> Map(size_t size, int prot, int flags, int fd, off_t offset);

  void* get() const { return addr_; }
  uint8_t* bytes() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }
  bool valid() const { return addr_ != nullptr; }
  void Reset() {
    if (addr_ != nullptr) ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rehome

#endif  // REHOME_BASE_MAPPED_REGION_H_
