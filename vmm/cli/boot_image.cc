// vmm/cli/boot_image.cc: LoadBootImage and SetupBootVcpus.
#include "vmm/cli/boot_image.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "vmm/acpi/acpi_tables.h"
#include "vmm/device_model.h"
#include "vmm/loader/file_bytes.h"

namespace rehome {

bool IsBzImageFile(const std::string& path) {
  // Never blocks: a FIFO or device is no bzImage (the loader then names what it is).
  absl::StatusOr<UniqueFd> opened = OpenRegularFile(path, O_RDONLY, "kernel");
  if (!opened.ok()) return false;
  const UniqueFd& fd = *opened;
  std::array<uint8_t, 0x210> head{};
  size_t done = 0;
  while (done < head.size()) {
    const ssize_t n = ::read(fd.get(), head.data() + done, head.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  return LooksLikeBzImage(std::span<const uint8_t>(head.data(), done));
}

absl::StatusOr<BootImage> LoadBootImage(const BootImageConfig& config,
                                        const GuestMemoryView& memory) {
  BootImage image;
  if (!IsBzImageFile(config.kernel_path)) {
    if (!config.initrd_path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--initrd: kernel '", config.kernel_path,
                       "' is not a Linux bzImage (an initrd needs one)"));
    }
    const std::vector<MemoryMapEntry> memmap = DefaultMemoryMap(config.memory_bytes);
    ASSIGN_OR_RETURN(image.pvh, LoadPvhKernelFromFile(config.kernel_path, memory,
                                                      config.memory_bytes, config.cmdline, memmap));
    return image;
  }
  image.is_linux = true;
  ASSIGN_OR_RETURN(std::vector<uint8_t> kernel,
                   ReadFileBytes(config.kernel_path, "kernel", kMaxKernelFileBytes));
  std::vector<uint8_t> initrd;
  if (!config.initrd_path.empty()) {
    ASSIGN_OR_RETURN(initrd, ReadFileBytes(config.initrd_path, "initrd", kMaxInitrdFileBytes));
  }
  AcpiConfig acpi;
  acpi.cpus = config.cpus;
  for (int i = 0; i < config.virtio_devices; ++i) {
    acpi.virtio.push_back({kVirtioMmioBase + i * kVirtioMmioStride,
                           static_cast<uint32_t>(kVirtioMmioStride),
                           kVirtioFirstIrq + static_cast<uint32_t>(i)});
  }
  ASSIGN_OR_RETURN(const AcpiTables tables, BuildAcpiTables(acpi));
  uint8_t* acpi_host = memory.HostAddress(kAcpiBase, tables.bytes.size());
  if (acpi_host == nullptr) {
    return absl::InvalidArgumentError("the ACPI tables are not backed by guest memory");
  }
  std::vector<MemoryMapEntry> e820 = LinuxMemoryMap(config.memory_bytes);
  e820.insert(e820.end(), config.extra_e820.begin(), config.extra_e820.end());
  LinuxBootConfig boot{config.cmdline, initrd, e820, tables.rsdp_gpa};
  ASSIGN_OR_RETURN(image.kernel, LoadLinuxFromBytes(config.kernel_path, kernel, memory,
                                                    config.memory_bytes, boot));
  std::memcpy(acpi_host, tables.bytes.data(), tables.bytes.size());
  return image;
}

absl::Status SetupBootVcpus(const BootImage& image, std::vector<VcpuFd>& vcpus, uint64_t xcr0) {
  if (vcpus.empty()) return absl::InvalidArgumentError("no vCPUs to boot");
  if (image.is_linux) {
    const LoadedLinux& k = image.kernel;
    RETURN_IF_ERROR(
        vcpus[0].SetupLinux64BootState({k.entry64, k.boot_params_gpa, k.page_table_gpa, k.gdt_gpa,
                                        k.gdt_limit, kLinuxBootCs, kLinuxBootDs, kLinuxBootTss}));
  } else {
    RETURN_IF_ERROR(vcpus[0].SetupPvhBootState(image.pvh.entry32, image.pvh.start_info_gpa));
  }
  for (VcpuFd& vcpu : vcpus) {
    RETURN_IF_ERROR(vcpu.SetupBootMsrs());
    RETURN_IF_ERROR(vcpu.SetupBootXcr0(xcr0));
  }
  return absl::OkStatus();
}

}  // namespace rehome
