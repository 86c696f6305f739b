// kvm-l0/guest_memory.cc: see guest_memory.h.
#include "kvm-l0/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/sealed_memfd.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr uint64_t kPageSize = 4096;

// True when [a, a + a_size) and [b, b + b_size) intersect (sizes are non-zero, no overflow).
bool Overlaps(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  return a < b + b_size && b < a + a_size;
}

}  // namespace

absl::StatusOr<GuestMemory> GuestMemory::Create(uint64_t size_bytes) {
  if (size_bytes < kMinSize || size_bytes > kMaxSize || size_bytes % kSizeAlignment != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "guest memory size %d bytes: must be a multiple of 2 MiB from 16 MiB to 1 TiB",
        size_bytes));
  }
  GuestMemory mem;
  const uint64_t low = std::min(size_bytes, kMmioHoleStart);
  ASSIGN_OR_RETURN(UniqueFd low_fd, CreateSealedMemfd("rehome-ram-low", low));
  RETURN_IF_ERROR(mem.AddRegion(0, low, std::move(low_fd)));
  if (size_bytes > low) {
    const uint64_t high = size_bytes - low;
    ASSIGN_OR_RETURN(UniqueFd high_fd, CreateSealedMemfd("rehome-ram-high", high));
    RETURN_IF_ERROR(mem.AddRegion(kMmioHoleEnd, high, std::move(high_fd)));
  }
  return mem;
}

absl::StatusOr<GuestMemory> GuestMemory::FromFds(std::span<const RegionDesc> regions) {
  if (regions.empty()) return absl::InvalidArgumentError("guest memory: no regions");
  for (size_t i = 0; i < regions.size(); ++i) {
    const RegionDesc& r = regions[i];
    if (r.size == 0 || r.gpa % kPageSize != 0 || r.size % kPageSize != 0 ||
        r.offset % kPageSize != 0 || r.gpa + r.size < r.gpa) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory region [0x%x, +0x%x): empty, unaligned or wrapping", r.gpa, r.size));
    }
    if (Overlaps(r.gpa, r.size, kMmioHoleStart, kMmioHoleEnd - kMmioHoleStart)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory region [0x%x, +0x%x) overlaps the MMIO hole", r.gpa, r.size));
    }
    for (size_t j = 0; j < i; ++j) {
      if (Overlaps(r.gpa, r.size, regions[j].gpa, regions[j].size)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("guest memory regions %d and %d overlap", j, i));
      }
    }
    struct stat st;
    if (::fstat(r.fd, &st) < 0) return LastErrnoStatus("fstat(guest memory fd)");
    if (!S_ISCHR(st.st_mode) && static_cast<uint64_t>(st.st_size) < r.offset + r.size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "guest memory fd %d holds %d bytes, region needs %d", r.fd, st.st_size, r.size));
    }
  }
  GuestMemory mem;
  for (const RegionDesc& r : regions) {
    UniqueFd fd(::fcntl(r.fd, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return LastErrnoStatus("fcntl(F_DUPFD_CLOEXEC)");
    RETURN_IF_ERROR(mem.AddRegion(r.gpa, r.size, std::move(fd), r.offset));
  }
  return mem;
}

absl::Status GuestMemory::AddRegion(uint64_t gpa, uint64_t size, UniqueFd fd, uint64_t offset) {
  ASSIGN_OR_RETURN(MappedRegion mapping,
                   MappedRegion::Map(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                                     fd.get(), static_cast<off_t>(offset)));
  regions_.push_back(Region{gpa, size, mapping.bytes(), fd.get()});
  fds_.push_back(std::move(fd));
  mappings_.push_back(std::move(mapping));
  total_size_ += size;
  return absl::OkStatus();
}

uint8_t* GuestMemory::HostAddress(uint64_t gpa, uint64_t len) const {
  for (const Region& r : regions_) {
    if (gpa < r.gpa) continue;
    const uint64_t offset = gpa - r.gpa;
    if (offset >= r.size || len > r.size - offset) continue;
    return r.host + offset;
  }
  return nullptr;
}

absl::Status GuestMemory::Read(uint64_t gpa, std::span<uint8_t> out) const {
  const uint8_t* host = HostAddress(gpa, out.size());
  if (host == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("guest read [0x%x, +0x%x) is not guest RAM", gpa, out.size()));
  }
  if (!out.empty()) std::memcpy(out.data(), host, out.size());
  return absl::OkStatus();
}

absl::Status GuestMemory::Write(uint64_t gpa, std::span<const uint8_t> in) const {
  uint8_t* host = HostAddress(gpa, in.size());
  if (host == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("guest write [0x%x, +0x%x) is not guest RAM", gpa, in.size()));
  }
  if (!in.empty()) std::memcpy(host, in.data(), in.size());
  return absl::OkStatus();
}

}  // namespace rehome
