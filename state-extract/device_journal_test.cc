// state-extract/device_journal_test.cc: commits, reads through a second mapping (as the standby
// does), torn and forged buffers, capacity.
#include "state-extract/device_journal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "gtest/gtest.h"

namespace rehome {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(DeviceJournalTest, EmptyJournalHasNothingCommitted) {
  auto journal = DeviceJournal::Create(1024);
  ASSERT_TRUE(journal.ok());
  EXPECT_TRUE(absl::IsNotFound(journal->ReadCommitted().status()));
}

TEST(DeviceJournalTest, ReaderSeesTheLastCommit) {
  auto journal = DeviceJournal::Create(1024);
  ASSERT_TRUE(journal.ok());
  auto reader = DeviceJournal::Attach(dup(journal->memfd()));
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (int i = 0; i < 5; ++i) {
    const std::string payload = "state " + std::to_string(i);
    ASSERT_TRUE(journal->Commit(Bytes(payload)).ok());
    auto read = reader->ReadCommitted();
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, payload);
    EXPECT_EQ(reader->commits(), static_cast<uint64_t>(i + 1));
  }
}

TEST(DeviceJournalTest, AWriterKilledMidCommitLeavesTheLastCommitIntact) {
  auto journal = DeviceJournal::Create(64);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(Bytes("first")).ok());  // the first commit lands in buffer 1
  // A commit in progress scribbles on the other buffer only.
  std::span<uint8_t> other = journal->RawBuffer(0);
  for (uint8_t& b : other) b = 0x5a;
  auto read = journal->ReadCommitted();
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "first");
}

TEST(DeviceJournalTest, CorruptedCurrentBufferIsDataLoss) {
  auto journal = DeviceJournal::Create(64);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(Bytes("first")).ok());   // buffer 1
  ASSERT_TRUE(journal->Commit(Bytes("second")).ok());  // buffer 0
  journal->RawBuffer(0)[16] ^= 0xff;                   // first payload byte of buffer 0
  EXPECT_TRUE(absl::IsDataLoss(journal->ReadCommitted().status()));
}

TEST(DeviceJournalTest, OversizedCommitIsRefusedAndChangesNothing) {
  auto journal = DeviceJournal::Create(8);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(Bytes("small")).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(journal->Commit(Bytes("far too large"))));
  EXPECT_EQ(*journal->ReadCommitted(), "small");
}

// A nested-mode agent maps the journal out of /dev/mem: the journal lies at an offset of a
// larger file, in a region bigger than the journal.
TEST(DeviceJournalTest, AttachAtFindsAJournalInsideALargerFile) {
  const uint64_t region = 64 * 1024;
  auto journal = DeviceJournal::Create(DeviceJournal::CapacityFor(region));
  ASSERT_TRUE(journal.ok());
  EXPECT_EQ(DeviceJournal::SizeFor(DeviceJournal::CapacityFor(region)), region);
  ASSERT_TRUE(journal->Commit(Bytes("nested")).ok());
  const int big = memfd_create("big", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(big, 4 * region), 0);
  std::vector<uint8_t> copy(region);
  ASSERT_EQ(pread(journal->memfd(), copy.data(), region, 0), static_cast<ssize_t>(region));
  ASSERT_EQ(pwrite(big, copy.data(), region, 2 * region), static_cast<ssize_t>(region));
  auto reader = DeviceJournal::AttachAt(dup(big), 2 * region, 2 * region);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(*reader->ReadCommitted(), "nested");
  // Too small a window for the journal's header-declared size is refused.
  EXPECT_FALSE(DeviceJournal::AttachAt(dup(big), 2 * region, region / 2).ok());
  EXPECT_FALSE(DeviceJournal::AttachAt(dup(big), 0, region).ok());  // zeros: no magic
  close(big);
}

TEST(DeviceJournalTest, AttachRefusesForeignFiles) {
  const int fd = memfd_create("x", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  EXPECT_FALSE(DeviceJournal::Attach(fd).ok());
}

}  // namespace
}  // namespace rehome
