// kvm-l0/exit_channel_test.cc: channel creation/attachment (as an L1 would, from the fds) and
// response validation: everything an L1 writes is checked before L0 uses it.
#include "kvm-l0/exit_channel.h"

#include <unistd.h>

#include <cstring>
#include <memory>

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

}  // namespace
}  // namespace rehome
