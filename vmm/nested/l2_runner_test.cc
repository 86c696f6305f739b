// vmm/nested/l2_runner_test.cc: the agent's L2 runner on this host's KVM, over memfds laid out
// like L0's shared regions (no nested virtualisation needed): the real test guest runs its
// counter workload as "L2", every exit is committed with L2 parked at the commit, a fault at a
// parked point stops it (as if its L1 had died), and a second runner takes L2 over from the
// last commit in a new VM over the same RAM; the counter oracle must see every report exactly
// once.
#include "vmm/nested/l2_runner.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "state-extract/state_codec.h"
#include "vmm/loader/elf_pvh_loader.h"

namespace rehome {
namespace {

using nested_abi::AgentState;
using nested_abi::Command;

constexpr uint64_t kRam = 64ull << 20;

class RamView final : public GuestMemoryView {
 public:
  explicit RamView(const GuestMemory& ram) : ram_(ram) {}
  uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
    return ram_.HostAddress(gpa, len);
  }

 private:
  const GuestMemory& ram_;
};

template <typename Pred>
bool PollUntil(Pred pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return pred();
}

class L2RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KvmSystem> kvm = KvmSystem::Open();
    if (!kvm.ok()) GTEST_SKIP() << "KVM is not usable: " << kvm.status().message();
    kvm_ = std::make_unique<KvmSystem>(std::move(*kvm));
    control_fd_ = memfd_create("control", MFD_CLOEXEC);
    ASSERT_EQ(ftruncate(control_fd_, nested_abi::kControlRegionSize), 0);
    auto journal =
        DeviceJournal::Create(DeviceJournal::CapacityFor(nested_abi::kJournalRegionSize));
    ASSERT_TRUE(journal.ok());
    journal_ = std::make_unique<DeviceJournal>(std::move(*journal));
    auto ram = GuestMemory::Create(kRam);
    ASSERT_TRUE(ram.ok());
    ram_ = std::make_unique<GuestMemory>(std::move(*ram));
  }
  void TearDown() override {
    if (control_fd_ >= 0) close(control_fd_);
  }

  // L0's part: the control page and the kernel in L2 RAM.
  void PrepareBoot(const std::string& cmdline) {
    void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, control_fd_, 0);
    ASSERT_NE(page, MAP_FAILED);
    auto* control = new (page) nested_abi::ControlPage{};
    control->magic = nested_abi::kControlMagic;
    control->version = nested_abi::kControlVersion;
    control->l1_id = 1;
    RamView view(*ram_);
    const std::vector<MemoryMapEntry> map = DefaultMemoryMap(kRam);
    absl::StatusOr<LoadedKernel> kernel =
        LoadPvhKernelFromFile(REHOME_GUEST_ELF_PATH, view, kRam, cmdline, map);
    ASSERT_TRUE(kernel.ok()) << kernel.status();
    control->boot.l2_ram_size = kRam;
    control->boot.entry32 = kernel->entry32;
    control->boot.start_info = kernel->start_info_gpa;
    control->boot.cpus = 1;
    control->boot.cmdline_len = static_cast<uint32_t>(cmdline.size());
    std::memcpy(control->boot.cmdline, cmdline.data(), cmdline.size());
    munmap(page, 4096);
  }

  // The agent's part: its own mappings of the three regions (as a fresh L1 would have).
  std::unique_ptr<AgentRegions> MapRegions() {
    auto regions = AgentRegions::Map({control_fd_, 0, nested_abi::kControlRegionSize},
                                     {journal_->memfd(), 0, nested_abi::kJournalRegionSize},
                                     {ram_->regions()[0].fd, 0, kRam});
    EXPECT_TRUE(regions.ok()) << regions.status();
    return regions.ok() ? std::move(*regions) : nullptr;
  }

  L2Runner::Config Config(AgentRegions* regions, uint64_t generation, Command* injected) {
    L2Runner::Config config;
    config.regions = regions;
    config.kvm = kvm_.get();
    config.generation = generation;
    config.inject = [injected](Command fault) {
      *injected = fault;
      return true;  // this "L1" dies here
    };
    return config;
  }

  std::unique_ptr<KvmSystem> kvm_;
  int control_fd_ = -1;
  std::unique_ptr<DeviceJournal> journal_;
  std::unique_ptr<GuestMemory> ram_;
};

