// vmm/loader/linux_loader.h: loads an x86-64 Linux bzImage with the 64-bit boot protocol
// (Linux Documentation/arch/x86/boot.rst, "64-bit boot protocol"): the setup header is checked
// (boot flag 0xAA55, "HdrS", protocol >= 2.12, XLF_KERNEL_64, loaded high), the protected-mode
// kernel is copied to kLinuxKernelGpa, and a zero page (struct boot_params) is written with the
// command line, the initrd, the e820 map and the ACPI RSDP address. The loader also writes the
// boot GDT (__BOOT_CS 0x10, __BOOT_DS 0x18, a TSS at 0x20) and identity page tables for the
// first 4 GiB (2 MiB pages); VcpuFd::SetupLinux64BootState points the BSP at them.
//
// Guest-physical layout (all below 1 MiB, marked reserved or left out of the kernel's way):
//   0x500 GDT · 0x7000 zero page · 0x9000-0xefff page tables · 0x20000 command line ·
//   0xe0000-0xfffef ACPI tables (vmm/acpi) · 0xffff0 a reset stub · 1 MiB kernel · initrd at
//   the top of low RAM.
// The reset stub sits at the real-mode reset vector, where Linux's last-resort reboot methods
// (BOOT_BIOS, and BOOT_EFI without EFI, which hardware-reduced ACPI makes the default) jump: it
// writes 0x06 to the reset control register 0xcf9, so every reboot path ends in a reset.
// Errors are one line, InvalidArgument, prefixed with "kernel '<name>': " for the image and
// "initrd of N bytes" for an initrd that does not fit.
// Thread-safety: pure functions; callers must not run vCPUs on the memory being loaded.
#ifndef REHOME_VMM_LOADER_LINUX_LOADER_H_
#define REHOME_VMM_LOADER_LINUX_LOADER_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/guest_memory_view.h"
#include "vmm/loader/elf_pvh_loader.h"

namespace rehome {

inline constexpr uint64_t kLinuxGdtGpa = 0x500;
inline constexpr uint16_t kLinuxGdtLimit = 6 * 8 - 1;  // null, null, code, data, TSS (16 B)
inline constexpr uint16_t kLinuxBootCs = 0x10, kLinuxBootDs = 0x18, kLinuxBootTss = 0x20;
inline constexpr uint64_t kLinuxBootParamsGpa = 0x7000;
inline constexpr uint64_t kLinuxPageTablesGpa = 0x9000;  // PML4, PDPT, 4 page directories
inline constexpr uint64_t kLinuxPageTablesEnd = kLinuxPageTablesGpa + 6 * 0x1000;
inline constexpr uint64_t kLinuxCmdlineGpa = 0x20000;
inline constexpr uint64_t kLinuxKernelGpa = 0x100000;
inline constexpr uint64_t kLinuxResetStubGpa = 0xffff0;
inline constexpr uint64_t kLinuxLowRamEnd = 0x9fc00;   // RAM below the EBDA / BIOS area
inline constexpr uint16_t kLinuxMinProtocol = 0x020c;  // 2.12: xloadflags, the 64-bit entry
inline constexpr size_t kLinuxMaxE820Entries = 128;
inline constexpr uint64_t kMaxInitrdFileBytes = 1ull << 30;

// The map a Linux guest of `ram_size` bytes gets: RAM [0, 0x9fc00), reserved up to 1 MiB
// (EBDA, ACPI tables, BIOS), RAM [1 MiB, min(ram, 3 GiB)), and the rest of RAM from 4 GiB.
std::vector<MemoryMapEntry> LinuxMemoryMap(uint64_t ram_size);

struct LinuxBootConfig {
  std::string_view cmdline;              // at most the kernel's cmdline_size bytes, no NUL
  std::span<const uint8_t> initrd;       // empty: none
  std::span<const MemoryMapEntry> e820;  // at most kLinuxMaxE820Entries
  uint64_t rsdp_gpa = 0;                 // boot_params.acpi_rsdp_addr (0: the kernel scans)
};

struct LoadedLinux {
  uint64_t entry64 = 0;  // the 64-bit entry: kLinuxKernelGpa + 0x200; RSI = boot_params_gpa
  uint64_t boot_params_gpa = kLinuxBootParamsGpa;
  uint64_t page_table_gpa = kLinuxPageTablesGpa;  // CR3
  uint64_t gdt_gpa = kLinuxGdtGpa;
  uint16_t gdt_limit = kLinuxGdtLimit;
  uint16_t protocol = 0;    // boot protocol version of the image (e.g. 0x020f)
  uint64_t kernel_end = 0;  // kLinuxKernelGpa + the kernel's init_size
  uint64_t initrd_gpa = 0, initrd_size = 0;
};

// True when `image` starts like a bzImage (boot flag and "HdrS"), whatever else is wrong with
// it: the caller picks this loader over the ELF/PVH one.
bool LooksLikeBzImage(std::span<const uint8_t> image);

// `ram_size`: bytes of guest RAM; the kernel and the initrd go below min(ram_size, 3 GiB).
absl::StatusOr<LoadedLinux> LoadLinuxFromBytes(std::string_view name,
                                               std::span<const uint8_t> image,
                                               const GuestMemoryView& memory, uint64_t ram_size,
                                               const LinuxBootConfig& config);

}  // namespace rehome

#endif  // REHOME_VMM_LOADER_LINUX_LOADER_H_
