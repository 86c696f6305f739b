// kvm-l0/exit_channel_test.cc: channel creation/attachment (as an L1 would, from the fds) and
// response validation: everything an L1 writes is checked before L0 uses it.
#include "kvm-l0/exit_channel.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<ExitResponse> AnswerFor(const ExitRequest& request, uint32_t data_len) {
  auto r = std::make_unique<ExitResponse>();
  r->seq = request.seq;
  r->data_len = data_len;
  std::memset(r->data, 0xab, data_len);
  r->output_len = 3;
  std::memcpy(r->output, "abc", 3);
  r->crc = ResponseCrc(*r);
  return r;
}

TEST(ExitChannelTest, AttachSeesWhatCreateWrote) {
  auto channel = ExitChannel::Create(2);
  ASSERT_TRUE(channel.ok()) << channel.status();
  channel->slot(1).request.seq = 42;
  channel->slot(1).request_seq.store(42);
  auto peer = ExitChannel::Attach(
      dup(channel->memfd()), dup(channel->request_eventfd()), dup(channel->ack_eventfd()),
      {dup(channel->response_eventfd(0)), dup(channel->response_eventfd(1))});
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->slot_count(), 2u);
  EXPECT_EQ(peer->slot(1).request_seq.load(), 42u);
  peer->header().heartbeat.fetch_add(1);
  EXPECT_EQ(channel->header().heartbeat.load(), 1u);
}

TEST(ExitChannelTest, AttachRefusesAMismatchedSlotCount) {
  auto channel = ExitChannel::Create(2);
  ASSERT_TRUE(channel.ok());
  auto peer = ExitChannel::Attach(dup(channel->memfd()), dup(channel->request_eventfd()),
                                  dup(channel->ack_eventfd()), {dup(channel->response_eventfd(0))});
  EXPECT_FALSE(peer.ok());
}

TEST(ExitChannelTest, MemfdIsSealedAgainstResizing) {
  auto channel = ExitChannel::Create(2);
  ASSERT_TRUE(channel.ok());
  EXPECT_NE(ftruncate(channel->memfd(), 4096), 0);  // an L1 shrinking it would SIGBUS L0
  EXPECT_EQ(errno, EPERM);
}

// The failure note is the L1's: bounded, and made one printable line whatever it holds.
TEST(ExitChannelTest, ReportedFailureIsBoundedAndPrintable) {
  auto channel = ExitChannel::Create(1);
  ASSERT_TRUE(channel.ok());
  ExitChannelHeader& h = channel->header();
  EXPECT_EQ(channel->ReportedFailure(), "");
  std::memset(h.failure, '\n', sizeof(h.failure));
  std::memcpy(h.failure, "oops \xff\x1b[2J", 10);
  h.failure_len.store(0xffffffffu);
  const std::string note = channel->ReportedFailure();
  EXPECT_EQ(note.size(), kExitReasonMax);
  EXPECT_EQ(note.substr(0, 12), "oops ??[2J??");
  EXPECT_EQ(PrintableL1Text("ok \t\x7f"), "ok ??");
  EXPECT_EQ(SandboxLayerNames(0), "none");
  EXPECT_EQ(SandboxLayerNames(kLayerSeccomp | kLayerPidNamespace), "seccomp, pid namespace");
}

TEST(ExitChannelTest, ValidResponsesPass) {
  auto request = std::make_unique<ExitRequest>();
  request->seq = 7;
  request->size = 4;
  request->count = 1;
  request->is_write = 0;
  EXPECT_TRUE(ValidateResponse(*request, *AnswerFor(*request, 4)).ok());
  request->is_write = 1;
  EXPECT_TRUE(ValidateResponse(*request, *AnswerFor(*request, 0)).ok());
}

TEST(ExitChannelTest, MalformedResponsesAreRefused) {
  auto request = std::make_unique<ExitRequest>();
  request->seq = 7;
  request->size = 2;
  request->count = 1;
  auto wrong_seq = AnswerFor(*request, 2);
  wrong_seq->seq = 6;
  wrong_seq->crc = ResponseCrc(*wrong_seq);
  EXPECT_THAT(ValidateResponse(*request, *wrong_seq).message(), HasSubstr("exit 7"));
  auto bad_crc = AnswerFor(*request, 2);
  bad_crc->data[0] ^= 1;
  EXPECT_THAT(ValidateResponse(*request, *bad_crc).message(), HasSubstr("checksum"));
  auto bad_len = AnswerFor(*request, 2);
  bad_len->data_len = 0xffffffff;
  EXPECT_FALSE(ValidateResponse(*request, *bad_len).ok());
  auto short_read = AnswerFor(*request, 1);
  EXPECT_THAT(ValidateResponse(*request, *short_read).message(), HasSubstr("data bytes"));
  auto bad_action = AnswerFor(*request, 2);
  bad_action->action = 99;
  bad_action->crc = ResponseCrc(*bad_action);
  EXPECT_THAT(ValidateResponse(*request, *bad_action).message(), HasSubstr("action"));
}

bool Readable(int eventfd) {
  pollfd fd{eventfd, POLLIN, 0};
  return poll(&fd, 1, 0) == 1;
}

