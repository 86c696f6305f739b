// vmm/loader/elf_pvh_loader_test.cc: the PVH loader on ELF images built here in memory: a good
// image, every malformation, bad parameters, files, and a bounded deterministic fuzz loop.
#include "vmm/loader/elf_pvh_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kRam = 16 << 20;

struct ElfSpec {
  uint64_t paddr = 0x100000;
  std::vector<uint8_t> code = {0xf4, 0xeb, 0xfd, 0x90, 0x11, 0x22, 0x33, 0x44};
  uint64_t bss = 0x20;
  uint64_t entry = 0x100000;
  bool note_segment = true;
  bool note_section = false;
  uint32_t note_descsz = 4;
  bool extra_load = false;  // a second PT_LOAD at paddr + 0x1000
};

// Layout: Ehdr | Phdr[LOAD, NOTE, (LOAD)] | note @0x100 | code @0x200 | Shdr[NULL, NOTE] @0x400.
constexpr uint64_t kPhoff = sizeof(Elf64_Ehdr);
constexpr uint64_t kNoteOff = 0x100;
constexpr uint64_t kCodeOff = 0x200;
constexpr uint64_t kShoff = 0x400;

std::vector<uint8_t> BuildElf(const ElfSpec& spec) {
  std::vector<uint8_t> f(kShoff + 2 * sizeof(Elf64_Shdr), 0);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = 0xffffffff81000000;  // the 64-bit entry is ignored
  eh.e_phoff = kPhoff;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = spec.extra_load ? 3 : 2;
  if (spec.note_section) {
    eh.e_shoff = kShoff;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 2;
  }
  std::memcpy(f.data(), &eh, sizeof(eh));

  const uint64_t note_size = 12 + 4 + ((spec.note_descsz + 3) & ~3u);
  Elf64_Phdr load{PT_LOAD,
                  PF_R | PF_X,
                  kCodeOff,
                  spec.paddr,
                  spec.paddr,
                  spec.code.size(),
                  spec.code.size() + spec.bss,
                  0x1000};
  Elf64_Phdr note{spec.note_segment ? uint32_t{PT_NOTE} : uint32_t{PT_NULL},
                  PF_R,
                  kNoteOff,
                  0,
                  0,
                  note_size,
                  note_size,
                  4};
  std::memcpy(f.data() + kPhoff, &load, sizeof(load));
  std::memcpy(f.data() + kPhoff + sizeof(Elf64_Phdr), &note, sizeof(note));
  if (spec.extra_load) {
    Elf64_Phdr extra = load;
    extra.p_paddr = extra.p_vaddr = spec.paddr + 0x1000;
    std::memcpy(f.data() + kPhoff + 2 * sizeof(Elf64_Phdr), &extra, sizeof(extra));
  }
  const uint32_t nhdr[3] = {4, spec.note_descsz, kXenElfNotePhys32Entry};
  std::memcpy(f.data() + kNoteOff, nhdr, 12);
  std::memcpy(f.data() + kNoteOff + 12, "Xen", 4);
  std::memcpy(f.data() + kNoteOff + 16, &spec.entry, std::min<uint32_t>(spec.note_descsz, 8));
  std::memcpy(f.data() + kCodeOff, spec.code.data(), spec.code.size());
  Elf64_Shdr sh{};
  sh.sh_type = SHT_NOTE;
  sh.sh_offset = kNoteOff;
  sh.sh_size = note_size;
  sh.sh_addralign = 4;
  std::memcpy(f.data() + kShoff + sizeof(Elf64_Shdr), &sh, sizeof(sh));
  return f;
}

template <typename T>
void Poke(std::vector<uint8_t>& f, uint64_t offset, T value) {
  std::memcpy(f.data() + offset, &value, sizeof(T));
}
constexpr uint64_t kLoadPh = kPhoff;
constexpr uint64_t kNotePh = kPhoff + sizeof(Elf64_Phdr);

