// vmm/nested/nested_commit_test.cc: the agent's journal record round-trips and refuses
// truncated or foreign bytes; the console ring keeps the last ring-size bytes across wraps;
// AgentRegions maps the three regions out of one file at their offsets (as /dev/mem) and
// refuses a file without a control page.
#include "vmm/nested/nested_commit.h"

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <new>

#include "gtest/gtest.h"
#include "state-extract/device_journal.h"
#include "vmm/nested/agent_regions.h"

namespace rehome {
namespace {

NestedCommit Sample() {
  NestedCommit c;
  c.exits = 12345;
  c.console_bytes = 77;
  c.verified_reports = 200;
  c.oracle_violations = 1;
  c.agent_generation = 3;
  c.l2_state = std::string("RHSTATE\0blob", 12);
  c.device_state = {1, 2, 3, 0, 255};
  return c;
}

TEST(NestedCommitTest, RoundTrips) {
  const std::vector<uint8_t> bytes = EncodeNestedCommit(Sample());
  absl::StatusOr<NestedCommit> back = DecodeNestedCommit(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, Sample());
}

std::string_view View(const std::vector<uint8_t>& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST(NestedCommitTest, RoundTripsWithAPendingPortWrite) {
  for (const std::vector<uint8_t>& data :
       {std::vector<uint8_t>{0x41}, std::vector<uint8_t>{1, 2}, std::vector<uint8_t>{1, 2, 3, 4}}) {
    NestedCommit c = Sample();
    c.pending_write = PendingPortWrite{0x3f8, data};
    absl::StatusOr<NestedCommit> back = DecodeNestedCommit(View(EncodeNestedCommit(c)));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, c);
  }
}

TEST(NestedCommitTest, RefusesAPendingWriteOfABadSizeOrABadFlag) {
  NestedCommit c = Sample();
  c.pending_write = PendingPortWrite{0x80, {1, 2, 3}};
  absl::StatusOr<NestedCommit> three = DecodeNestedCommit(View(EncodeNestedCommit(c)));
  EXPECT_EQ(three.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(three.status().message().find("3 bytes"), std::string::npos) << three.status();
  std::vector<uint8_t> bytes = EncodeNestedCommit(Sample());
  bytes.back() = 2;  // the flag is the last byte without a pending write
  absl::StatusOr<NestedCommit> flag = DecodeNestedCommit(View(bytes));
  EXPECT_EQ(flag.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NestedCommitTest, RefusesTruncatedAndForeignRecords) {
  std::vector<uint8_t> bytes = EncodeNestedCommit(Sample());
  for (size_t len : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_EQ(DecodeNestedCommit(std::string_view(reinterpret_cast<const char*>(bytes.data()), len))
                  .status()
                  .code(),
              absl::StatusCode::kInvalidArgument)
        << len;
  }
  bytes[0] = kNestedCommitVersion + 1;
  EXPECT_FALSE(DecodeNestedCommit(
                   std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()))
                   .ok());
}

TEST(ConsoleRingTest, KeepsTheLastRingSizeBytesAcrossWraps) {
  std::array<uint8_t, 8> ring{};
  WriteConsoleRing(ring, 0, "hello");
  EXPECT_EQ(ReadConsoleRing(ring, 0, 5), "hello");
  WriteConsoleRing(ring, 5, "world!");  // wraps: positions 5..10
  EXPECT_EQ(ReadConsoleRing(ring, 5, 11), "world!");
  EXPECT_EQ(ReadConsoleRing(ring, 0, 11),
            "lo"
            "world!");  // only the last 8 bytes remain
  EXPECT_EQ(ReadConsoleRing(ring, 11, 11), "");
  EXPECT_EQ(ReadConsoleRing(ring, 9, 3), "");
}

TEST(AgentRegionsTest, MapsTheRegionsOutOfOneFileAtTheirOffsets) {
  // A sparse file laid out like the L1's physical memory: control, journal, L2 RAM.
  const int mem = memfd_create("devmem", MFD_CLOEXEC);
  ASSERT_GE(mem, 0);
  const uint64_t l2 = 16ull << 20;
  ASSERT_EQ(ftruncate(mem, static_cast<off_t>(nested_abi::kL2RamGpa + l2)), 0);
  EXPECT_FALSE(AgentRegions::Map({mem, nested_abi::kControlGpa, nested_abi::kControlRegionSize},
                                 {mem, nested_abi::kJournalGpa, nested_abi::kJournalRegionSize},
                                 {mem, nested_abi::kL2RamGpa, l2})
                   .ok());  // no control page yet
  nested_abi::ControlPage page{};
  page.magic = nested_abi::kControlMagic;
  page.version = nested_abi::kControlVersion;
  page.l1_id = 7;
  ASSERT_EQ(pwrite(mem, &page, sizeof(page), static_cast<off_t>(nested_abi::kControlGpa)),
            static_cast<ssize_t>(sizeof(page)));
  auto journal = DeviceJournal::Create(DeviceJournal::CapacityFor(nested_abi::kJournalRegionSize));
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(std::vector<uint8_t>{'j'}).ok());
  std::vector<uint8_t> copy(nested_abi::kJournalRegionSize);
  ASSERT_EQ(pread(journal->memfd(), copy.data(), copy.size(), 0),
            static_cast<ssize_t>(copy.size()));
  ASSERT_EQ(pwrite(mem, copy.data(), copy.size(), static_cast<off_t>(nested_abi::kJournalGpa)),
            static_cast<ssize_t>(copy.size()));
  const uint8_t marker = 0x5a;
  ASSERT_EQ(pwrite(mem, &marker, 1, static_cast<off_t>(nested_abi::kL2RamGpa + 4096)), 1);
  auto regions = AgentRegions::Map({mem, nested_abi::kControlGpa, nested_abi::kControlRegionSize},
                                   {mem, nested_abi::kJournalGpa, nested_abi::kJournalRegionSize},
                                   {mem, nested_abi::kL2RamGpa, l2});
  ASSERT_TRUE(regions.ok()) << regions.status();
  EXPECT_EQ((*regions)->control()->l1_id, 7u);
  EXPECT_EQ(*(*regions)->journal().ReadCommitted(), "j");
  EXPECT_EQ(*(*regions)->l2_ram().HostAddress(4096, 1), marker);
  close(mem);
}

}  // namespace
}  // namespace rehome