TEST(ExitChannelTest, WakeUpsGoOnlyToASleepingSide) {
  auto channel = ExitChannel::Create(1);
  ASSERT_TRUE(channel.ok());
  channel->WakeL1IfSleeping();  // a new channel says the L1 sleeps until it says otherwise
  EXPECT_TRUE(Readable(channel->request_eventfd()));
  ExitChannel::Drain(channel->request_eventfd());
  channel->SetL1Sleeping(false);
  channel->WakeL1IfSleeping();
  EXPECT_FALSE(Readable(channel->request_eventfd()));
  channel->WakeL0IfSleeping(0);  // L0 has not said it sleeps
  EXPECT_FALSE(Readable(channel->response_eventfd(0)));
  channel->SetL0Sleeping(0, true);
  channel->WakeL0IfSleeping(0);
  EXPECT_TRUE(Readable(channel->response_eventfd(0)));
}

// Both sides of the protocol as L0 and the L1 run it, on two threads, each side choosing at
// random to spin or to sleep before every wait. A lost wake-up would leave a sleeper in poll
// until its timeout: every one of the round trips must be woken, none may time out.
TEST(ExitChannelTest, NoWakeUpIsLostBetweenSpinningAndSleepingSides) {
  auto created = ExitChannel::Create(1);
  ASSERT_TRUE(created.ok());
  ExitChannel& channel = *created;
  ExitSlot& slot = channel.slot(0);
  constexpr uint64_t kRoundTrips = 20000;
  constexpr int kLostWakeUpMs = 5000;
  std::atomic<int> timeouts{0};
  // Waits until `published` reaches `seq`: maybe spins a little, else says it sleeps, re-checks
  // and polls `eventfd`.
  auto wait_for = [&](std::minstd_rand& random, const std::atomic<uint64_t>& published,
                      uint64_t seq, int eventfd, auto set_sleeping) {
    if (random() % 2 == 0) {
      for (int i = 0; i < 200 && published.load(std::memory_order_acquire) < seq; ++i) {
        __builtin_ia32_pause();
      }
    }
    if (published.load(std::memory_order_acquire) >= seq) return;
    set_sleeping(true);
    while (published.load(std::memory_order_acquire) < seq) {
      pollfd fd{eventfd, POLLIN, 0};
      if (poll(&fd, 1, kLostWakeUpMs) == 0) ++timeouts;
      ExitChannel::Drain(eventfd);
    }
    set_sleeping(false);
  };
  std::thread l1([&] {
    std::minstd_rand random(2);
    for (uint64_t seq = 1; seq <= kRoundTrips; ++seq) {
      wait_for(random, slot.request_seq, seq, channel.request_eventfd(),
               [&](bool sleeping) { channel.SetL1Sleeping(sleeping); });
      slot.response_seq.store(seq, std::memory_order_release);
      channel.WakeL0IfSleeping(0);
    }
  });
  std::minstd_rand random(1);
  for (uint64_t seq = 1; seq <= kRoundTrips; ++seq) {
    slot.request_seq.store(seq, std::memory_order_release);
    channel.WakeL1IfSleeping();
    wait_for(random, slot.response_seq, seq, channel.response_eventfd(0),
             [&](bool sleeping) { channel.SetL0Sleeping(0, sleeping); });
  }
  l1.join();
  EXPECT_EQ(timeouts.load(), 0);
}

// The ranges an L1 publishes are taken only when all of them are well-formed; L0 posts only
// accesses that lie entirely inside one.
TEST(ExitChannelTest, PostedRangesAreValidatedAndMatchWholeAccessesOnly) {
  absl::StatusOr<ExitChannel> channel = ExitChannel::Create(1);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ExitChannelHeader& h = channel->header();
  EXPECT_TRUE(ReadPostedRanges(h).empty());  // none published
  h.posted_ranges[0] = {PostedRange::kPio, 2, 0x7e8};
  h.posted_ranges[1] = {PostedRange::kMmio, 0x200, 0xd0000000};
  h.posted_range_count.store(2, std::memory_order_release);
  const std::vector<PostedRange> ranges = ReadPostedRanges(h);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_TRUE(InPostedRange(ranges, ExitRequest::kPio, 0x7e8, 1));
  EXPECT_TRUE(InPostedRange(ranges, ExitRequest::kPio, 0x7e8, 2));
  EXPECT_TRUE(InPostedRange(ranges, ExitRequest::kPio, 0x7e9, 1));
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kPio, 0x7e9, 2));   // straddles the end
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kPio, 0x7e7, 2));   // straddles the start
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kMmio, 0x7e8, 1));  // other space
  EXPECT_TRUE(InPostedRange(ranges, ExitRequest::kMmio, 0xd00001fc, 4));
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kMmio, 0xd00001fe, 4));
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kConsoleInput, 0x7e8, 1));
  EXPECT_FALSE(InPostedRange(ranges, ExitRequest::kMmio, ~0ull, 8));

  // One bad range (or a bad count) and none is taken.
  const auto rejected = [&](PostedRange bad) {
    h.posted_ranges[1] = bad;
    return ReadPostedRanges(h).empty();
  };
  EXPECT_TRUE(rejected({PostedRange::kPio, 0, 0x80}));           // empty
  EXPECT_TRUE(rejected({PostedRange::kPio, 2, 0xffff}));         // leaves the port space
  EXPECT_TRUE(rejected({PostedRange::kMmio, 0x10, ~0ull - 4}));  // overflows
  EXPECT_TRUE(rejected({7, 1, 0x80}));                           // unknown space
  h.posted_ranges[1] = {PostedRange::kPio, 1, 0x80};
  EXPECT_EQ(ReadPostedRanges(h).size(), 2u);
  h.posted_range_count.store(kMaxPostedRanges + 1, std::memory_order_release);
  EXPECT_TRUE(ReadPostedRanges(h).empty());
}

}  // namespace
}  // namespace rehome
