// vmm/counter_oracle_test.cc: CounterOracle against reports computed with the real chain.
#include "vmm/counter_oracle.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::HasSubstr;

// Plays one guest vCPU: runs the chain and produces its reports.
class FakeVcpu {
 public:
  FakeVcpu(uint32_t vcpu, uint64_t seed)
      : vcpu_(vcpu), chain_(std::make_unique<counter::ChainState>()) {
    counter::Init(chain_.get(), vcpu, seed);
  }
  abi::CounterReport RunTo(uint64_t step, bool final = false) {
    while (chain_->step < step) counter::Step(chain_.get());
    abi::CounterReport r{};
    r.magic = abi::kCounterReportMagic;
    r.vcpu = vcpu_;
    r.step = step;
    counter::Digest(chain_.get(), r.digest);
    r.flags = final ? abi::kCounterReportFinal : 0;
    return r;
  }

 private:
  uint32_t vcpu_;
  std::unique_ptr<counter::ChainState> chain_;
};

std::unique_ptr<CounterOracle> MakeOracle(uint32_t cpus, uint64_t steps, uint64_t every,
                                          uint64_t seed = 7) {
  auto oracle = CounterOracle::Create({cpus, seed, steps, every});
  EXPECT_TRUE(oracle.ok()) << oracle.status();
  return std::move(oracle).value();
}