TEST_F(L2RunnerTest, L2SurvivesItsAgentStoppingAtAParkedPointAndTheOracleSeesEveryReport) {
  constexpr int kReports = 40;
  PrepareBoot("workload=counter steps=400000 report_every=10000 cpus=1");
  std::unique_ptr<AgentRegions> first_regions = MapRegions();
  ASSERT_NE(first_regions, nullptr);
  nested_abi::ControlPage* control = first_regions->control();
  Command injected = Command::kNone;
  auto first = L2Runner::Boot(Config(first_regions.get(), 1, &injected));
  ASSERT_TRUE(first.ok()) << first.status();
  // The standby prepares its L2 VM while the first runs L2 (as a standby agent does before it
  // reports ready); it must not touch L2 until it restores.
  std::unique_ptr<AgentRegions> second_regions = MapRegions();
  ASSERT_NE(second_regions, nullptr);
  auto second = L2Runner::Prepare(Config(second_regions.get(), 2, &injected));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->Start().code(), absl::StatusCode::kFailedPrecondition);  // not set up
  ASSERT_TRUE((*first)->Start().ok());
  auto reports = [&]() -> uint64_t {
    auto payload = journal_->ReadCommitted();
    if (!payload.ok()) return 0;
    auto commit = DecodeNestedCommit(*payload);
    return commit.ok() ? commit->verified_reports : 0;
  };
  ASSERT_TRUE(PollUntil([&] { return reports() >= 3; }, absl::Seconds(60)))
      << "L2 made " << control->l2_exits.load() << " exits";
  (*first)->RequestFault(Command::kCrash);
  ASSERT_TRUE(PollUntil([&] { return (*first)->done(); }, absl::Seconds(30)));
  EXPECT_EQ(injected, Command::kCrash);
  // Stopped at a parked point: the last commit is L2's exact state.
  ASSERT_EQ(control->parked.load(), 1u);
  ASSERT_EQ(control->parked_commit.load(), journal_->commits());
  auto payload = journal_->ReadCommitted();
  ASSERT_TRUE(payload.ok());
  auto committed = DecodeNestedCommit(*payload);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->agent_generation, 1u);
  EXPECT_GT(committed->verified_reports, 0u);
  EXPECT_LT(committed->verified_reports, static_cast<uint64_t>(kReports));
  const uint64_t exits_before = committed->exits;
  first->reset();  // the first "L1" is gone

  // L0 hands the parked state to the standby, which restores L2 into its prepared VM.
  auto state = DecodeVmState(committed->l2_state);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE((*second)->Restore(*state, *committed).ok());
  EXPECT_EQ((*second)->SetUpBoot().code(), absl::StatusCode::kFailedPrecondition);  // once only
  ASSERT_TRUE((*second)->Start().ok());
  ASSERT_TRUE(PollUntil([&] { return (*second)->done(); }, absl::Seconds(120)));
  EXPECT_EQ(static_cast<AgentState>(control->agent_state.load()), AgentState::kFinished)
      << control->message;
  EXPECT_EQ(control->result.action, static_cast<uint32_t>(ExitOutcome::kGuestExit))
      << control->message;
  EXPECT_EQ(control->result.exit_status, 0);
  auto last = DecodeNestedCommit(*journal_->ReadCommitted());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->verified_reports, static_cast<uint64_t>(kReports));
  EXPECT_EQ(last->oracle_violations, 0u);
  EXPECT_EQ(last->agent_generation, 2u);
  EXPECT_GT(last->exits, exits_before);
  // The guest's console came through the ring, published at commits only.
  const std::string console =
      ReadConsoleRing(second_regions->console_ring(), 0, control->console_published.load());
  EXPECT_NE(console.find("counter"), std::string::npos) << console;
}

