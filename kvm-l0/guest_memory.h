// kvm-l0/guest_memory.h: guest RAM as at most two regions, each backed by ONE sealed memfd
// (size fixed by F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL) mapped MAP_SHARED|MAP_NORESERVE, so
// that another VM or another process can map the same RAM (FromFds). Layout for a VM of S
// bytes: [0, min(S, 3 GiB)) at GPA 0, the MMIO hole [3 GiB, 4 GiB) for devices and the
// LAPIC/IOAPIC, and the rest of S at 4 GiB. Memory is sparse: nothing is touched or populated
// at creation, so a large VM starts fast and costs only the pages the guest uses.
// Thread-safety: the object is immutable after creation (const methods are safe from any
// thread); the guest bytes are shared with vCPUs and other processes without synchronisation.
// Move-only; the destructor unmaps and closes.
#ifndef REHOME_KVM_L0_GUEST_MEMORY_H_
#define REHOME_KVM_L0_GUEST_MEMORY_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

class GuestMemory final {
 public:
  static constexpr uint64_t kMmioHoleStart = 0xC000'0000;
  static constexpr uint64_t kMmioHoleEnd = 0x1'0000'0000;
  static constexpr uint64_t kMinSize = 16ull << 20;
  static constexpr uint64_t kMaxSize = 1ull << 40;
  static constexpr uint64_t kSizeAlignment = 2ull << 20;

  // One region as seen by users of the memory.
  struct Region {
    uint64_t gpa = 0;
    uint64_t size = 0;
    uint8_t* host = nullptr;  // valid while the GuestMemory lives
    int fd = -1;              // the memfd; owned by the GuestMemory
  };

  // An existing memfd to map (FromFds). The fd is duplicated; the caller keeps its own.
  // `offset` is where the region starts in the file (page aligned); a character device (an
  // agent's /dev/mem) is mapped without the size check a memfd gets.
  struct RegionDesc {
    uint64_t gpa = 0;
    uint64_t size = 0;
    int fd = -1;
    uint64_t offset = 0;
  };

  // `size_bytes` of RAM laid out as above. InvalidArgument when below 16 MiB, above 1 TiB or
  // not a multiple of 2 MiB; memfd/mmap failures map through ErrnoToStatus.
  static absl::StatusOr<GuestMemory> Create(uint64_t size_bytes);

  // Maps existing memfds (e.g. from another process). InvalidArgument when a region is empty,
  // not 4 KiB aligned, overlaps another or the MMIO hole, or its fd is smaller than `size`.
  static absl::StatusOr<GuestMemory> FromFds(std::span<const RegionDesc> regions);

  GuestMemory(GuestMemory&&) = default;
  GuestMemory& operator=(GuestMemory&&) = default;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  const std::vector<Region>& regions() const { return regions_; }
  uint64_t total_size() const { return total_size_; }

  // Host pointer for [gpa, gpa + len), or nullptr unless the whole range lies inside one region
  // (overflow safe). len == 0 asks whether `gpa` itself is RAM.
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const;

  // Copies between guest RAM and `out`/`in`. InvalidArgument when the range is not RAM.
  absl::Status Read(uint64_t gpa, std::span<uint8_t> out) const;
  absl::Status Write(uint64_t gpa, std::span<const uint8_t> in) const;

 private:
  GuestMemory() = default;
  // Maps `fd` (taking ownership) as the region at `gpa`.
  absl::Status AddRegion(uint64_t gpa, uint64_t size, UniqueFd fd, uint64_t offset = 0);

  std::vector<Region> regions_;
  std::vector<UniqueFd> fds_;
  std::vector<MappedRegion> mappings_;
  uint64_t total_size_ = 0;
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_GUEST_MEMORY_H_
