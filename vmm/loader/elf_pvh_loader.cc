// vmm/loader/elf_pvh_loader.cc: ELF64 parsing and validation, PVH note lookup, boot info.
#include "vmm/loader/elf_pvh_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/loader/file_bytes.h"

namespace rehome {
namespace {

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56, "hvm_start_info layout");
static_assert(kMemmapGpa >= kStartInfoGpa + sizeof(HvmStartInfo), "memmap after start_info");

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24, "hvm_memmap_table_entry layout");

// A validated PT_LOAD segment.
struct Segment {
  uint64_t paddr, memsz, offset, filesz;
};

class Parser final {
 public:
  Parser(std::string_view name, std::span<const uint8_t> image) : name_(name), image_(image) {}
  // Note: Debian's Abseil has its own absl::string_view, so std::string_view goes through
  // std::string before absl::StrCat.

  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("kernel '", name_, "': ", what));
  }
  // True if [offset, offset + len) lies inside the file (overflow-safe).
  bool InFile(uint64_t offset, uint64_t len) const {
    return offset <= image_.size() && len <= image_.size() - offset;
  }
  template <typename T>
  T At(uint64_t offset) const {  // caller checked InFile(offset, sizeof(T))
    T value;
    std::memcpy(&value, image_.data() + offset, sizeof(T));
    return value;
  }

  absl::Status ParseHeader();
  absl::Status ParseSegments(uint64_t low_ram_end);
  absl::Status FindEntry();
  absl::Status ScanNotes(uint64_t offset, uint64_t size, const char* where);

  const std::vector<Segment>& segments() const { return segments_; }
  uint64_t entry() const { return *entry_; }

 private:
  std::string name_;
  std::span<const uint8_t> image_;
  Elf64_Ehdr ehdr_{};
  std::vector<Segment> segments_;
  std::vector<std::pair<uint64_t, uint64_t>> notes_;  // PT_NOTE (offset, size) in the file
  std::optional<uint64_t> entry_;
};

