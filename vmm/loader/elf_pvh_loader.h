// vmm/loader/elf_pvh_loader.h: loads an ELF64 x86-64 ET_EXEC kernel that carries a Xen PVH entry
// note (XEN_ELFNOTE_PHYS32_ENTRY) into guest RAM and writes the PVH boot information: an
// hvm_start_info (version 1) at kStartInfoGpa, the memory map at kMemmapGpa and the NUL-terminated
// command line at kCmdlineGpa. Every header field and bound is validated before anything is
// written (overflow-safe; segments must lie inside RAM below the MMIO hole and outside the boot
// information area [kBootInfoStart, kBootInfoEnd)). Errors are one line, prefixed with
// "kernel '<name>'": NotFound/PermissionDenied for an unreadable file, InvalidArgument for a
// malformed image or bad parameters. Thread-safety: pure functions; callers must not run vCPUs
// on the memory being loaded.
#ifndef REHOME_VMM_LOADER_ELF_PVH_LOADER_H_
#define REHOME_VMM_LOADER_ELF_PVH_LOADER_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/guest_memory_view.h"

namespace rehome {

// Guest-physical layout of the PVH boot information.
inline constexpr uint64_t kBootInfoStart = 0x6000;
inline constexpr uint64_t kStartInfoGpa = 0x6000;
inline constexpr uint64_t kMemmapGpa = 0x6100;
inline constexpr uint64_t kCmdlineGpa = 0x7000;
inline constexpr uint64_t kMaxCmdlineBytes = 2048;  // including the terminating NUL
inline constexpr uint64_t kBootInfoEnd = kCmdlineGpa + kMaxCmdlineBytes;
// RAM above this (up to 4 GiB) is the MMIO hole; kernels load below it.
inline constexpr uint64_t kLoaderMmioHoleStart = 0xC000'0000;
inline constexpr uint64_t kLoaderMmioHoleEnd = 0x1'0000'0000;
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;
inline constexpr uint32_t kXenElfNotePhys32Entry = 18;
inline constexpr uint64_t kMaxKernelFileBytes = 1ull << 30;

struct MemoryMapEntry {
  enum Type : uint32_t { kRam = 1, kReserved = 2 };
  uint64_t addr = 0;
  uint64_t size = 0;
  uint32_t type = kRam;
};
// Entries that fit between kMemmapGpa and kCmdlineGpa (24 bytes each).
inline constexpr uint64_t kMaxMemmapEntries = (kCmdlineGpa - kMemmapGpa) / 24;

// The map for `ram_size` bytes laid out like kvm-l0's GuestMemory: RAM [0, min(ram, 3 GiB)),
// the MMIO hole reserved [3 GiB, 4 GiB), the rest of RAM from 4 GiB.
std::vector<MemoryMapEntry> DefaultMemoryMap(uint64_t ram_size);

struct LoadedKernel {
  uint64_t entry32 = 0;         // 32-bit protected-mode entry (EIP); EBX = start_info_gpa
  uint64_t start_info_gpa = 0;  // kStartInfoGpa
  uint64_t kernel_end = 0;      // one past the highest loaded byte (bss included)
};

// `ram_size`: bytes of guest RAM (the loader uses [0, min(ram_size, 3 GiB))); `memmap`: what the
// guest is told (at most kMaxMemmapEntries non-empty, non-overflowing entries); `cmdline`: at
// most kMaxCmdlineBytes - 1 bytes, no NUL.
absl::StatusOr<LoadedKernel> LoadPvhKernelFromBytes(std::string_view name,
                                                    std::span<const uint8_t> image,
                                                    const GuestMemoryView& memory,
                                                    uint64_t ram_size, std::string_view cmdline,
                                                    std::span<const MemoryMapEntry> memmap);

// Reads the file at `path` (a regular file of at most kMaxKernelFileBytes) and loads it.
absl::StatusOr<LoadedKernel> LoadPvhKernelFromFile(std::string_view path,
                                                   const GuestMemoryView& memory, uint64_t ram_size,
                                                   std::string_view cmdline,
                                                   std::span<const MemoryMapEntry> memmap);

}  // namespace rehome

#endif  // REHOME_VMM_LOADER_ELF_PVH_LOADER_H_