class LoaderTest : public ::testing::Test {
 protected:
  LoaderTest() : ram_(kRam, 0xcc), memory_(ram_), memmap_(DefaultMemoryMap(kRam)) {}
  absl::StatusOr<LoadedKernel> Load(const std::vector<uint8_t>& image,
                                    std::string_view cmdline = "workload=counter",
                                    uint64_t ram = kRam) {
    return LoadPvhKernelFromBytes("k.elf", image, memory_, ram, cmdline, memmap_);
  }
  template <typename T>
  T Peek(uint64_t gpa) const {
    T v;
    std::memcpy(&v, ram_.data() + gpa, sizeof(T));
    return v;
  }

  std::vector<uint8_t> ram_;
  FlatGuestMemoryView memory_;
  std::vector<MemoryMapEntry> memmap_;
};

TEST_F(LoaderTest, LoadsSegmentsZeroesBssAndWritesPvhBootInfo) {
  const ElfSpec spec;
  auto loaded = Load(BuildElf(spec));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->entry32, 0x100000u);
  EXPECT_EQ(loaded->start_info_gpa, kStartInfoGpa);
  EXPECT_EQ(loaded->kernel_end, 0x100000u + spec.code.size() + spec.bss);
  EXPECT_EQ(std::memcmp(ram_.data() + spec.paddr, spec.code.data(), spec.code.size()), 0);
  for (uint64_t i = 0; i < spec.bss; ++i) EXPECT_EQ(ram_[spec.paddr + spec.code.size() + i], 0);
  EXPECT_EQ(ram_[loaded->kernel_end], 0xcc);  // nothing beyond the bss

  EXPECT_EQ(Peek<uint32_t>(kStartInfoGpa), kHvmStartMagic);
  EXPECT_EQ(Peek<uint32_t>(kStartInfoGpa + 4), 1u);               // version
  EXPECT_EQ(Peek<uint32_t>(kStartInfoGpa + 12), 0u);              // nr_modules
  EXPECT_EQ(Peek<uint64_t>(kStartInfoGpa + 24), kCmdlineGpa);     // cmdline_paddr
  EXPECT_EQ(Peek<uint64_t>(kStartInfoGpa + 40), kMemmapGpa);      // memmap_paddr
  EXPECT_EQ(Peek<uint32_t>(kStartInfoGpa + 48), memmap_.size());  // memmap_entries
  ASSERT_EQ(memmap_.size(), 2u);                                  // 16 MiB RAM + the MMIO hole
  EXPECT_EQ(Peek<uint64_t>(kMemmapGpa), 0u);
  EXPECT_EQ(Peek<uint64_t>(kMemmapGpa + 8), kRam);
  EXPECT_EQ(Peek<uint32_t>(kMemmapGpa + 16), 1u);
  EXPECT_EQ(Peek<uint64_t>(kMemmapGpa + 24), 0xC0000000u);
  EXPECT_EQ(Peek<uint32_t>(kMemmapGpa + 40), 2u);
  EXPECT_STREQ(reinterpret_cast<const char*>(ram_.data() + kCmdlineGpa), "workload=counter");
}

TEST(DefaultMemoryMap, SplitsRamAroundTheMmioHole) {
  const auto map = DefaultMemoryMap(5ull << 30);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0].size, 3ull << 30);
  EXPECT_EQ(map[1].type, MemoryMapEntry::kReserved);
  EXPECT_EQ(map[2].addr, 4ull << 30);
  EXPECT_EQ(map[2].size, 2ull << 30);
}

TEST_F(LoaderTest, FindsTheNoteInSectionsAndAcceptsEightByteEntries) {
  ElfSpec spec;
  spec.note_segment = false;
  spec.note_section = true;
  spec.note_descsz = 8;
  spec.entry = 0x100004;
  auto loaded = Load(BuildElf(spec));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->entry32, 0x100004u);
  spec.note_segment = true;  // both: the same value twice is fine
  EXPECT_TRUE(Load(BuildElf(spec)).ok());
}

