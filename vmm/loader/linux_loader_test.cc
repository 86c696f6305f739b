// vmm/loader/linux_loader_test.cc: the bzImage loader on synthetic images (every header rule,
// the zero page, the boot GDT and page tables, initrd placement) and on Debian's real cloud
// kernel, fetched once by scripts/nested-host/fetch-kernel.sh (skipped with the reason when it
// cannot be fetched).
#include "vmm/loader/linux_loader.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "vmm/loader/file_bytes.h"
#include "vmm/loader/testing_linux.h"

namespace rehome {
namespace {

constexpr uint64_t kRam = 96ull << 20;

template <typename T>
void Put(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}
template <typename T>
T Get(const uint8_t* p, size_t off) {
  T v;
  std::memcpy(&v, p + off, sizeof(T));
  return v;
}

// A bzImage with 4 setup sectors and a patterned payload of `payload` bytes.
std::vector<uint8_t> FakeBzImage(size_t payload = 0x3000, uint32_t init_size = 0x10000) {
  std::vector<uint8_t> b(5 * 512 + payload, 0);
  b[0x1f1] = 4;
  Put<uint16_t>(b, 0x1fe, 0xaa55);
  b[0x201] = 0x6a;  // setup header ends at 0x26c, as in 6.1
  Put<uint32_t>(b, 0x202, 0x53726448);
  Put<uint16_t>(b, 0x206, 0x020f);
  b[0x211] = 1;  // LOADED_HIGH
  Put<uint32_t>(b, 0x22c, 0x7fffffff);
  Put<uint16_t>(b, 0x236, 0x7f);
  Put<uint32_t>(b, 0x238, 2047);
  Put<uint32_t>(b, 0x260, init_size);
  for (size_t i = 0; i < payload; ++i) b[5 * 512 + i] = static_cast<uint8_t>(i * 7 + 3);
  return b;
}

class LinuxLoaderTest : public ::testing::Test {
 protected:
  LinuxLoaderTest() : ram_(kRam, 0xee), view_(ram_) {}
  absl::StatusOr<LoadedLinux> Load(const std::vector<uint8_t>& image, std::string_view cmdline,
                                   std::span<const uint8_t> initrd = {}) {
    map_ = LinuxMemoryMap(kRam);
    LinuxBootConfig config{cmdline, initrd, map_, 0xe0000};
    return LoadLinuxFromBytes("bz", image, view_, kRam, config);
  }
  const uint8_t* At(uint64_t gpa) const { return ram_.data() + gpa; }

