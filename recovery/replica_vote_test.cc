// recovery/replica_vote_test.cc: the vote over replica results, with made-up results.
#include "recovery/replica_vote.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A valid result: read data `data`, one RAM write of `ram` at 0x1000, state `state`.
ReplicaResult Result(uint8_t data, uint8_t ram, uint32_t state) {
  ReplicaResult r;
  r.ok = true;
  r.response = std::make_unique<ExitResponse>();
  r.response->data_len = 1;
  r.response->data[0] = data;
  std::vector<uint8_t> entries;
  const uint8_t bytes[2] = {ram, 0};
  AppendEffect(&entries, EffectType::kRamWrite, 0x1000, bytes);
  r.effects.bytes = entries;
  r.effects.entries = *ParseEffects(r.effects.bytes, 1);
  r.effects.state_crc = state;
  return r;
}

ReplicaResult Failed() {
  ReplicaResult r;
  r.failure = "crash: L1 pid 7 exited";
  return r;
}

Vote Tally(const std::vector<ReplicaResult>& results, size_t max_opinions) {
  std::vector<const ReplicaResult*> ptrs;
  for (const ReplicaResult& r : results) ptrs.push_back(&r);
  return Decide(ptrs, /*quorum=*/2, max_opinions);
}

TEST(ReplicaVote, DualAgreesOnIdenticalResults) {
  std::vector<ReplicaResult> r;
  r.push_back(Result(1, 2, 3));
  r.push_back(Result(1, 2, 3));
  const Vote v = Tally(r, 3);
  EXPECT_EQ(v.kind, Vote::Kind::kAgreed);
  EXPECT_THAT(v.majority, ElementsAre(0, 1));
  EXPECT_TRUE(v.minority.empty());
}

TEST(ReplicaVote, DualDivergenceNeedsAThirdOpinionThatSettlesIt) {
  std::vector<ReplicaResult> r;
  r.push_back(Result(1, 2, 3));
  r.push_back(Result(1, 2, 4));  // another state
  Vote v = Tally(r, 3);
  EXPECT_EQ(v.kind, Vote::Kind::kNeedMore);
  EXPECT_THAT(v.difference, HasSubstr("state"));
  r.push_back(Result(1, 2, 4));
  v = Tally(r, 3);
  EXPECT_EQ(v.kind, Vote::Kind::kAgreed);
  EXPECT_THAT(v.majority, ElementsAre(1, 2));
  EXPECT_THAT(v.minority, ElementsAre(0));
}

TEST(ReplicaVote, NoMajorityAfterTheLastOpinion) {
  std::vector<ReplicaResult> r;
  r.push_back(Result(1, 2, 3));
  r.push_back(Result(9, 2, 3));
  r.push_back(Result(1, 7, 3));
  const Vote v = Tally(r, 3);
  EXPECT_EQ(v.kind, Vote::Kind::kNoMajority);
}

TEST(ReplicaVote, TripleOutvotesTheOddOneAndIgnoresFailures) {
  std::vector<ReplicaResult> r;
  r.push_back(Result(5, 2, 3));  // wrong read data
  r.push_back(Result(1, 2, 3));
  r.push_back(Result(1, 2, 3));
  Vote v = Tally(r, 4);
  EXPECT_EQ(v.kind, Vote::Kind::kAgreed);
  EXPECT_THAT(v.majority, ElementsAre(1, 2));
  EXPECT_THAT(v.minority, ElementsAre(0));
  EXPECT_THAT(v.difference, HasSubstr("read data"));
  std::vector<ReplicaResult> with_crash;
  with_crash.push_back(Failed());
  with_crash.push_back(Result(1, 2, 3));
  with_crash.push_back(Result(1, 2, 3));
  v = Tally(with_crash, 4);
  EXPECT_EQ(v.kind, Vote::Kind::kAgreed);
  EXPECT_TRUE(v.minority.empty());
  std::vector<ReplicaResult> alone;
  alone.push_back(Failed());
  alone.push_back(Result(1, 2, 3));
  EXPECT_EQ(Tally(alone, 3).kind, Vote::Kind::kNeedMore);  // one valid result is never enough
}

TEST(ReplicaVote, EffectsDifferencesAreNamed) {
  ReplicaResult a = Result(1, 2, 3);
  ReplicaResult b = Result(1, 6, 3);  // another byte written to guest RAM
  std::string difference;
  EXPECT_FALSE(SameResult(a, b, &difference));
  EXPECT_THAT(difference, HasSubstr("effects (entry 0: data at 0x1000)"));
  ReplicaResult c = Result(1, 2, 3);
  c.effects.flags = kEffectsMore;
  EXPECT_FALSE(SameResult(a, c, &difference));
  c.effects.flags = 0;
  EXPECT_TRUE(SameResult(a, c, &difference));
  c.response->action = ExitResponse::kFatal;
  EXPECT_FALSE(SameResult(a, c, &difference));
  EXPECT_THAT(difference, HasSubstr("answer (action"));
}

}  // namespace
}  // namespace rehome
