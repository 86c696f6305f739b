// state-extract/device_journal_test.cc: commits, reads through a second mapping (as the standby
// does), torn and forged buffers, capacity.
#include "state-extract/device_journal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// Found by journal_fuzz (corpus crash-empty-commit): an empty payload was copied from a null
// pointer (undefined behaviour), and its CRC was zlib's restart value (crc32 of a null buffer),
// so an empty commit always read back as DataLoss.
TEST(DeviceJournalTest, EmptyCommitIsAValidCommit) {
  auto journal = DeviceJournal::Create(1024);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit({}).ok());
  absl::StatusOr<std::string> read = journal->ReadCommitted();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

// The header is shared with every L1: a forged current-buffer index (found while fuzzing the
// journal) must neither make a reader look outside the buffers nor make the next writer write
// outside them.
TEST(DeviceJournalTest, ForgedCurrentIndexIsDataLossAndTheNextCommitStaysInside) {
  auto journal = DeviceJournal::Create(1024);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(Bytes("first")).ok());
  const size_t size = static_cast<size_t>(lseek(journal->memfd(), 0, SEEK_END));
  void* shared = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, journal->memfd(), 0);
  ASSERT_NE(shared, MAP_FAILED);
  auto* header = static_cast<DeviceJournal::Header*>(shared);
  header->current.store(7);
  EXPECT_EQ(journal->ReadCommitted().status().code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(journal->Commit(Bytes("second")).ok());
  EXPECT_EQ(header->current.load(), 0u);
  absl::StatusOr<std::string> read = journal->ReadCommitted();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "second");
  munmap(shared, size);
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

// Every L1 holds the journal's fd: none may shrink it under L0's mapping (SIGBUS) or grow it.
TEST(DeviceJournalTest, MemfdIsSealedAgainstResizing) {
  auto journal = DeviceJournal::Create(4096);
  ASSERT_TRUE(journal.ok());
  EXPECT_NE(ftruncate(journal->memfd(), 64), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(journal->memfd(), 1 << 20), 0);
}

// Hostile header and buffer values read as errors, never past the reader's own capacity.
TEST(DeviceJournalTest, HostileFieldsAreDataLoss) {
  auto journal = DeviceJournal::Create(1024);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->Commit(Bytes("state")).ok());
  DeviceJournal::Header& header = journal->RawHeader();
  header.capacity = ~0ull;  // the reader uses its own copy
  const uint32_t current = header.current.load();
  header.current.store(2);
  EXPECT_EQ(journal->ReadCommitted().status().code(), absl::StatusCode::kDataLoss);
  header.current.store(current);
  const uint32_t huge = 1025;
  std::memcpy(journal->RawBuffer(static_cast<int>(current)).data(), &huge, 4);
  EXPECT_EQ(journal->ReadCommitted().status().code(), absl::StatusCode::kDataLoss);
}

TEST(DeviceJournalTest, AttachRefusesForeignFiles) {
  const int fd = memfd_create("x", MFD_CLOEXEC);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  EXPECT_FALSE(DeviceJournal::Attach(fd).ok());
}

}  // namespace
}  // namespace rehome
