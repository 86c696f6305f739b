// vmm/loader/linux_loader.cc: bzImage setup-header validation, zero page, GDT, identity map.
#include "vmm/loader/linux_loader.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

// Offsets in the image and in boot_params (the setup header sits at 0x1f1 in both).
constexpr size_t kSetupSects = 0x1f1, kVidMode = 0x1fa, kBootFlag = 0x1fe, kJump = 0x200,
                 kHeaderMagic = 0x202, kVersion = 0x206, kTypeOfLoader = 0x210, kLoadFlags = 0x211,
                 kRamdiskImage = 0x218, kRamdiskSize = 0x21c, kCmdLinePtr = 0x228,
                 kInitrdAddrMax = 0x22c, kXLoadFlags = 0x236, kCmdlineSize = 0x238,
                 kInitSize = 0x260;
constexpr size_t kAcpiRsdpAddr = 0x070, kExtRamdiskImage = 0x0c0, kExtRamdiskSize = 0x0c4,
                 kExtCmdLinePtr = 0x0c8, kE820Entries = 0x1e8, kE820Table = 0x2d0;
constexpr size_t kBootParamsSize = 4096;
constexpr size_t kSetupHeaderLimit = 0x290;  // struct setup_header ends before this
constexpr uint16_t kBootFlagValue = 0xaa55;
constexpr uint32_t kHdrS = 0x53726448;  // "HdrS"
constexpr uint8_t kLoadedHigh = 1;
constexpr uint16_t kXlfKernel64 = 1;
constexpr uint64_t kPagePresentWrite = 0x3, kPageLarge = 0x80;

template <typename T>
T Load(std::span<const uint8_t> bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}
template <typename T>
void Store(uint8_t* base, size_t offset, T value) {
  std::memcpy(base + offset, &value, sizeof(T));
}

struct Header {
  uint16_t protocol = 0;
  uint64_t payload_offset = 0;  // in the file
  uint64_t payload_size = 0;
  uint64_t init_size = 0;
  uint64_t initrd_addr_max = 0;
  uint32_t cmdline_size = 0;
  size_t header_end = 0;  // end of the setup header in the file
};

class Checker final {
 public:
  explicit Checker(std::string_view name) : name_(name) {}
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("kernel '", name_, "': ", what));
  }

  absl::StatusOr<Header> Parse(std::span<const uint8_t> image) const {
    if (image.size() < 0x400) {
      return Error(absl::StrCat("file of ", image.size(), " bytes is too small for a bzImage"));
    }
    if (Load<uint16_t>(image, kBootFlag) != kBootFlagValue) {
      return Error("not a bzImage (no boot flag 0xAA55 at 0x1fe)");
    }
    if (Load<uint32_t>(image, kHeaderMagic) != kHdrS) {
      return Error("not a bzImage (no \"HdrS\" setup header at 0x202)");
    }
    Header h;
    h.protocol = Load<uint16_t>(image, kVersion);
    if (h.protocol < kLinuxMinProtocol) {
      return Error(
          absl::StrFormat("boot protocol %d.%02d is too old (the 64-bit entry needs 2.12 or later)",
                          h.protocol >> 8, h.protocol & 0xff));
    }
    if ((image[kLoadFlags] & kLoadedHigh) == 0) {
      return Error("a zImage (not loaded high) is not supported");
    }
    if ((Load<uint16_t>(image, kXLoadFlags) & kXlfKernel64) == 0) {
      return Error("the kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");
    }
    h.header_end = 0x202 + image[kJump + 1];
    if (h.header_end > kSetupHeaderLimit) {
      return Error(absl::StrFormat("setup header ends at 0x%x, beyond 0x%x", h.header_end,
                                   kSetupHeaderLimit));
    }
    const uint64_t setup_sects = image[kSetupSects] == 0 ? 4 : image[kSetupSects];
    h.payload_offset = (setup_sects + 1) * 512;
    if (h.payload_offset >= image.size()) {
      return Error(absl::StrFormat("truncated: %d setup sectors but the file has %d bytes",
                                   setup_sects, image.size()));
    }
    h.payload_size = image.size() - h.payload_offset;
    h.init_size = std::max<uint64_t>(Load<uint32_t>(image, kInitSize), h.payload_size);
    h.initrd_addr_max = Load<uint32_t>(image, kInitrdAddrMax);
    h.cmdline_size = Load<uint32_t>(image, kCmdlineSize);
    return h;
  }

 private:
  std::string name_;
};

