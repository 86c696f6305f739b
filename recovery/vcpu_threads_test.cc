// recovery/vcpu_threads_test.cc: VcpuThreads with real threads pinned to CPUs: the CPUs away
// from the noted threads, nothing when none was noted or every CPU hosts one, a thread that
// ended is forgotten; CpuOfThread against sched_getcpu.
#include "recovery/vcpu_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rehome {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// A thread pinned to `cpu` that notes itself as vCPU `vcpu` and lives until the object dies.
class PinnedVcpuThread {
 public:
  PinnedVcpuThread(VcpuThreads& threads, uint32_t vcpu, int cpu)
      : thread_([&threads, vcpu, cpu, this] {
          cpu_set_t set;
          CPU_ZERO(&set);
          CPU_SET(cpu, &set);
          pinned_ = sched_setaffinity(0, sizeof(set), &set) == 0 && sched_getcpu() == cpu;
          threads.Note(vcpu);
          noted_.Notify();
          end_.WaitForNotification();
        }) {
    noted_.WaitForNotification();
  }
  ~PinnedVcpuThread() {
    end_.Notify();
    thread_.join();
  }
  bool pinned() const { return pinned_; }

 private:
  bool pinned_ = false;
  absl::Notification noted_;
  absl::Notification end_;
  std::thread thread_;
};

TEST(VcpuThreadsTest, NothingIsAvoidedBeforeAVcpuThreadWasNoted) {
  VcpuThreads threads;
  EXPECT_THAT(threads.CpusAwayFromVcpus(), IsEmpty());
}

TEST(VcpuThreadsTest, TheCpusOfTheVcpuThreadsAreAvoided) {
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs, this process may use " << cpus.size();
  VcpuThreads threads;
  {
    PinnedVcpuThread vcpu0(threads, 0, cpus[0]);
    ASSERT_TRUE(vcpu0.pinned());
    const std::vector<int> away = threads.CpusAwayFromVcpus();
    EXPECT_THAT(away, Not(Contains(cpus[0])));
    EXPECT_THAT(away, Contains(cpus[1]));
    EXPECT_EQ(away.size(), cpus.size() - 1);
    {
      // Every CPU hosts a vCPU thread: nowhere is away from them.
      std::vector<std::unique_ptr<PinnedVcpuThread>> more;
      for (size_t i = 1; i < cpus.size(); ++i) {
        more.push_back(std::make_unique<PinnedVcpuThread>(threads, i, cpus[i]));
      }
      EXPECT_THAT(threads.CpusAwayFromVcpus(), IsEmpty());
    }
  }
  // Every noted thread ended: none is avoided.
  EXPECT_THAT(threads.CpusAwayFromVcpus(), IsEmpty());
}

TEST(VcpuThreadsTest, TheMaskHasTheCpusOfTheVcpuThreads) {
  VcpuThreads threads;
  EXPECT_EQ(threads.CpuMask(), 0u);  // none noted: unknown
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.back() >= 32)
    GTEST_SKIP() << "the mask covers CPUs 0..31, this process has " << cpus.back();
  PinnedVcpuThread vcpu0(threads, 0, cpus.back());
  ASSERT_TRUE(vcpu0.pinned());
  EXPECT_EQ(threads.CpuMask(), 1u << cpus.back());
  if (cpus.size() < 2) return;
  PinnedVcpuThread vcpu1(threads, 1, cpus.front());
  ASSERT_TRUE(vcpu1.pinned());
  EXPECT_EQ(threads.CpuMask(), (1u << cpus.back()) | (1u << cpus.front()));
}

TEST(VcpuThreadsTest, CpuOfThreadReadsWhereAThreadRuns) {
  const std::vector<int> cpus = AllowedCpus();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus.back(), &set);
  std::optional<int> seen;
  std::thread t([&] {
    if (sched_setaffinity(0, sizeof(set), &set) == 0) seen = CpuOfThread(gettid());
  });
  t.join();
  EXPECT_EQ(seen, cpus.back());
  EXPECT_EQ(CpuOfThread(0), std::nullopt);  // no such thread
}

}  // namespace
}  // namespace rehome
