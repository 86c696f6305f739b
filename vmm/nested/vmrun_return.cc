// vmm/nested/vmrun_return.cc: FindVmrunReturn and its parts.
#include "vmm/nested/vmrun_return.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/errno_status.h"
#include "base/unique_fd.h"

namespace rehome {
namespace {

constexpr size_t kScanBytes = 1024;

absl::Status ReadExactly(int fd, void* out, size_t len, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n =
        ::pread(fd, static_cast<char*>(out) + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoStatus(path);
    if (n == 0) return absl::OutOfRangeError(absl::StrCat(path, ": short read"));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<uint64_t> KallsymsAddress(std::string_view kallsyms, std::string_view symbol) {
  const absl::string_view text(kallsyms.data(), kallsyms.size());
  const absl::string_view wanted(symbol.data(), symbol.size());
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 3 || fields[2] != wanted) continue;
    if (fields[1] != "t" && fields[1] != "T") continue;
    uint64_t address = 0;
    if (!absl::SimpleHexAtoi(fields[0], &address) || address == 0) return std::nullopt;
    return address;
  }
  return std::nullopt;
}

std::optional<size_t> VmrunReturnOffset(std::span<const uint8_t> code) {
  for (size_t i = 0; i + 3 <= code.size(); ++i) {
    if (code[i] == 0x0f && code[i + 1] == 0x01 && code[i + 2] == 0xd8) return i + 3;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<uint8_t>> ReadKcore(const std::string& kcore_path, uint64_t vaddr,
                                               size_t len) {
  UniqueFd fd(::open(kcore_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(kcore_path);
  Elf64_Ehdr header{};
  if (absl::Status s = ReadExactly(fd.get(), &header, sizeof(header), 0, kcore_path); !s.ok()) {
    return s;
  }
  if (std::string_view(reinterpret_cast<const char*>(header.e_ident), 4) !=
          "\x7f"
          "ELF" ||
      header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_phentsize != sizeof(Elf64_Phdr)) {
    return absl::InvalidArgumentError(absl::StrCat(kcore_path, ": not a 64-bit ELF core"));
  }
  for (uint16_t i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr ph{};
    if (absl::Status s =
            ReadExactly(fd.get(), &ph, sizeof(ph), header.e_phoff + i * sizeof(ph), kcore_path);
        !s.ok()) {
      return s;
    }
    if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr || vaddr - ph.p_vaddr > ph.p_filesz ||
        len > ph.p_filesz - (vaddr - ph.p_vaddr)) {
      continue;
    }
    std::vector<uint8_t> bytes(len);
    if (absl::Status s = ReadExactly(fd.get(), bytes.data(), len,
                                     ph.p_offset + (vaddr - ph.p_vaddr), kcore_path);
        !s.ok()) {
      return s;
    }
    return bytes;
  }
  return absl::NotFoundError(
      absl::StrFormat("%s: no segment holds 0x%x (+%d bytes)", kcore_path, vaddr, len));
}

absl::StatusOr<uint64_t> FindVmrunReturn(const std::string& kallsyms_path,
                                         const std::string& kcore_path) {
  std::ifstream in(kallsyms_path);
  if (!in) return absl::NotFoundError(absl::StrCat(kallsyms_path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  const std::optional<uint64_t> function = KallsymsAddress(text.str(), kSvmRunSymbol);
  if (!function.has_value()) {
    return absl::NotFoundError(absl::StrCat(kSvmRunSymbol, " not in ", kallsyms_path,
                                            " (kvm_amd not loaded, or addresses hidden)"));
  }
  absl::StatusOr<std::vector<uint8_t>> code = ReadKcore(kcore_path, *function, kScanBytes);
  if (!code.ok()) return code.status();
  const std::optional<size_t> offset = VmrunReturnOffset(*code);
  if (!offset.has_value()) {
    return absl::NotFoundError(absl::StrFormat("no VMRUN in the first %d bytes of %s at 0x%x",
                                               kScanBytes, kSvmRunSymbol, *function));
  }
  return *function + *offset;
}

}  // namespace rehome