  std::vector<uint8_t> ram_;
  FlatGuestMemoryView view_;
  std::vector<MemoryMapEntry> map_;
};

TEST_F(LinuxLoaderTest, WritesKernelZeroPageCmdlineAndInitrd) {
  const std::vector<uint8_t> image = FakeBzImage();
  std::vector<uint8_t> initrd(10000);
  for (size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<uint8_t>(i);
  absl::StatusOr<LoadedLinux> loaded = Load(image, "console=ttyS0 quiet", initrd);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->entry64, 0x100200u);
  EXPECT_EQ(loaded->protocol, 0x020f);
  EXPECT_EQ(loaded->kernel_end, 0x100000u + 0x10000);
  EXPECT_EQ(std::memcmp(At(0x100000), image.data() + 5 * 512, 0x3000), 0);
  EXPECT_EQ(At(0x100000)[0x3000], 0);  // zeroed up to init_size
  EXPECT_EQ(loaded->initrd_size, initrd.size());
  EXPECT_EQ(loaded->initrd_gpa % 4096, 0u);
  EXPECT_LE(loaded->initrd_gpa + initrd.size(), kRam);
  EXPECT_GT(loaded->initrd_gpa + initrd.size() + 4096, kRam);  // at the top of RAM
  EXPECT_EQ(std::memcmp(At(loaded->initrd_gpa), initrd.data(), initrd.size()), 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(At(kLinuxCmdlineGpa)), "console=ttyS0 quiet");

  const uint8_t* bp = At(kLinuxBootParamsGpa);
  EXPECT_EQ(Get<uint32_t>(bp, 0x202), 0x53726448u);  // setup header copied
  EXPECT_EQ(bp[0x210], 0xff);                        // type_of_loader
  EXPECT_EQ(Get<uint32_t>(bp, 0x228), kLinuxCmdlineGpa);
  EXPECT_EQ(Get<uint32_t>(bp, 0x218), loaded->initrd_gpa);
  EXPECT_EQ(Get<uint32_t>(bp, 0x21c), initrd.size());
  EXPECT_EQ(Get<uint64_t>(bp, 0x070), 0xe0000u);  // acpi_rsdp_addr
  EXPECT_EQ(bp[0x1ef], 0);                        // sentinel
  ASSERT_EQ(bp[0x1e8], map_.size());
  for (size_t i = 0; i < map_.size(); ++i) {
    EXPECT_EQ(Get<uint64_t>(bp, 0x2d0 + 20 * i), map_[i].addr);
    EXPECT_EQ(Get<uint64_t>(bp, 0x2d0 + 20 * i + 8), map_[i].size);
    EXPECT_EQ(Get<uint32_t>(bp, 0x2d0 + 20 * i + 16), map_[i].type);
  }
  EXPECT_EQ(Get<uint64_t>(bp, 0x26c), 0u);  // nothing past the setup header was copied
}

TEST_F(LinuxLoaderTest, BootGdtAndIdentityMapCoverFourGiB) {
  ASSERT_TRUE(Load(FakeBzImage(), "").ok());
  EXPECT_EQ(Get<uint64_t>(At(kLinuxGdtGpa), 0x10), 0x00af9b000000ffffull);  // __BOOT_CS: L
  EXPECT_EQ(Get<uint64_t>(At(kLinuxGdtGpa), 0x18), 0x00cf93000000ffffull);  // __BOOT_DS
  const uint8_t* pml4 = At(kLinuxPageTablesGpa);
  const uint64_t pdpt = Get<uint64_t>(pml4, 0) & ~0xfffull;
  for (uint64_t gpa : {0ull, 0x100000ull, 0x1234'5678ull, 0xffff'ffffull}) {
    const uint64_t pd = Get<uint64_t>(At(pdpt), 8 * (gpa >> 30)) & ~0xfffull;
    const uint64_t pde = Get<uint64_t>(At(pd), 8 * ((gpa >> 21) & 511));
    EXPECT_EQ(pde & 0x83, 0x83u);  // present, writable, 2 MiB
    EXPECT_EQ((pde & ~0x1fffffull) | (gpa & 0x1fffff), gpa);
  }
}

TEST_F(LinuxLoaderTest, ResetVectorHoldsAStubThatResetsThroughPortCf9) {
  ASSERT_TRUE(Load(FakeBzImage(), "").ok());
  const uint8_t expected[] = {0xb0, 0x06, 0xba, 0xf9, 0x0c, 0xee};  // mov al,6; mov dx,0xcf9; out
  EXPECT_EQ(std::memcmp(At(kLinuxResetStubGpa), expected, sizeof(expected)), 0);
}

TEST_F(LinuxLoaderTest, LooksLikeBzImageOnlyForBzImages) {
  EXPECT_TRUE(LooksLikeBzImage(FakeBzImage()));
  std::vector<uint8_t> elf(4096, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  EXPECT_FALSE(LooksLikeBzImage(elf));
  EXPECT_FALSE(LooksLikeBzImage(std::vector<uint8_t>(100, 0)));
}

TEST_F(LinuxLoaderTest, BadImagesGetOneLineErrorsAndWriteNothing) {
  struct Case {
    const char* expect;
    std::vector<uint8_t> image;
  };
  std::vector<Case> cases;
  cases.push_back({"too small", std::vector<uint8_t>(600, 0)});
  cases.push_back({"no boot flag", FakeBzImage()});
  cases.back().image[0x1fe] = 0;
  cases.push_back({"HdrS", FakeBzImage()});
  cases.back().image[0x202] = 'X';
  cases.push_back({"2.11 is too old", FakeBzImage()});
  Put<uint16_t>(cases.back().image, 0x206, 0x020b);
  cases.push_back({"zImage", FakeBzImage()});
  cases.back().image[0x211] = 0;
  cases.push_back({"no 64-bit entry", FakeBzImage()});
  Put<uint16_t>(cases.back().image, 0x236, 0x2);
  cases.push_back({"setup header ends", FakeBzImage()});
  cases.back().image[0x201] = 0xf0;
  cases.push_back({"truncated", FakeBzImage()});
  cases.back().image[0x1f1] = 200;
  cases.push_back({"init_size", FakeBzImage(0x3000, 0x7000000)});  // 112 MiB > 96 MiB of RAM
  for (const Case& c : cases) {
    std::fill(ram_.begin(), ram_.end(), 0xee);
    absl::StatusOr<LoadedLinux> loaded = Load(c.image, "");
    ASSERT_FALSE(loaded.ok()) << c.expect;
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string msg(loaded.status().message());
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_EQ(msg.find("kernel 'bz': "), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
    EXPECT_EQ(ram_[kLinuxBootParamsGpa], 0xee) << "wrote before failing: " << c.expect;
    EXPECT_EQ(ram_[0x100000], 0xee);
  }
}

TEST_F(LinuxLoaderTest, RejectsBadCommandLinesAndInitrdsThatDoNotFit) {
  const std::vector<uint8_t> image = FakeBzImage();
  EXPECT_NE(Load(image, std::string(2048, 'x')).status().message().find("longer than"),
            std::string::npos);
  EXPECT_TRUE(Load(image, std::string(2047, 'x')).ok());
  EXPECT_FALSE(Load(image, std::string("a\0b", 3)).ok());
  std::vector<uint8_t> huge(kRam - 0x100000, 1);
  absl::StatusOr<LoadedLinux> loaded = Load(image, "", huge);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("initrd"), std::string::npos);
}

TEST(LinuxMemoryMap, ReservesTheBiosAreaAndSkipsTheMmioHole) {
  const std::vector<MemoryMapEntry> small = LinuxMemoryMap(64ull << 20);
  ASSERT_EQ(small.size(), 3u);
  EXPECT_EQ(small[1].type, MemoryMapEntry::kReserved);
  EXPECT_EQ(small[1].addr + small[1].size, 0x100000u);
  EXPECT_EQ(small[2].addr + small[2].size, 64ull << 20);
  const std::vector<MemoryMapEntry> big = LinuxMemoryMap(5ull << 30);
  ASSERT_EQ(big.size(), 4u);
  EXPECT_EQ(big[2].addr + big[2].size, 3ull << 30);
  EXPECT_EQ(big[3].addr, 4ull << 30);
  EXPECT_EQ(big[3].size, 2ull << 30);
}

TEST(LinuxLoaderRealKernel, LoadsDebiansCloudKernel) {
  std::string why;
  const std::string path = testing_linux::DebianKernel(&why);
  if (path.empty()) GTEST_SKIP() << why;
  absl::StatusOr<std::vector<uint8_t>> image = ReadFileBytes(path, "kernel", 1ull << 30);
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_TRUE(LooksLikeBzImage(*image));
  const uint64_t ram = 256ull << 20;
  std::vector<uint8_t> memory(ram, 0);
  FlatGuestMemoryView view(memory);
  const std::vector<MemoryMapEntry> map = LinuxMemoryMap(ram);
  const std::vector<uint8_t> initrd(1 << 20, 0x5a);
  absl::StatusOr<LoadedLinux> loaded =
      LoadLinuxFromBytes(path, *image, view, ram, {"console=ttyS0 panic=-1", initrd, map, 0xe0000});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_GE(loaded->protocol, 0x020f);
  EXPECT_GT(loaded->kernel_end, 0x100000u + image->size() / 2);
  EXPECT_LE(loaded->kernel_end, loaded->initrd_gpa);
  // The 64-bit entry is the payload's startup_64: the payload starts at 1 MiB.
  const size_t setup = (static_cast<size_t>((*image)[0x1f1]) + 1) * 512;
  EXPECT_EQ(std::memcmp(memory.data() + 0x100000, image->data() + setup, 4096), 0);
  EXPECT_EQ(memory[kLinuxBootParamsGpa + 0x210], 0xff);
  // Too little RAM for its 50-odd MiB init_size: a clean error.
  const uint64_t small = 32ull << 20;
  const std::vector<MemoryMapEntry> small_map = LinuxMemoryMap(small);
  absl::StatusOr<LoadedLinux> too_small =
      LoadLinuxFromBytes(path, *image, view, small, {"", {}, small_map, 0});
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.status().message().find("init_size"), std::string::npos);
}

}  // namespace
}  // namespace rehome
