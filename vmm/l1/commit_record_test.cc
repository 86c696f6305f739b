// vmm/l1/commit_record_test.cc: commit record encode -> decode round trip and answer conversion.
#include "vmm/l1/commit_record.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

TEST(CommitRecordTest, RoundTrip) {
  CommitRecord record;
  record.l1_generation = 3;
  record.exits_handled = 99;
  record.verified_reports = 12;
  record.pio_bench_writes = 5;
  record.last_answer.resize(2);
  record.last_answer[1] = {77, ExitResponse::kGuestExit, 2, "rd", "out", "why"};
  record.device_state = {1, 2, 3};
  const std::vector<uint8_t> bytes = EncodeCommitRecord(record);
  auto decoded = DecodeCommitRecord(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->l1_generation, 3u);
  EXPECT_EQ(decoded->exits_handled, 99u);
  EXPECT_EQ(decoded->verified_reports, 12u);
  EXPECT_EQ(decoded->pio_bench_writes, 5u);
  ASSERT_EQ(decoded->last_answer.size(), 2u);
  EXPECT_EQ(decoded->last_answer[1].seq, 77u);
  EXPECT_EQ(decoded->last_answer[1].output, "out");
  EXPECT_EQ(decoded->device_state, record.device_state);
  auto response = std::make_unique<ExitResponse>();
  decoded->last_answer[1].ToResponse(response.get());
  EXPECT_EQ(response->crc, ResponseCrc(*response));
  EXPECT_EQ(CommittedAnswer::FromResponse(*response).reason, "why");
}

TEST(CommitRecordTest, EncodingIntoAReusedBufferGivesTheSameBytes) {
  CommitRecord big;
  big.last_answer.resize(2);
  big.device_state.assign(5000, 0xee);
  CommitRecord small;
  small.exits_handled = 1;
  small.last_answer.resize(1);
  small.device_state = {9};
  std::vector<uint8_t> buffer;
  EncodeCommitRecordInto(big, &buffer);
  EXPECT_EQ(buffer, EncodeCommitRecord(big));
  const size_t capacity = buffer.capacity();
  EncodeCommitRecordInto(small, &buffer);  // shorter: nothing of the previous record remains
  EXPECT_EQ(buffer, EncodeCommitRecord(small));
  EXPECT_EQ(buffer.capacity(), capacity);
}

// Found by journal_fuzz (tests/fuzz/corpus/journal_fuzz/crash-vcpu-count): a forged count of
// 2^32 - 16 vCPU answers made the decoder loop that often (its reader stops advancing after the
// first error), growing L0's memory by gigabytes.
TEST(CommitRecordTest, ForgedHugeVcpuCountIsRefusedAtOnce) {
  std::string bytes(1, static_cast<char>(kCommitRecordVersion));
  bytes.append(5 * 8, '\0');            // generation, exits, reports, violations, pio writes
  bytes.append("\xf0\xff\xff\xff", 4);  // vCPU answers
  bytes.append(16, '\x01');
  absl::StatusOr<CommitRecord> decoded = DecodeCommitRecord(bytes);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoded.status().message(), "commit record: 4294967280 vCPU answers (at most 256)");
}

TEST(CommitRecordTest, TruncatedRecordsAreRefused) {
  CommitRecord record;
  record.last_answer.resize(4);
  std::vector<uint8_t> bytes = EncodeCommitRecord(record);
  for (size_t cut : {size_t{0}, size_t{1}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_FALSE(
        DecodeCommitRecord(std::string_view(reinterpret_cast<const char*>(bytes.data()), cut))
            .ok());
  }
}

// What a hostile L1 can commit (with a valid journal checksum): a vCPU count of 2^32 - 1 over a
// short payload. Decoding once looped 2^32 times and ran L0 out of memory.
TEST(CommitRecordTest, HostileVcpuCountIsRefusedAtOnce) {
  std::string bytes(64, '\0');
  bytes[0] = static_cast<char>(kCommitRecordVersion);
  for (int i = 41; i < 45; ++i) bytes[i] = '\xff';  // after the version byte and five u64s
  const absl::StatusOr<CommitRecord> record = DecodeCommitRecord(bytes);
  ASSERT_FALSE(record.ok());
  EXPECT_EQ(record.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(record.status().message(), ::testing::HasSubstr("4294967295 vCPUs"));
}

}  // namespace
}  // namespace rehome