TEST_F(LoaderTest, LoadsFromAFileAndReportsMissingFiles) {
  char path[] = "/tmp/rehome-loader-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> image = BuildElf(ElfSpec{});
  ASSERT_EQ(::write(fd, image.data(), image.size()), static_cast<ssize_t>(image.size()));
  ::close(fd);
  auto loaded = LoadPvhKernelFromFile(path, memory_, kRam, "", memmap_);
  ::unlink(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->entry32, 0x100000u);

  auto missing = LoadPvhKernelFromFile("/nonexistent/k.elf", memory_, kRam, "", memmap_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "kernel '/nonexistent/k.elf': No such file or directory");
  auto dir = LoadPvhKernelFromFile("/tmp", memory_, kRam, "", memmap_);
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dir.status().message(), HasSubstr("not a regular file"));
  // A FIFO nobody writes to is refused at once, not waited on.
  char fifo_dir[] = "/tmp/rehome-loader-fifo-XXXXXX";
  ASSERT_NE(::mkdtemp(fifo_dir), nullptr);
  const std::string fifo = std::string(fifo_dir) + "/kernel";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto from_fifo = LoadPvhKernelFromFile(fifo, memory_, kRam, "", memmap_);
  ::unlink(fifo.c_str());
  ::rmdir(fifo_dir);
  EXPECT_EQ(from_fifo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(from_fifo.status().message(), "kernel '" + fifo + "': is a FIFO, not a regular file");
}

struct Malformation {
  const char* what;
  std::function<void(ElfSpec&)> spec;
  std::function<void(std::vector<uint8_t>&)> bytes;
  const char* message;
};

