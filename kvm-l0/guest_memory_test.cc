// kvm-l0/guest_memory_test.cc: GuestMemory layout, sparseness, bounds and sharing (real memfds,
// a real second process).
#include "kvm-l0/guest_memory.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

// Resident set size of this process in bytes (second field of /proc/self/statm).
uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

TEST(GuestMemory, SixteenMebibytesIsOneRegionAtZero) {
  auto mem = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_EQ(mem->regions().size(), 1u);
  EXPECT_EQ(mem->regions()[0].gpa, 0u);
  EXPECT_EQ(mem->regions()[0].size, 16 * kMiB);
  EXPECT_GE(mem->regions()[0].fd, 0);
  EXPECT_EQ(mem->total_size(), 16 * kMiB);
}

TEST(GuestMemory, RejectsBadSizes) {
  for (uint64_t size :
       std::vector<uint64_t>{0, 15 * kMiB, 17 * kMiB, 16 * kMiB + 4096, (1ull << 40) + 2 * kMiB}) {
    auto mem = GuestMemory::Create(size);
    EXPECT_EQ(mem.status().code(), absl::StatusCode::kInvalidArgument) << size;
  }
}

TEST(GuestMemory, MemfdIsSealedAgainstResizing) {
  auto mem = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  const int fd = mem->regions()[0].fd;
  const int seals = fcntl(fd, F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_NE(ftruncate(fd, 8 * kMiB), 0);
  EXPECT_NE(ftruncate(fd, 32 * kMiB), 0);
}

TEST(GuestMemory, SixteenGibibytesSplitsAroundTheHoleAndStaysSparse) {
  const uint64_t before = ResidentBytes();
  auto mem = GuestMemory::Create(16 * kGiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_EQ(mem->regions().size(), 2u);
  EXPECT_EQ(mem->regions()[0].gpa, 0u);
  EXPECT_EQ(mem->regions()[0].size, GuestMemory::kMmioHoleStart);
  EXPECT_EQ(mem->regions()[1].gpa, GuestMemory::kMmioHoleEnd);
  EXPECT_EQ(mem->regions()[1].size, 13 * kGiB);
  EXPECT_EQ(mem->total_size(), 16 * kGiB);
  // Touch one page at each end: still only a few pages resident.
  ASSERT_TRUE(mem->Write(0, std::vector<uint8_t>{1}).ok());
  ASSERT_TRUE(mem->Write(GuestMemory::kMmioHoleEnd + 13 * kGiB - 1, std::vector<uint8_t>{2}).ok());
  const uint64_t after = ResidentBytes();
  ASSERT_GT(before, 0u);
  EXPECT_LT(after - std::min(after, before), 32 * kMiB);
}

TEST(GuestMemory, FourGibibytesPutsOneGibibyteAboveTheHole) {
  auto mem = GuestMemory::Create(4 * kGiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_EQ(mem->regions().size(), 2u);
  EXPECT_EQ(mem->regions()[1].gpa, 4 * kGiB);
  EXPECT_EQ(mem->regions()[1].size, 1 * kGiB);
}

TEST(GuestMemory, HostAddressIsBoundsChecked) {
  auto mem = GuestMemory::Create(4 * kGiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  const auto& low = mem->regions()[0];
  const auto& high = mem->regions()[1];
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(mem->HostAddress(0, 1), low.host);
  EXPECT_EQ(mem->HostAddress(0x1234, 16), low.host + 0x1234);
  EXPECT_EQ(mem->HostAddress(0, low.size), low.host);
  EXPECT_EQ(mem->HostAddress(low.size - 4, 4), low.host + low.size - 4);
  EXPECT_EQ(mem->HostAddress(low.size - 4, 5), nullptr);  // runs into the hole
  EXPECT_EQ(mem->HostAddress(GuestMemory::kMmioHoleStart, 1), nullptr);
  EXPECT_EQ(mem->HostAddress(GuestMemory::kMmioHoleEnd - 1, 2), nullptr);  // straddles
  EXPECT_EQ(mem->HostAddress(0xfee00000, 0), nullptr);                     // LAPIC page
  EXPECT_EQ(mem->HostAddress(GuestMemory::kMmioHoleEnd, 8), high.host);
  EXPECT_EQ(mem->HostAddress(high.gpa + high.size - 1, 1), high.host + high.size - 1);
  EXPECT_EQ(mem->HostAddress(high.gpa + high.size, 0), nullptr);
  EXPECT_EQ(mem->HostAddress(high.gpa + high.size - 1, 2), nullptr);
  EXPECT_EQ(mem->HostAddress(kMax - 1, 4), nullptr);  // gpa + len overflows
  EXPECT_EQ(mem->HostAddress(16, kMax), nullptr);
  EXPECT_EQ(mem->HostAddress(kMax, kMax), nullptr);
}

TEST(GuestMemory, ReadWriteRoundTripAndRejectTheHole) {
  auto mem = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  const std::vector<uint8_t> in = {1, 2, 3, 4, 5};
  ASSERT_TRUE(mem->Write(0x8000, in).ok());
  std::vector<uint8_t> out(5);
  ASSERT_TRUE(mem->Read(0x8000, std::span<uint8_t>(out)).ok());
  EXPECT_EQ(out, in);
  EXPECT_EQ(mem->Write(16 * kMiB - 2, in).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mem->Read(GuestMemory::kMmioHoleStart, std::span<uint8_t>(out)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GuestMemory, TwoMappingsOfTheSameMemfdSeeEachOthersWrites) {
  auto first = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(first.ok()) << first.status();
  const GuestMemory::RegionDesc desc{0, 16 * kMiB, first->regions()[0].fd};
  auto second = GuestMemory::FromFds({&desc, 1});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->regions()[0].host, first->regions()[0].host);
  EXPECT_NE(second->regions()[0].fd, first->regions()[0].fd);  // its own dup
  ASSERT_TRUE(first->Write(0x100, std::vector<uint8_t>{0xab}).ok());
  EXPECT_EQ(*second->HostAddress(0x100, 1), 0xab);
  ASSERT_TRUE(second->Write(0x200, std::vector<uint8_t>{0xcd}).ok());
  EXPECT_EQ(*first->HostAddress(0x200, 1), 0xcd);
}

TEST(GuestMemory, ARegionMayStartInsideItsFile) {
  auto mem = GuestMemory::Create(32 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  ASSERT_TRUE(mem->Write(20 * kMiB + 8, std::vector<uint8_t>{0x77}).ok());
  const GuestMemory::RegionDesc window{0x1'0000'0000, 8 * kMiB, mem->regions()[0].fd, 16 * kMiB};
  auto view = GuestMemory::FromFds({&window, 1});
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(*view->HostAddress(0x1'0000'0000 + 4 * kMiB + 8, 1), 0x77);
  const GuestMemory::RegionDesc past_end{0, 8 * kMiB, mem->regions()[0].fd, 28 * kMiB};
  EXPECT_EQ(GuestMemory::FromFds({&past_end, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const GuestMemory::RegionDesc odd_offset{0, 8 * kMiB, mem->regions()[0].fd, 100};
  EXPECT_EQ(GuestMemory::FromFds({&odd_offset, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GuestMemory, AnotherProcessMapsTheSameRam) {
  auto mem = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  const GuestMemory::RegionDesc desc{0, 16 * kMiB, mem->regions()[0].fd};
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto other = GuestMemory::FromFds({&desc, 1});
    if (!other.ok()) _exit(2);
    if (!other->Write(15 * kMiB, std::vector<uint8_t>{0x5a, 0xa5}).ok()) _exit(3);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(mem->HostAddress(15 * kMiB, 2)[0], 0x5a);
  EXPECT_EQ(mem->HostAddress(15 * kMiB, 2)[1], 0xa5);
}

TEST(GuestMemory, FromFdsRejectsBadRegions) {
  auto mem = GuestMemory::Create(16 * kMiB);
  ASSERT_TRUE(mem.ok()) << mem.status();
  const int fd = mem->regions()[0].fd;
  const GuestMemory::RegionDesc too_big{0, 32 * kMiB, fd};
  EXPECT_EQ(GuestMemory::FromFds({&too_big, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const GuestMemory::RegionDesc in_hole{GuestMemory::kMmioHoleStart - 4096, 16 * kMiB, fd};
  EXPECT_EQ(GuestMemory::FromFds({&in_hole, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const GuestMemory::RegionDesc unaligned{0x800, 8 * kMiB, fd};
  EXPECT_EQ(GuestMemory::FromFds({&unaligned, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const GuestMemory::RegionDesc overlapping[] = {{0, 8 * kMiB, fd}, {4 * kMiB, 8 * kMiB, fd}};
  EXPECT_EQ(GuestMemory::FromFds(overlapping).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GuestMemory::FromFds({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rehome
