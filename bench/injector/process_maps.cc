// bench/injector/process_maps.cc: ReadMaps, ResidentPages, memory access, Locate.
#include "bench/injector/process_maps.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace rehome::inject {
namespace {

constexpr uint64_t kPageSize = 4096;

// A read-only mapping of a whole file; empty when it cannot be opened.
class FileImage final {
 public:
  explicit FileImage(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || fstat(fd.get(), &st) != 0 || st.st_size <= 0) return;
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<const uint8_t*>(p);
    size_ = static_cast<size_t>(st.st_size);
  }
  ~FileImage() {
    if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
  }
  FileImage(const FileImage&) = delete;
  FileImage& operator=(const FileImage&) = delete;

  // A pointer to `count` objects of T at `offset`, or nullptr when out of bounds.
  template <typename T>
  const T* At(uint64_t offset, uint64_t count = 1) const {
    if (data_ == nullptr || offset > size_ || count > (size_ - offset) / sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(data_ + offset);
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string Demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return name;
  std::string out(demangled);
  free(demangled);
  return out;
}

// The function symbol covering `vaddr` in the ELF image (.symtab, else .dynsym), or "?".
std::string FunctionAt(const FileImage& elf, uint64_t vaddr) {
  const Elf64_Ehdr* eh = elf.At<Elf64_Ehdr>(0);
  if (eh == nullptr || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr)) {
    return "?";
  }
  const Elf64_Shdr* sections = elf.At<Elf64_Shdr>(eh->e_shoff, eh->e_shnum);
  if (sections == nullptr) return "?";
  for (uint32_t wanted : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (int i = 0; i < eh->e_shnum; ++i) {
      const Elf64_Shdr& sh = sections[i];
      if (sh.sh_type != wanted || sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= eh->e_shnum) {
        continue;
      }
      const Elf64_Sym* syms = elf.At<Elf64_Sym>(sh.sh_offset, sh.sh_size / sizeof(Elf64_Sym));
      const Elf64_Shdr& strtab = sections[sh.sh_link];
      const char* strings = elf.At<char>(strtab.sh_offset, strtab.sh_size);
      if (syms == nullptr || strings == nullptr || strtab.sh_size == 0) continue;
      const Elf64_Sym* best = nullptr;
      for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
        const Elf64_Sym& s = syms[k];
        if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_value == 0 ||
            s.st_name >= strtab.sh_size) {
          continue;
        }
        const bool covers =
            vaddr >= s.st_value && vaddr < s.st_value + std::max<uint64_t>(s.st_size, 1);
        if (covers && (best == nullptr || s.st_size < best->st_size)) best = &s;
      }
      if (best != nullptr && strnlen(strings + best->st_name, strtab.sh_size - best->st_name) <
                                 strtab.sh_size - best->st_name) {
        return Demangle(strings + best->st_name);
      }
    }
  }
  return "?";
}

// The ELF virtual address of file offset `offset` (through the PT_LOAD that holds it).
std::optional<uint64_t> FileOffsetToVaddr(const FileImage& elf, uint64_t offset) {
  const Elf64_Ehdr* eh = elf.At<Elf64_Ehdr>(0);
  if (eh == nullptr || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_phentsize != sizeof(Elf64_Phdr)) {
    return std::nullopt;
  }
  const Elf64_Phdr* ph = elf.At<Elf64_Phdr>(eh->e_phoff, eh->e_phnum);
  if (ph == nullptr) return std::nullopt;
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type == PT_LOAD && offset >= ph[i].p_offset &&
        offset < ph[i].p_offset + ph[i].p_filesz) {
      return ph[i].p_vaddr + (offset - ph[i].p_offset);
    }
  }
  return std::nullopt;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<std::vector<MapRegion>> ReadMaps(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/maps"));
  if (!in) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::vector<MapRegion> maps;
  std::string line;
  while (std::getline(in, line)) {
    MapRegion r;
    char perms[8] = {};
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    int path_at = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %llu %n", &start, &end, perms, &offset,
                    &inode, &path_at) < 5) {
      continue;
    }
    r.start = start;
    r.end = end;
    r.offset = offset;
    r.perms = perms;
    if (path_at > 0 && static_cast<size_t>(path_at) <= line.size()) r.path = line.substr(path_at);
    maps.push_back(std::move(r));
  }
  if (maps.empty()) return absl::NotFoundError(absl::StrCat("process ", pid, " has no mappings"));
  return maps;
}