TEST_F(LoaderTest, EveryMalformationIsAOneLineErrorAndWritesNothing) {
  const uint64_t huge = ~uint64_t{0} - 8;
  const std::vector<Malformation> cases = {
      {"empty", nullptr, [](auto& f) { f.clear(); }, "not an ELF file"},
      {"bad magic", nullptr, [](auto& f) { f[1] = 'X'; }, "not an ELF file"},
      {"elf32", nullptr, [](auto& f) { f[EI_CLASS] = ELFCLASS32; }, "not an ELF64 file"},
      {"short header", nullptr, [](auto& f) { f.resize(40); }, "truncated ELF header"},
      {"big endian", nullptr, [](auto& f) { f[EI_DATA] = ELFDATA2MSB; }, "little-endian"},
      {"ident version", nullptr, [](auto& f) { f[EI_VERSION] = 0; }, "ELF version"},
      {"machine", nullptr, [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_machine), 3); },
       "wrong machine 3"},
      {"type", nullptr, [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_type), ET_DYN); },
       "not an executable (ET_EXEC)"},
      {"version", nullptr, [](auto& f) { Poke<uint32_t>(f, offsetof(Elf64_Ehdr, e_version), 2); },
       "ELF version"},
      {"ehsize", nullptr, [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_ehsize), 52); },
       "header size"},
      {"no phdrs", nullptr, [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_phnum), 0); },
       "no program headers"},
      {"phnum xnum", nullptr,
       [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_phnum), PN_XNUM); }, "too many"},
      {"phentsize", nullptr,
       [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_phentsize), 32); },
       "program header size"},
      {"phoff past end", nullptr,
       [](auto& f) { Poke<uint64_t>(f, offsetof(Elf64_Ehdr, e_phoff), 0x10000); },
       "program header table is outside the file"},
      {"phoff overflow", nullptr,
       [huge](auto& f) { Poke<uint64_t>(f, offsetof(Elf64_Ehdr, e_phoff), huge); },
       "program header table is outside the file"},
      {"shentsize", [](auto& s) { s.note_section = true; },
       [](auto& f) { Poke<uint16_t>(f, offsetof(Elf64_Ehdr, e_shentsize), 40); },
       "section header size"},
      {"shoff overflow", [](auto& s) { s.note_section = true; },
       [huge](auto& f) { Poke<uint64_t>(f, offsetof(Elf64_Ehdr, e_shoff), huge); },
       "section header table is outside the file"},
      {"filesz > memsz", nullptr,
       [](auto& f) { Poke<uint64_t>(f, kLoadPh + offsetof(Elf64_Phdr, p_memsz), 4); },
       "exceeds memory size"},
      {"segment past file end", nullptr,
       [](auto& f) { Poke<uint64_t>(f, kLoadPh + offsetof(Elf64_Phdr, p_offset), 0x1000); },
       "outside the file"},
      {"segment offset overflow", nullptr,
       [huge](auto& f) { Poke<uint64_t>(f, kLoadPh + offsetof(Elf64_Phdr, p_offset), huge); },
       "outside the file"},
      {"segment beyond RAM", [](auto& s) { s.paddr = s.entry = kRam - 4; }, nullptr,
       "out of bounds"},
      {"segment paddr overflow", nullptr,
       [huge](auto& f) { Poke<uint64_t>(f, kLoadPh + offsetof(Elf64_Phdr, p_paddr), huge); },
       "out of bounds"},
      {"segment over boot info", [](auto& s) { s.paddr = s.entry = 0x6800; }, nullptr,
       "overlaps the boot information area"},
      {"overlapping segments",
       [](auto& s) {
         s.extra_load = true;
         s.bss = 0x2000;
       },
       nullptr, "overlaps segment"},
      {"no PT_LOAD", nullptr,
       [](auto& f) { Poke<uint32_t>(f, kLoadPh + offsetof(Elf64_Phdr, p_type), PT_NULL); },
       "no loadable (PT_LOAD) segment"},
      {"no note", [](auto& s) { s.note_segment = false; }, nullptr,
       "kernel 'k.elf' has no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"},
      {"wrong note name", nullptr, [](auto& f) { f[kNoteOff + 12] = 'Y'; },
       "has no Xen PVH entry note"},
      {"note desc size", [](auto& s) { s.note_descsz = 2; }, nullptr, "expected 4 or 8"},
      {"note namesz huge", nullptr, [](auto& f) { Poke<uint32_t>(f, kNoteOff, 0xfffffff0); },
       "malformed note"},
      {"note descsz huge", nullptr, [](auto& f) { Poke<uint32_t>(f, kNoteOff + 4, 0xffffffff); },
       "malformed note"},
      {"note segment past end", nullptr,
       [](auto& f) { Poke<uint64_t>(f, kNotePh + offsetof(Elf64_Phdr, p_filesz), 0x10000); },
       "note segment 1 is outside the file"},
      {"note section past end",
       [](auto& s) {
         s.note_segment = false;
         s.note_section = true;
       },
       [](auto& f) {
         Poke<uint64_t>(f, kShoff + sizeof(Elf64_Shdr) + offsetof(Elf64_Shdr, sh_offset), huge);
       },
       "note section 1 is outside the file"},
      {"entry outside segments", [](auto& s) { s.entry = 0x200000; }, nullptr,
       "PVH entry 0x200000 is outside every loaded segment"},
      {"entry in bss", [](auto& s) { s.entry = 0x100000 + 8; }, nullptr,
       "outside every loaded segment"},
      {"entry above 4G",
       [](auto& s) {
         s.note_descsz = 8;
         s.entry = 0x100100000;
       },
       nullptr, "not a 32-bit address"},
      {"conflicting notes", [](auto& s) { s.note_section = true; },
       [](auto& f) {  // the section points at a second copy of the note with another entry
         std::memcpy(f.data() + 0x300, f.data() + kNoteOff, 20);
         Poke<uint32_t>(f, 0x310, 0x100004);
         Poke<uint64_t>(f, kShoff + sizeof(Elf64_Shdr) + offsetof(Elf64_Shdr, sh_offset), 0x300);
       },
       "conflicting Xen PVH entry notes"},
  };
  for (const Malformation& m : cases) {
    SCOPED_TRACE(m.what);
    ElfSpec spec;
    if (m.spec) m.spec(spec);
    std::vector<uint8_t> image = BuildElf(spec);
    if (m.bytes) m.bytes(image);
    std::fill(ram_.begin(), ram_.end(), 0xcc);
    auto loaded = Load(image);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(loaded.status().message(), HasSubstr(m.message));
    EXPECT_THAT(std::string(loaded.status().message()), ::testing::StartsWith("kernel 'k.elf'"));
    EXPECT_EQ(loaded.status().message().find('\n'), std::string::npos);
    EXPECT_EQ(std::count(ram_.begin(), ram_.end(), 0xcc), static_cast<ptrdiff_t>(ram_.size()));
  }
}