TEST(CounterOracle, RejectsBadConfig) {
  EXPECT_EQ(CounterOracle::Create({0, 1, 0, 100}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CounterOracle::Create({2, 1, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CounterOracle::Create({CounterOracle::kMaxCpus + 1, 1, 0, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CounterOracle, VerifiesACompleteRunIncludingAShortLastInterval) {
  auto oracle = MakeOracle(2, 2500, 1000);
  FakeVcpu v0(0, 7), v1(1, 7);
  for (uint64_t step : {1000, 2000}) {
    EXPECT_TRUE(oracle->OnReport(v0.RunTo(step)));
    EXPECT_TRUE(oracle->OnReport(v1.RunTo(step)));
  }
  EXPECT_FALSE(oracle->complete());
  EXPECT_EQ(oracle->CheckCompleteAtExit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(oracle->CheckCompleteAtExit().message(), HasSubstr("vcpu 0 exited without"));
  EXPECT_TRUE(oracle->OnReport(v0.RunTo(2500, true)));
  EXPECT_TRUE(oracle->OnReport(v1.RunTo(2500, true)));
  EXPECT_TRUE(oracle->complete());
  EXPECT_TRUE(oracle->CheckCompleteAtExit().ok());
  EXPECT_EQ(oracle->verified_reports(), 6u);
  EXPECT_EQ(oracle->verified_steps(1), 2500u);
  EXPECT_EQ(oracle->verified_steps(9), 0u);
  EXPECT_FALSE(oracle->violation().has_value());
  EXPECT_EQ(oracle->Summary(),
            "counter: 2 vCPUs, 6 reports verified, steps 5000/5000, complete, no violations");
}

TEST(CounterOracle, UnboundedRunIsNeverCompleteButExitsCleanly) {
  auto oracle = MakeOracle(1, 0, 100);
  FakeVcpu v(0, 7);
  for (uint64_t s = 100; s <= 1000; s += 100) EXPECT_TRUE(oracle->OnReport(v.RunTo(s)));
  EXPECT_FALSE(oracle->complete());
  EXPECT_TRUE(oracle->CheckCompleteAtExit().ok());
  EXPECT_TRUE(oracle->OnReport(v.RunTo(1100)));
  EXPECT_FALSE(oracle->OnReport(v.RunTo(1200, true)));  // no final in an unbounded run
  EXPECT_THAT(*oracle->violation(), HasSubstr("final flag on step 1200, but steps=0"));
}

TEST(CounterOracle, LostReportIsAViolation) {
  auto oracle = MakeOracle(2, 0, 100000);
  FakeVcpu v(1, 7);
  EXPECT_TRUE(oracle->OnReport(v.RunTo(100000)));
  EXPECT_TRUE(oracle->OnReport(v.RunTo(200000)));
  EXPECT_FALSE(oracle->OnReport(v.RunTo(400000)));
  EXPECT_EQ(*oracle->violation(),
            "vcpu 1: expected step 300000, got 400000 (lost or skipped report)");
  EXPECT_EQ(oracle->verified_steps(1), 200000u);
  EXPECT_EQ(oracle->CheckCompleteAtExit().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CounterOracle, RepeatedReportIsAViolationAndOnlyTheFirstIsKept) {
  auto oracle = MakeOracle(1, 0, 10);
  FakeVcpu v(0, 7);
  const abi::CounterReport r = v.RunTo(10);
  EXPECT_TRUE(oracle->OnReport(r));
  EXPECT_FALSE(oracle->OnReport(r));
  EXPECT_FALSE(oracle->OnReport(v.RunTo(25)));  // skipped ahead
  EXPECT_EQ(*oracle->violation(), "vcpu 0: expected step 20, got 10 (repeated report)");
  EXPECT_EQ(oracle->violation_count(), 2u);
  EXPECT_THAT(oracle->Summary(), HasSubstr("2 violation(s), first: vcpu 0: expected step 20"));
}

TEST(CounterOracle, OffCadenceReportIsAViolation) {
  auto oracle = MakeOracle(1, 0, 10);
  FakeVcpu v(0, 7);
  EXPECT_FALSE(oracle->OnReport(v.RunTo(5)));
  EXPECT_THAT(*oracle->violation(), HasSubstr("(report out of cadence)"));
}

TEST(CounterOracle, CorruptedDigestIsAViolation) {
  auto oracle = MakeOracle(1, 0, 50);
  FakeVcpu v(0, 7);
  abi::CounterReport r = v.RunTo(50);
  r.digest[2] ^= 1;
  EXPECT_FALSE(oracle->OnReport(r));
  EXPECT_THAT(*oracle->violation(), HasSubstr("vcpu 0: digest mismatch at step 50"));
  // A chain from another seed is corrupted too.
  auto other = MakeOracle(1, 0, 50, /*seed=*/8);
  EXPECT_FALSE(other->OnReport(FakeVcpu(0, 7).RunTo(50)));
}

TEST(CounterOracle, BadMagicAndVcpuAreViolations) {
  auto oracle = MakeOracle(2, 0, 50);
  abi::CounterReport r = FakeVcpu(0, 7).RunTo(50);
  r.magic = 0xdeadbeef;
  EXPECT_FALSE(oracle->OnReport(r));
  EXPECT_THAT(*oracle->violation(), HasSubstr("bad magic 0xdeadbeef"));
  auto oracle2 = MakeOracle(2, 0, 50);
  EXPECT_FALSE(oracle2->OnReport(FakeVcpu(2, 7).RunTo(50)));
  EXPECT_EQ(*oracle2->violation(), "report from vcpu 2, but the guest has 2 vCPUs");
}

TEST(CounterOracle, FinalFlagRulesAndReportsAfterFinal) {
  auto oracle = MakeOracle(1, 20, 10);
  FakeVcpu v(0, 7);
  EXPECT_FALSE(oracle->OnReport(v.RunTo(10, true)));  // final too early
  EXPECT_THAT(*oracle->violation(), HasSubstr("final flag on step 10, but steps=20"));
  auto oracle2 = MakeOracle(1, 20, 10);
  FakeVcpu w(0, 7);
  EXPECT_TRUE(oracle2->OnReport(w.RunTo(10)));
  EXPECT_FALSE(oracle2->OnReport(w.RunTo(20)));  // last step without the flag
  EXPECT_THAT(*oracle2->violation(), HasSubstr("lacks the final flag"));
  auto oracle3 = MakeOracle(1, 20, 10);
  FakeVcpu x(0, 7);
  EXPECT_TRUE(oracle3->OnReport(x.RunTo(10)));
  EXPECT_TRUE(oracle3->OnReport(x.RunTo(20, true)));
  EXPECT_FALSE(oracle3->OnReport(x.RunTo(30)));
  EXPECT_THAT(*oracle3->violation(), HasSubstr("after its final report"));
}

TEST(CounterOracle, ExternalViolationsAreRecorded) {
  auto oracle = MakeOracle(1, 0, 10);
  oracle->RecordViolation("counter report at GPA 0x1 is bad");
  EXPECT_EQ(*oracle->violation(), "counter report at GPA 0x1 is bad");
  EXPECT_THAT(oracle->CheckCompleteAtExit().message(), HasSubstr("GPA 0x1"));
}

TEST(CounterOracle, ConcurrentReportsFromSeveralVcpusAreAllVerified) {
  constexpr uint32_t kCpus = 4;
  auto oracle = MakeOracle(kCpus, 20000, 500);
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < kCpus; ++c) {
    threads.emplace_back([&oracle, c] {
      FakeVcpu v(c, 7);
      for (uint64_t s = 500; s <= 20000; s += 500) oracle->OnReport(v.RunTo(s, s == 20000));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(oracle->violation().has_value()) << *oracle->violation();
  EXPECT_EQ(oracle->verified_reports(), kCpus * 40u);
  EXPECT_TRUE(oracle->complete());
}

TEST(CounterOracle, SaveEncodeDecodeRestoreContinuesVerification) {
  auto oracle = MakeOracle(2, 300, 100);
  FakeVcpu v0(0, 7), v1(1, 7);
  ASSERT_TRUE(oracle->OnReport(v0.RunTo(100)));
  ASSERT_TRUE(oracle->OnReport(v0.RunTo(200)));
  ASSERT_TRUE(oracle->OnReport(v1.RunTo(100)));
  oracle->RecordViolation("earlier problem");
  const std::vector<uint8_t> bytes = CounterOracle::EncodeState(oracle->SaveState());
  auto decoded = CounterOracle::DecodeState(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(CounterOracle::EncodeState(*decoded), bytes);

  auto fresh = MakeOracle(2, 300, 100);
  ASSERT_TRUE(fresh->RestoreState(*decoded).ok());
  EXPECT_EQ(fresh->verified_reports(), 3u);
  EXPECT_EQ(fresh->verified_steps(0), 200u);
  EXPECT_EQ(*fresh->violation(), "earlier problem");
  EXPECT_TRUE(fresh->OnReport(v0.RunTo(300, true)));
  EXPECT_TRUE(fresh->OnReport(v1.RunTo(200)));
  EXPECT_FALSE(fresh->OnReport(v1.RunTo(200)));  // still knows what came before
  EXPECT_EQ(fresh->violation_count(), 2u);
}

TEST(CounterOracle, RestoreRejectsOtherConfigsAndDecodeRejectsDamage) {
  auto oracle = MakeOracle(1, 300, 100);
  const CounterOracle::State state = oracle->SaveState();
  auto other = MakeOracle(1, 300, 50);
  EXPECT_EQ(other->RestoreState(state).code(), absl::StatusCode::kInvalidArgument);

  CounterOracle::State bad = state;
  bad.vcpus[0].last_step = 5;  // chain is at step 0
  EXPECT_EQ(oracle->RestoreState(bad).code(), absl::StatusCode::kInvalidArgument);

  std::vector<uint8_t> bytes = CounterOracle::EncodeState(state);
  for (size_t len : {size_t{0}, size_t{1}, size_t{20}, bytes.size() - 1}) {
    auto d = CounterOracle::DecodeState(std::span(bytes).first(len));
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << len;
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_THAT(CounterOracle::DecodeState(longer).status().message(), HasSubstr("trailing"));
  std::vector<uint8_t> version = bytes;
  version[0] = 9;
  EXPECT_THAT(CounterOracle::DecodeState(version).status().message(),
              HasSubstr("unsupported version 9"));
}

}  // namespace
}  // namespace rehome