absl::Status Parser::ParseHeader() {
  if (image_.size() < SELFMAG || std::memcmp(image_.data(), ELFMAG, SELFMAG) != 0) {
    return Error("not an ELF file (bad magic)");
  }
  if (image_.size() > EI_CLASS && image_[EI_CLASS] != ELFCLASS64) {
    return Error("not an ELF64 file (rehome loads 64-bit x86 ELF kernels)");
  }
  if (!InFile(0, sizeof(Elf64_Ehdr))) return Error("truncated ELF header");
  ehdr_ = At<Elf64_Ehdr>(0);
  if (ehdr_.e_ident[EI_DATA] != ELFDATA2LSB) return Error("not a little-endian ELF file");
  if (ehdr_.e_ident[EI_VERSION] != EV_CURRENT || ehdr_.e_version != EV_CURRENT) {
    return Error("unsupported ELF version");
  }
  if (ehdr_.e_machine != EM_X86_64) {
    return Error(
        absl::StrFormat("wrong machine %u (expected x86-64, %u)", ehdr_.e_machine, EM_X86_64));
  }
  if (ehdr_.e_type != ET_EXEC) {
    return Error(absl::StrFormat("ELF type %u is not an executable (ET_EXEC)", ehdr_.e_type));
  }
  if (ehdr_.e_ehsize != sizeof(Elf64_Ehdr)) {
    return Error(absl::StrFormat("bad ELF header size %u", ehdr_.e_ehsize));
  }
  if (ehdr_.e_phnum == 0) return Error("no program headers");
  if (ehdr_.e_phnum == PN_XNUM) return Error("too many program headers");
  if (ehdr_.e_phentsize != sizeof(Elf64_Phdr)) {
    return Error(absl::StrFormat("bad program header size %u", ehdr_.e_phentsize));
  }
  if (!InFile(ehdr_.e_phoff, uint64_t{ehdr_.e_phnum} * sizeof(Elf64_Phdr))) {
    return Error("program header table is outside the file (truncated?)");
  }
  if (ehdr_.e_shoff != 0 && ehdr_.e_shnum != 0) {
    if (ehdr_.e_shentsize != sizeof(Elf64_Shdr)) {
      return Error(absl::StrFormat("bad section header size %u", ehdr_.e_shentsize));
    }
    if (!InFile(ehdr_.e_shoff, uint64_t{ehdr_.e_shnum} * sizeof(Elf64_Shdr))) {
      return Error("section header table is outside the file (truncated?)");
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseSegments(uint64_t low_ram_end) {
  for (uint32_t i = 0; i < ehdr_.e_phnum; ++i) {
    const auto ph = At<Elf64_Phdr>(ehdr_.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_NOTE) {
      if (!InFile(ph.p_offset, ph.p_filesz)) {
        return Error(absl::StrFormat("note segment %u is outside the file (truncated?)", i));
      }
      notes_.emplace_back(ph.p_offset, ph.p_filesz);
      continue;
    }
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const std::string seg = absl::StrFormat("segment %u [0x%x, +0x%x)", i, ph.p_paddr, ph.p_memsz);
    if (ph.p_filesz > ph.p_memsz) {
      return Error(absl::StrFormat("%s: file size 0x%x exceeds memory size", seg, ph.p_filesz));
    }
    if (!InFile(ph.p_offset, ph.p_filesz)) {
      return Error(
          absl::StrFormat("%s: file bytes [0x%x, +0x%x) are outside the file "
                          "(truncated?)",
                          seg, ph.p_offset, ph.p_filesz));
    }
    if (ph.p_paddr > low_ram_end || ph.p_memsz > low_ram_end - ph.p_paddr) {
      return Error(
          absl::StrFormat("%s is out of bounds: it must lie inside guest RAM below "
                          "0x%x",
                          seg, low_ram_end));
    }
    if (ph.p_paddr < kBootInfoEnd && ph.p_paddr + ph.p_memsz > kBootInfoStart) {
      return Error(absl::StrFormat("%s overlaps the boot information area [0x%x, 0x%x)", seg,
                                   kBootInfoStart, kBootInfoEnd));
    }
    for (const Segment& other : segments_) {
      if (ph.p_paddr < other.paddr + other.memsz && other.paddr < ph.p_paddr + ph.p_memsz) {
        return Error(
            absl::StrFormat("%s overlaps segment [0x%x, +0x%x)", seg, other.paddr, other.memsz));
      }
    }
    segments_.push_back(Segment{ph.p_paddr, ph.p_memsz, ph.p_offset, ph.p_filesz});
  }
  if (segments_.empty()) return Error("no loadable (PT_LOAD) segment");
  return absl::OkStatus();
}

absl::Status Parser::ScanNotes(uint64_t offset, uint64_t size, const char* where) {
  uint64_t pos = 0;
  while (size - pos >= 12) {
    const uint32_t namesz = At<uint32_t>(offset + pos);
    const uint32_t descsz = At<uint32_t>(offset + pos + 4);
    const uint32_t type = At<uint32_t>(offset + pos + 8);
    const uint64_t name_padded = (uint64_t{namesz} + 3) & ~uint64_t{3};
    const uint64_t desc_padded = (uint64_t{descsz} + 3) & ~uint64_t{3};
    const uint64_t name_off = pos + 12;
    if (name_padded > size - name_off || descsz > size - name_off - name_padded) {
      return Error(absl::StrFormat("malformed note at offset 0x%x of %s", pos, where));
    }
    const uint64_t desc_off = name_off + name_padded;
    if (type == kXenElfNotePhys32Entry && namesz == 4 &&
        std::memcmp(image_.data() + offset + name_off, "Xen", 4) == 0) {
      uint64_t entry = 0;
      if (descsz == 4) {
        entry = At<uint32_t>(offset + desc_off);
      } else if (descsz == 8) {
        entry = At<uint64_t>(offset + desc_off);
      } else {
        return Error(
            absl::StrFormat("Xen PVH entry note has a %u-byte value (expected 4 or 8)", descsz));
      }
      if (entry_.has_value() && *entry_ != entry) {
        return Error(
            absl::StrFormat("conflicting Xen PVH entry notes (0x%x and 0x%x)", *entry_, entry));
      }
      entry_ = entry;
    }
    pos = desc_off + std::min(desc_padded, size - desc_off);
  }
  return absl::OkStatus();
}

absl::Status Parser::FindEntry() {
  for (const auto& [offset, size] : notes_) {
    RETURN_IF_ERROR(ScanNotes(offset, size, "a note segment"));
  }
  if (ehdr_.e_shoff != 0 && ehdr_.e_shnum != 0) {
    for (uint32_t i = 0; i < ehdr_.e_shnum; ++i) {
      const auto sh = At<Elf64_Shdr>(ehdr_.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr));
      if (sh.sh_type != SHT_NOTE) continue;
      if (!InFile(sh.sh_offset, sh.sh_size)) {
        return Error(absl::StrFormat("note section %u is outside the file (truncated?)", i));
      }
      RETURN_IF_ERROR(ScanNotes(sh.sh_offset, sh.sh_size, "a note section"));
    }
  }
  if (!entry_.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kernel '", name_, "' has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"));
  }
  if (*entry_ >= kLoaderMmioHoleEnd) {
    return Error(absl::StrFormat("PVH entry 0x%x is not a 32-bit address", *entry_));
  }
  for (const Segment& s : segments_) {
    if (*entry_ >= s.paddr && *entry_ - s.paddr < s.filesz) return absl::OkStatus();
  }
  return Error(absl::StrFormat("PVH entry 0x%x is outside every loaded segment", *entry_));
}

absl::Status ValidateParams(std::string_view name, uint64_t ram_size, std::string_view cmdline,
                            std::span<const MemoryMapEntry> memmap) {
  const std::string prefix = absl::StrCat("kernel '", std::string(name), "': ");
  if (ram_size < kBootInfoEnd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%sguest RAM of 0x%x bytes cannot hold the boot information at 0x%x",
                        prefix, ram_size, kBootInfoStart));
  }
  if (cmdline.size() >= kMaxCmdlineBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%scommand line is %u bytes (max %u)", prefix,
                                                      cmdline.size(), kMaxCmdlineBytes - 1));
  }
  if (cmdline.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(prefix + "command line contains a NUL byte");
  }
  if (memmap.empty() || memmap.size() > kMaxMemmapEntries) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%smemory map has %u entries (expected 1..%u)", prefix, memmap.size(), kMaxMemmapEntries));
  }
  for (const MemoryMapEntry& e : memmap) {
    if (e.size == 0 || e.addr + e.size < e.addr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smemory map entry [0x%x, +0x%x) is empty or overflows", prefix, e.addr, e.size));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<MemoryMapEntry> DefaultMemoryMap(uint64_t ram_size) {
  std::vector<MemoryMapEntry> map;
  const uint64_t low = std::min(ram_size, kLoaderMmioHoleStart);
  if (low > 0) map.push_back({0, low, MemoryMapEntry::kRam});
  map.push_back(
      {kLoaderMmioHoleStart, kLoaderMmioHoleEnd - kLoaderMmioHoleStart, MemoryMapEntry::kReserved});
  if (ram_size > low) map.push_back({kLoaderMmioHoleEnd, ram_size - low, MemoryMapEntry::kRam});
  return map;
}

absl::StatusOr<LoadedKernel> LoadPvhKernelFromBytes(std::string_view name,
                                                    std::span<const uint8_t> image,
                                                    const GuestMemoryView& memory,
                                                    uint64_t ram_size, std::string_view cmdline,
                                                    std::span<const MemoryMapEntry> memmap) {
  RETURN_IF_ERROR(ValidateParams(name, ram_size, cmdline, memmap));
  Parser parser(name, image);
  RETURN_IF_ERROR(parser.ParseHeader());
  RETURN_IF_ERROR(parser.ParseSegments(std::min(ram_size, kLoaderMmioHoleStart)));
  RETURN_IF_ERROR(parser.FindEntry());

  // Resolve every destination before writing anything.
  std::vector<uint8_t*> targets;
  for (const Segment& s : parser.segments()) {
    uint8_t* host = memory.HostAddress(s.paddr, s.memsz);
    if (host == nullptr) {
      return parser.Error(
          absl::StrFormat("segment [0x%x, +0x%x) is not backed by guest memory", s.paddr, s.memsz));
    }
    targets.push_back(host);
  }
  uint8_t* boot = memory.HostAddress(kBootInfoStart, kBootInfoEnd - kBootInfoStart);
  if (boot == nullptr) return parser.Error("boot information area is not backed by guest memory");

  LoadedKernel loaded{parser.entry(), kStartInfoGpa, 0};
  for (size_t i = 0; i < targets.size(); ++i) {
    const Segment& s = parser.segments()[i];
    std::memcpy(targets[i], image.data() + s.offset, s.filesz);
    std::memset(targets[i] + s.filesz, 0, s.memsz - s.filesz);
    loaded.kernel_end = std::max(loaded.kernel_end, s.paddr + s.memsz);
  }

  std::memset(boot, 0, kBootInfoEnd - kBootInfoStart);
  const HvmStartInfo info{kHvmStartMagic,
                          1,
                          0,
                          0,
                          0,
                          kCmdlineGpa,
                          0,
                          kMemmapGpa,
                          static_cast<uint32_t>(memmap.size()),
                          0};
  std::memcpy(boot + (kStartInfoGpa - kBootInfoStart), &info, sizeof(info));
  for (size_t i = 0; i < memmap.size(); ++i) {
    const HvmMemmapEntry e{memmap[i].addr, memmap[i].size, memmap[i].type, 0};
    std::memcpy(boot + (kMemmapGpa - kBootInfoStart) + i * sizeof(e), &e, sizeof(e));
  }
  std::memcpy(boot + (kCmdlineGpa - kBootInfoStart), cmdline.data(), cmdline.size());
  return loaded;
}

absl::StatusOr<LoadedKernel> LoadPvhKernelFromFile(std::string_view path,
                                                   const GuestMemoryView& memory, uint64_t ram_size,
                                                   std::string_view cmdline,
                                                   std::span<const MemoryMapEntry> memmap) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadFileBytes(path, "kernel", kMaxKernelFileBytes));
  return LoadPvhKernelFromBytes(path, bytes, memory, ram_size, cmdline, memmap);
}

}  // namespace rehome