const MapRegion* FindRegion(const std::vector<MapRegion>& maps, uint64_t addr) {
  for (const MapRegion& r : maps) {
    if (addr >= r.start && addr < r.end) return &r;
  }
  return nullptr;
}

bool IsPrivateData(const MapRegion& region) {
  if (region.shared() || !region.writable() || region.perms.empty() || region.perms[0] != 'r') {
    return false;
  }
  return region.path != "[vvar]" && region.path != "[vdso]" && region.path != "[vsyscall]";
}

bool IsSharedWithL0(const MapRegion& region) {
  return region.shared() && absl::StrContains(region.path, "memfd:rehome-") &&
         !absl::StrContains(region.path, "memfd:rehome-ram");
}

absl::StatusOr<std::vector<uint64_t>> ResidentPages(pid_t pid, const MapRegion& region) {
  UniqueFd fd(open(absl::StrCat("/proc/", pid, "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("open pagemap");
  std::vector<uint64_t> pages;
  std::vector<uint64_t> entries(4096);
  for (uint64_t page = region.start; page < region.end;) {
    const uint64_t count = std::min<uint64_t>(entries.size(), (region.end - page) / kPageSize);
    if (count == 0) break;
    const ssize_t n = pread(fd.get(), entries.data(), count * sizeof(uint64_t),
                            static_cast<off_t>(page / kPageSize * sizeof(uint64_t)));
    if (n <= 0) return LastErrnoStatus("read pagemap");
    for (uint64_t i = 0; i < static_cast<uint64_t>(n) / sizeof(uint64_t); ++i) {
      if ((entries[i] >> 63) != 0) pages.push_back(page + i * kPageSize);
    }
    page += static_cast<uint64_t>(n) / sizeof(uint64_t) * kPageSize;
  }
  return pages;
}

absl::StatusOr<uint8_t> ReadByte(pid_t pid, uint64_t addr) {
  UniqueFd fd(open(absl::StrCat("/proc/", pid, "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  uint8_t value = 0;
  if (!fd.valid() || pread(fd.get(), &value, 1, static_cast<off_t>(addr)) != 1) {
    return LastErrnoStatus(absl::StrFormat("read byte at 0x%x of pid %d", addr, pid));
  }
  return value;
}

absl::Status WriteByte(pid_t pid, uint64_t addr, uint8_t value) {
  UniqueFd fd(open(absl::StrCat("/proc/", pid, "/mem").c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid() || pwrite(fd.get(), &value, 1, static_cast<off_t>(addr)) != 1) {
    return LastErrnoStatus(absl::StrFormat("write byte at 0x%x of pid %d", addr, pid));
  }
  return absl::OkStatus();
}

CodeLocation Locate(pid_t pid, const std::vector<MapRegion>& maps, uint64_t addr) {
  CodeLocation where{"?", "?", addr};
  const MapRegion* region = FindRegion(maps, addr);
  if (region == nullptr) return where;
  if (region->path.empty()) {
    where.module = "[anon]";
    return where;
  }
  where.module = Basename(region->path);
  if (region->path[0] != '/' || absl::StrContains(region->path, "memfd:")) return where;
  const FileImage elf(absl::StrFormat("/proc/%d/map_files/%x-%x", pid, region->start, region->end));
  const std::optional<uint64_t> vaddr =
      FileOffsetToVaddr(elf, addr - region->start + region->offset);
  if (!vaddr.has_value()) return where;
  where.module_offset = *vaddr;
  where.function = FunctionAt(elf, *vaddr);
  return where;
}

}  // namespace rehome::inject