// Real mode at F000:FFF0: mov al, 6; mov dx, 0xcf9; out dx, al; hlt; jmp $-1.
constexpr uint8_t kResetStub[] = {0xb0, 0x06, 0xba, 0xf9, 0x0c, 0xee, 0xf4, 0xeb, 0xfd};

void WriteGdt(uint8_t* gdt) {
  const uint64_t entries[6] = {
      0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0x00008b0000000067ull, 0};
  std::memcpy(gdt, entries, sizeof(entries));
}

// PML4 -> PDPT -> 4 page directories of 2 MiB pages: identity for [0, 4 GiB).
void WritePageTables(uint8_t* tables) {
  std::memset(tables, 0, kLinuxPageTablesEnd - kLinuxPageTablesGpa);
  const uint64_t pdpt = kLinuxPageTablesGpa + 0x1000;
  Store<uint64_t>(tables, 0, pdpt | kPagePresentWrite);
  for (uint64_t i = 0; i < 4; ++i) {
    const uint64_t pd = kLinuxPageTablesGpa + 0x2000 + i * 0x1000;
    Store<uint64_t>(tables, 0x1000 + 8 * i, pd | kPagePresentWrite);
    for (uint64_t j = 0; j < 512; ++j) {
      const uint64_t page = (i << 30) | (j << 21);
      Store<uint64_t>(tables, 0x2000 + i * 0x1000 + 8 * j, page | kPagePresentWrite | kPageLarge);
    }
  }
}

}  // namespace

std::vector<MemoryMapEntry> LinuxMemoryMap(uint64_t ram_size) {
  std::vector<MemoryMapEntry> map;
  const uint64_t low_end = std::min(ram_size, kLoaderMmioHoleStart);
  map.push_back({0, kLinuxLowRamEnd, MemoryMapEntry::kRam});
  map.push_back({kLinuxLowRamEnd, kLinuxKernelGpa - kLinuxLowRamEnd, MemoryMapEntry::kReserved});
  if (low_end > kLinuxKernelGpa) {
    map.push_back({kLinuxKernelGpa, low_end - kLinuxKernelGpa, MemoryMapEntry::kRam});
  }
  if (ram_size > kLoaderMmioHoleStart) {
    map.push_back({kLoaderMmioHoleEnd, ram_size - kLoaderMmioHoleStart, MemoryMapEntry::kRam});
  }
  return map;
}

bool LooksLikeBzImage(std::span<const uint8_t> image) {
  return image.size() >= 0x206 && Load<uint16_t>(image, kBootFlag) == kBootFlagValue &&
         Load<uint32_t>(image, kHeaderMagic) == kHdrS;
}