// The agent dies inside an exit: it handled one of L2's port I/O exits (the oracle counted a
// report, or COM1 took a byte) and completed the instruction, but did not commit. L2 is parked
// at the exit's pre-handling commit; a standby restored from it executes the instruction again,
// and the oracle sees every report exactly once. Three such deaths in one L2 lifetime.
TEST_F(L2RunnerTest, L2SurvivesItsAgentDyingInsideAnExitExactlyOnce) {
  constexpr int kReports = 40;
  constexpr uint64_t kDeaths = 3;
  PrepareBoot("workload=counter steps=400000 report_every=10000 cpus=1");
  auto reports = [&]() -> uint64_t {
    auto payload = journal_->ReadCommitted();
    if (!payload.ok()) return 0;
    auto commit = DecodeNestedCommit(*payload);
    return commit.ok() ? commit->verified_reports : 0;
  };
  std::vector<std::unique_ptr<AgentRegions>> regions;
  regions.push_back(MapRegions());
  ASSERT_NE(regions.back(), nullptr);
  Command injected = Command::kNone;
  auto booted = L2Runner::Boot(Config(regions.back().get(), 1, &injected));
  ASSERT_TRUE(booted.ok()) << booted.status();
  std::unique_ptr<L2Runner> active = std::move(*booted);
  nested_abi::ControlPage* control = regions.back()->control();
  ASSERT_TRUE(active->Start().ok());
  for (uint64_t death = 1; death <= kDeaths; ++death) {
    ASSERT_TRUE(PollUntil([&] { return reports() >= 3 * death; }, absl::Seconds(60)))
        << "L2 made " << control->l2_exits.load() << " exits";
    const uint64_t exits_seen = control->l2_exits.load();
    active->RequestFault(Command::kCrashInExit);
    ASSERT_TRUE(PollUntil([&] { return active->done(); }, absl::Seconds(30)));
    EXPECT_EQ(injected, Command::kCrashInExit);
    injected = Command::kNone;
    // Parked at the pre-handling commit of the exit it died in, which is the last commit.
    ASSERT_EQ(control->parked.load(), 1u);
    ASSERT_EQ(control->parked_commit.load(), journal_->commits());
    auto committed = DecodeNestedCommit(*journal_->ReadCommitted());
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ(committed->agent_generation, death);
    EXPECT_GE(committed->exits, exits_seen);
    EXPECT_LT(committed->verified_reports, static_cast<uint64_t>(kReports));
    active.reset();  // this "L1" is gone

    regions.push_back(MapRegions());
    ASSERT_NE(regions.back(), nullptr);
    auto state = DecodeVmState(committed->l2_state);
    ASSERT_TRUE(state.ok()) << state.status();
    auto next =
        L2Runner::TakeOver(Config(regions.back().get(), death + 1, &injected), *state, *committed);
    ASSERT_TRUE(next.ok()) << next.status();
    active = std::move(*next);
    ASSERT_TRUE(active->Start().ok());
  }
  ASSERT_TRUE(PollUntil([&] { return active->done(); }, absl::Seconds(120)));
  EXPECT_EQ(static_cast<AgentState>(control->agent_state.load()), AgentState::kFinished)
      << control->message;
  EXPECT_EQ(control->result.exit_status, 0) << control->message;
  auto last = DecodeNestedCommit(*journal_->ReadCommitted());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->verified_reports, static_cast<uint64_t>(kReports));
  EXPECT_EQ(last->oracle_violations, 0u);
  EXPECT_EQ(last->agent_generation, kDeaths + 1);
  // Every console line whole: a byte COM1 took in a dead agent is written once, by its successor.
  const std::string console =
      ReadConsoleRing(regions.back()->console_ring(), 0, control->console_published.load());
  size_t start = 0, lines = 0;
  while (start < console.size()) {
    size_t end = console.find('\n', start);
    if (end == std::string::npos) end = console.size();
    const std::string line = console.substr(start, end - start);
    EXPECT_EQ(line.rfind("rehome-guest: ", 0), 0u) << "line " << lines << ": " << line;
    ++lines;
    start = end + 1;
  }
  EXPECT_GT(lines, 0u);
  EXPECT_NE(console.find("counter"), std::string::npos) << console;
}

TEST_F(L2RunnerTest, ARunnerRefusesMoreThanOneVcpu) {
  PrepareBoot("workload=idle cpus=2");
  std::unique_ptr<AgentRegions> regions = MapRegions();
  ASSERT_NE(regions, nullptr);
  regions->control()->boot.cpus = 2;
  Command injected = Command::kNone;
  auto runner = L2Runner::Boot(Config(regions.get(), 1, &injected));
  ASSERT_FALSE(runner.ok());
  EXPECT_NE(runner.status().message().find("1 vCPU"), std::string::npos);
}

}  // namespace
}  // namespace rehome
