// vmm/cli/boot_image.h: what `rehome run --kernel` boots. An ELF64 with a Xen PVH note (the
// test guest) is loaded by the PVH loader; a Linux bzImage by the Linux loader, with an optional
// initrd, the e820 map (plus any reserved ranges the caller adds) and ACPI tables that describe
// the vCPUs and the virtio-mmio devices. SetupBootVcpu then gives the BSP the matching entry
// state. Errors are one line naming the file (see the loaders). Thread-safety: pure functions
// over the caller's memory; no vCPU may run while loading.
#ifndef REHOME_VMM_CLI_BOOT_IMAGE_H_
#define REHOME_VMM_CLI_BOOT_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kvm-l0/vcpu_fd.h"
#include "vmm/guest_memory_view.h"
#include "vmm/loader/elf_pvh_loader.h"
#include "vmm/loader/linux_loader.h"

namespace rehome {

struct BootImageConfig {
  std::string kernel_path;
  std::string initrd_path;  // Linux only; "" = none
  std::string cmdline;
  uint64_t memory_bytes = 0;
  int cpus = 1;
  int virtio_devices = 0;  // virtio-mmio devices 0..n-1 at kVirtioMmioBase (ACPI, Linux only)
  std::vector<MemoryMapEntry> extra_e820;  // appended to the Linux map (e.g. reserved ranges)
};

struct BootImage {
  bool is_linux = false;
  LoadedKernel pvh;    // !is_linux
  LoadedLinux kernel;  // is_linux
};

// True when the file at `path` starts like a bzImage; false for anything else (including an
// unreadable file, which the loader then reports).
bool IsBzImageFile(const std::string& path);

absl::StatusOr<BootImage> LoadBootImage(const BootImageConfig& config,
                                        const GuestMemoryView& memory);

// The BSP's entry state for `image`, and the boot MSRs and XCR0 (`xcr0`, see
// VcpuFd::SetupBootXcr0) on every vCPU in `vcpus`.
absl::Status SetupBootVcpus(const BootImage& image, std::vector<VcpuFd>& vcpus, uint64_t xcr0);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_BOOT_IMAGE_H_
