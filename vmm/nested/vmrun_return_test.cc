// vmm/nested/vmrun_return_test.cc: the kallsyms line, the VMRUN scan and the kcore lookup on
// synthetic input (a small ELF core written here); the real /proc files are read on the
// emulated host (scripts/nested-host/tests.sh), where kvm_amd is loaded.
#include "vmm/nested/vmrun_return.h"

#include <elf.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(VmrunReturnTest, FindsATextSymbolAndRefusesHiddenOrMissingOnes) {
  const std::string kallsyms =
      "ffffffff81000000 T _stext\n"
      "ffffffffc0a10000 d __svm_vcpu_run_data\t[kvm_amd]\n"
      "ffffffffc0a12340 t __svm_vcpu_run\t[kvm_amd]\n"
      "ffffffffc0a12400 t svm_vcpu_run\t[kvm_amd]\n";
  EXPECT_EQ(KallsymsAddress(kallsyms, "__svm_vcpu_run"), 0xffffffffc0a12340ull);
  EXPECT_EQ(KallsymsAddress(kallsyms, "_stext"), 0xffffffff81000000ull);
  EXPECT_FALSE(KallsymsAddress(kallsyms, "__svm_vcpu_run_data").has_value());  // data, not text
  EXPECT_FALSE(KallsymsAddress(kallsyms, "vmx_vcpu_run").has_value());
  EXPECT_FALSE(KallsymsAddress("0000000000000000 t __svm_vcpu_run\t[kvm_amd]\n", "__svm_vcpu_run")
                   .has_value());  // kptr_restrict
}

TEST(VmrunReturnTest, TheInstructionAfterTheFirstVmrun) {
  const std::vector<uint8_t> code{0x55, 0x0f, 0x01, 0xda,   // push rbp; vmload
                                  0xfb, 0x0f, 0x01, 0xd8,   // sti; vmrun
                                  0xfa, 0x0f, 0x01, 0xd8};  // cli; vmrun (ignored)
  EXPECT_EQ(VmrunReturnOffset(code), 8u);
  EXPECT_FALSE(VmrunReturnOffset(std::vector<uint8_t>{0x0f, 0x01, 0xda, 0x0f, 0x01}).has_value());
}

// A core with one loadable segment: `bytes` at virtual address `vaddr`.
std::string WriteCore(uint64_t vaddr, const std::vector<uint8_t>& bytes) {
  char path[] = "/tmp/kcore-test-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_type = ET_CORE;
  eh.e_phoff = sizeof(eh);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 2;
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_vaddr = vaddr;
  load.p_offset = 0x1000;
  load.p_filesz = bytes.size();
  EXPECT_EQ(pwrite(fd, &eh, sizeof(eh), 0), static_cast<ssize_t>(sizeof(eh)));
  EXPECT_EQ(pwrite(fd, &note, sizeof(note), sizeof(eh)), static_cast<ssize_t>(sizeof(note)));
  EXPECT_EQ(pwrite(fd, &load, sizeof(load), sizeof(eh) + sizeof(note)),
            static_cast<ssize_t>(sizeof(load)));
  EXPECT_EQ(pwrite(fd, bytes.data(), bytes.size(), 0x1000), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

TEST(VmrunReturnTest, FindsTheReturnThroughKallsymsAndTheCore) {
  constexpr uint64_t kBase = 0xffffffffc0a00000ull;
  std::vector<uint8_t> text(0x3000, 0x90);
  const size_t function = 0x2340;
  text[function + 0x40] = 0x0f;
  text[function + 0x41] = 0x01;
  text[function + 0x42] = 0xd8;
  const std::string core = WriteCore(kBase, text);
  char syms[] = "/tmp/kallsyms-test-XXXXXX";
  const int fd = mkstemp(syms);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(syms) << "ffffffffc0a02340 t __svm_vcpu_run\t[kvm_amd]\n";
  absl::StatusOr<uint64_t> found = FindVmrunReturn(syms, core);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, kBase + function + 0x43);

  auto bytes = ReadKcore(core, kBase + 0x10, 4);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, std::vector<uint8_t>(4, 0x90));
  EXPECT_EQ(ReadKcore(core, kBase + 0x2ffe, 4).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadKcore(core, kBase - 4, 4).status().code(), absl::StatusCode::kNotFound);
  // The last 1 KiB of the segment has no VMRUN: a function placed there is refused.
  std::ofstream(syms) << "ffffffffc0a02c00 t __svm_vcpu_run\t[kvm_amd]\n";
  EXPECT_EQ(FindVmrunReturn(syms, core).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(syms) << "ffffffffc0a02340 t something_else\n";
  EXPECT_EQ(FindVmrunReturn(syms, core).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(FindVmrunReturn("/nonexistent/kallsyms", core).ok());
  unlink(syms);
  unlink(core.c_str());
}

}  // namespace
}  // namespace rehome
