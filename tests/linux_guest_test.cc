// tests/linux_guest_test.cc: Linux guests through the real `rehome` binary. Bad bzImages and
// initrds get one-line errors (exit 64) here on any host with KVM. A stock Linux kernel cannot
// boot on a PVM host's KVM (CPL0 code is emulated instruction by instruction: decompressing
// the kernel alone takes minutes, see ../shared/docs/host-kvm-notes.md), so the boot test skips
// there with that reason; `make test-nested` boots the same kernel on the emulated host.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "vmm/loader/testing_linux.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;
using testing::ProcessResult;
using testing::RehomeBinary;
using testing::RunProcess;

bool HaveKvm() { return access("/dev/kvm", R_OK | W_OK) == 0; }

ProcessResult Rehome(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(120)) {
  args.insert(args.begin(), RehomeBinary());
  auto result = RunProcess(args, timeout);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ProcessResult{};
}

void ExpectOneLineError(const ProcessResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_THAT(r.err, HasSubstr(needle));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A bzImage header (protocol `version`, 4 setup sectors) followed by `payload` bytes.
std::string WriteBzImage(const std::string& name, uint16_t version, size_t payload,
                         uint8_t setup_sects = 4) {
  std::vector<uint8_t> b(5 * 512 + payload, 0);
  auto put16 = [&](size_t off, uint16_t v) { std::memcpy(&b[off], &v, 2); };
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(&b[off], &v, 4); };
  b[0x1f1] = setup_sects;
  put16(0x1fe, 0xaa55);
  b[0x201] = 0x6a;
  put32(0x202, 0x53726448);
  put16(0x206, version);
  b[0x211] = 1;
  put32(0x22c, 0x7fffffff);
  put16(0x236, 0x7f);
  put32(0x238, 2047);
  put32(0x260, 0x10000);
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

TEST(LinuxGuest, BadBzImagesAndInitrdsGetOneLineErrors) {
  if (!HaveKvm()) GTEST_SKIP() << "no /dev/kvm";
  ExpectOneLineError(Rehome({"run", "--kernel", WriteBzImage("old.bz", 0x020a, 0x1000)}),
                     "too old");
  ExpectOneLineError(Rehome({"run", "--kernel", WriteBzImage("cut.bz", 0x020f, 0, 200)}),
                     "truncated");
  const std::string good = WriteBzImage("good.bz", 0x020f, 0x1000);
  ExpectOneLineError(Rehome({"run", "--kernel", good, "--initrd", "/nonexistent/initrd"}),
                     "initrd '/nonexistent/initrd'");
  ExpectOneLineError(Rehome({"run", "--kernel", good, "--memory", "16", "--initrd",
                             WriteBzImage("big.initrd", 0x020f, 20 << 20)}),
                     "initrd of");
  ExpectOneLineError(Rehome({"run", "--kernel", testing::GuestElf(), "--initrd", good}),
                     "not a Linux bzImage");
}

TEST(LinuxGuest, DebianCloudKernelBootsToInitAndPowersOff) {
  if (!HaveKvm()) GTEST_SKIP() << "no /dev/kvm";
  struct stat st;
  if (stat("/sys/module/kvm_pvm", &st) == 0) {
    GTEST_SKIP() << "this host's /dev/kvm is PVM (guest CPL0 code is emulated): a stock Linux "
                    "kernel cannot boot here; make test-nested boots it on the emulated host";
  }
  std::string why;
  const std::string kernel = testing_linux::DebianKernel(&why);
  if (kernel.empty()) GTEST_SKIP() << "no Debian kernel: " << why;
  const std::string initrd =
      testing_linux::GuestInitramfs(::testing::TempDir() + "/hello.cpio.gz", &why);
  if (initrd.empty()) GTEST_SKIP() << "no guest initramfs: " << why;
  const std::string console = ::testing::TempDir() + "/linux-console.txt";
  ProcessResult r = Rehome(
      {"run", "--mode", "monolithic", "--kernel", kernel, "--initrd", initrd, "--memory", "256",
       "--cpus", "2", "--serial-file", console, "--cmdline", "console=ttyS0 panic=-1"},
      absl::Seconds(300));
  std::ifstream in(console);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(text, HasSubstr("REHOME-LINUX-BOOTED cpus=2"));
}

}  // namespace
}  // namespace rehome