TEST_F(LoaderTest, EveryTruncationFailsCleanly) {
  ElfSpec spec;
  spec.note_section = true;
  const std::vector<uint8_t> image = BuildElf(spec);
  for (size_t len = 0; len < image.size(); ++len) {
    std::vector<uint8_t> cut(image.begin(), image.begin() + len);
    EXPECT_FALSE(Load(cut).ok()) << len;
  }
}

TEST_F(LoaderTest, RejectsBadParameters) {
  const std::vector<uint8_t> image = BuildElf(ElfSpec{});
  EXPECT_TRUE(Load(image, std::string(kMaxCmdlineBytes - 1, 'a')).ok());
  auto s = Load(image, std::string(kMaxCmdlineBytes, 'a'));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("command line is 2048 bytes (max 2047)"));
  EXPECT_THAT(Load(image, std::string("a\0b", 3)).status().message(), HasSubstr("NUL"));
  EXPECT_THAT(Load(image, "", 0x4000).status().message(), HasSubstr("cannot hold the boot"));
  // ram_size larger than the memory behind the view.
  ElfSpec high;
  high.paddr = high.entry = kRam + 0x1000;
  EXPECT_THAT(Load(BuildElf(high), "", 2 * kRam).status().message(),
              HasSubstr("not backed by guest memory"));
  memmap_.clear();
  EXPECT_THAT(Load(image).status().message(), HasSubstr("memory map has 0 entries"));
  memmap_.assign(kMaxMemmapEntries + 1, MemoryMapEntry{0, 4096, MemoryMapEntry::kRam});
  EXPECT_THAT(Load(image).status().message(), HasSubstr("memory map has"));
  memmap_.assign(kMaxMemmapEntries, MemoryMapEntry{0, 4096, MemoryMapEntry::kRam});
  EXPECT_TRUE(Load(image).ok());
  memmap_ = {{0, 0, MemoryMapEntry::kRam}};
  EXPECT_THAT(Load(image).status().message(), HasSubstr("empty or overflows"));
  memmap_ = {{~uint64_t{0}, 2, MemoryMapEntry::kRam}};
  EXPECT_THAT(Load(image).status().message(), HasSubstr("empty or overflows"));
}

TEST_F(LoaderTest, RandomCorruptionNeverCrashesAndNeverLoadsOutOfBounds) {
  ElfSpec spec;
  spec.note_section = true;
  const std::vector<uint8_t> good = BuildElf(spec);
  std::mt19937_64 rng(20260101);
  int loaded_ok = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> image = good;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < flips; ++i) {
      // Mostly in the headers and the note, where the parser looks.
      const size_t limit = (rng() % 4 == 0) ? image.size() : kCodeOff;
      const size_t pos = rng() % limit;
      switch (rng() % 3) {
        case 0:
          image[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:
          image[pos] = static_cast<uint8_t>(rng());
          break;
        default:
          image[pos] = (rng() % 2) ? 0xff : 0x00;
          break;
      }
    }
    if (rng() % 8 == 0) image.resize(rng() % image.size());
    auto loaded = Load(image);
    if (loaded.ok()) {
      ++loaded_ok;
      EXPECT_LT(loaded->entry32, loaded->kernel_end);
      EXPECT_LE(loaded->kernel_end, kRam);
    } else {
      EXPECT_THAT(std::string(loaded.status().message()), ::testing::StartsWith("kernel '"));
    }
  }
  EXPECT_GT(loaded_ok, 0);  // some corruptions hit bytes that do not matter
}

}  // namespace
}  // namespace rehome