absl::StatusOr<LoadedLinux> LoadLinuxFromBytes(std::string_view name,
                                               std::span<const uint8_t> image,
                                               const GuestMemoryView& memory, uint64_t ram_size,
                                               const LinuxBootConfig& config) {
  const Checker check(name);
  ASSIGN_OR_RETURN(const Header h, check.Parse(image));
  if (config.cmdline.find('\0') != std::string_view::npos) {
    return check.Error("the command line contains a NUL byte");
  }
  if (config.cmdline.size() > h.cmdline_size) {
    return check.Error(absl::StrFormat("command line of %d bytes is longer than the kernel's %d",
                                       config.cmdline.size(), h.cmdline_size));
  }
  if (config.e820.size() > kLinuxMaxE820Entries) {
    return check.Error(absl::StrCat(config.e820.size(), " e820 entries (max 128)"));
  }
  const uint64_t low_end = std::min(ram_size, kLoaderMmioHoleStart);
  LoadedLinux loaded;
  loaded.protocol = h.protocol;
  loaded.entry64 = kLinuxKernelGpa + 0x200;
  loaded.kernel_end = kLinuxKernelGpa + h.init_size;
  if (loaded.kernel_end > low_end || h.init_size > low_end) {
    return check.Error(
        absl::StrFormat("needs %d bytes from 1 MiB (init_size) but RAM below 3 GiB ends at 0x%x",
                        h.init_size, low_end));
  }
  if (!config.initrd.empty()) {
    const uint64_t limit = std::min<uint64_t>(low_end, h.initrd_addr_max + 1);
    const uint64_t size = config.initrd.size();
    if (size > limit || ((limit - size) & ~0xfffull) < loaded.kernel_end) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "initrd of %d bytes does not fit between the kernel (ends 0x%x) and 0x%x; give the "
          "guest more memory",
          size, loaded.kernel_end, limit));
    }
    loaded.initrd_gpa = (limit - size) & ~0xfffull;
    loaded.initrd_size = size;
  }

  // Resolve every destination before writing anything.
  uint8_t* kernel = memory.HostAddress(kLinuxKernelGpa, h.init_size);
  uint8_t* params = memory.HostAddress(kLinuxBootParamsGpa, kBootParamsSize);
  uint8_t* cmdline = memory.HostAddress(kLinuxCmdlineGpa, config.cmdline.size() + 1);
  uint8_t* gdt = memory.HostAddress(kLinuxGdtGpa, kLinuxGdtLimit + 1u);
  uint8_t* tables =
      memory.HostAddress(kLinuxPageTablesGpa, kLinuxPageTablesEnd - kLinuxPageTablesGpa);
  uint8_t* reset_stub = memory.HostAddress(kLinuxResetStubGpa, sizeof(kResetStub));
  uint8_t* initrd =
      loaded.initrd_size == 0 ? nullptr : memory.HostAddress(loaded.initrd_gpa, loaded.initrd_size);
  if (kernel == nullptr || params == nullptr || cmdline == nullptr || gdt == nullptr ||
      tables == nullptr || reset_stub == nullptr ||
      (loaded.initrd_size != 0 && initrd == nullptr)) {
    return check.Error("the boot layout is not backed by guest memory");
  }

  std::memcpy(kernel, image.data() + h.payload_offset, h.payload_size);
  std::memset(kernel + h.payload_size, 0, h.init_size - h.payload_size);
  if (initrd != nullptr) std::memcpy(initrd, config.initrd.data(), config.initrd.size());
  std::memcpy(cmdline, config.cmdline.data(), config.cmdline.size());
  cmdline[config.cmdline.size()] = 0;
  WriteGdt(gdt);
  WritePageTables(tables);
  std::memcpy(reset_stub, kResetStub, sizeof(kResetStub));

  std::memset(params, 0, kBootParamsSize);
  std::memcpy(params + kSetupSects, image.data() + kSetupSects, h.header_end - kSetupSects);
  Store<uint16_t>(params, kVidMode, 0xffff);  // "normal"
  params[kTypeOfLoader] = 0xff;               // an unregistered boot loader
  Store<uint32_t>(params, kCmdLinePtr, static_cast<uint32_t>(kLinuxCmdlineGpa));
  Store<uint32_t>(params, kExtCmdLinePtr, 0);
  Store<uint32_t>(params, kRamdiskImage, static_cast<uint32_t>(loaded.initrd_gpa));
  Store<uint32_t>(params, kRamdiskSize, static_cast<uint32_t>(loaded.initrd_size));
  Store<uint32_t>(params, kExtRamdiskImage, static_cast<uint32_t>(loaded.initrd_gpa >> 32));
  Store<uint32_t>(params, kExtRamdiskSize, static_cast<uint32_t>(loaded.initrd_size >> 32));
  Store<uint64_t>(params, kAcpiRsdpAddr, config.rsdp_gpa);
  params[kE820Entries] = static_cast<uint8_t>(config.e820.size());
  for (size_t i = 0; i < config.e820.size(); ++i) {
    const MemoryMapEntry& e = config.e820[i];
    Store<uint64_t>(params, kE820Table + 20 * i, e.addr);
    Store<uint64_t>(params, kE820Table + 20 * i + 8, e.size);
    Store<uint32_t>(params, kE820Table + 20 * i + 16, e.type);
  }
  return loaded;
}

}  // namespace rehome
