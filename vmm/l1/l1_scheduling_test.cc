// vmm/l1/l1_scheduling_test.cc: L1Scheduling on a real thread. An exit thread that drops to
// SCHED_OTHER to spin gets nice -10 and a 100 us time slice (so that, woken by a device
// notification, it preempts the vCPU thread at once: docs/failover.md, "Scheduling"), and goes
// back to SCHED_FIFO before it sleeps; a confined L1 (seccomp) may set that slice itself.
// Slices are read from /proc (se.slice); on kernels without per-task slices (before Linux 6.12,
// found by a probe independent of L1Scheduling) the slice checks skip with that reason.
#include "vmm/l1/l1_scheduling.h"

#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kvm-l0/exit_channel.h"
#include "vmm/l1/l1_sandbox.h"

namespace rehome {
namespace {

constexpr int64_t kShortSliceNs = 100000;

// se.slice of `tid`'s scheduling entity in ns; nullopt when the kernel does not show it.
std::optional<int64_t> SliceOf(const std::string& sched_path) {
  std::ifstream in(sched_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("se.slice", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    return std::stoll(line.substr(colon + 1));
  }
  return std::nullopt;
}

std::optional<int64_t> OwnSlice() { return SliceOf("/proc/thread-self/sched"); }

// Whether this kernel keeps a per-task slice (Linux 6.12+): a probe thread asks for 200 us
// itself, without L1Scheduling, and reads it back. Without it, the slice checks below skip.
bool KernelHasTaskSlices() {
  bool has = false;
  std::thread probe([&has] {
    struct {
      uint32_t size = 48, policy = SCHED_OTHER;
      uint64_t flags = 0;
      int32_t nice = 0;
      uint32_t priority = 0;
      uint64_t runtime = 200000, deadline = 0, period = 0;
    } attr;
    errno = 0;
    attr.nice = getpriority(PRIO_PROCESS, 0);
    has = syscall(SYS_sched_setattr, 0, &attr, 0) == 0 && OwnSlice() == 200000;
  });
  probe.join();
  return has;
}

// What a thread saw of its own scheduling at each step.
struct Seen {
  int policy_after_start = -1;
  int policy_while_spinning = -1;
  int nice_while_spinning = 0;
  std::optional<int64_t> slice_while_spinning;
  uint32_t published_at_sleep = 0;
  int policy_asleep = -1;
};

Seen RunOnAThread(bool realtime) {
  Seen seen;
  std::thread t([&seen, realtime] {
    L1Scheduling scheduling(realtime, /*l0_raises=*/false, /*vcpus=*/1);
    scheduling.Start();
    seen.policy_after_start = sched_getscheduler(0);
    scheduling.BeforeSpin();
    seen.policy_while_spinning = sched_getscheduler(0);
    seen.nice_while_spinning = getpriority(PRIO_PROCESS, 0);
    seen.slice_while_spinning = OwnSlice();
    seen.published_at_sleep = scheduling.BeforeSleep();
    seen.policy_asleep = sched_getscheduler(0);
  });
  t.join();
  return seen;
}

TEST(L1SchedulingTest, SpinningIsNiceMinusTenWithAShortSliceAndSleepingIsFifo) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (SCHED_FIFO)";
  const Seen seen = RunOnAThread(/*realtime=*/true);
  EXPECT_EQ(seen.policy_after_start, SCHED_FIFO);
  EXPECT_EQ(seen.policy_while_spinning, SCHED_OTHER);
  EXPECT_EQ(seen.nice_while_spinning, -10);
  EXPECT_EQ(seen.published_at_sleep, kL1Asleep);
  EXPECT_EQ(seen.policy_asleep, SCHED_FIFO);
  if (!KernelHasTaskSlices()) GTEST_SKIP() << "this kernel has no per-task time slices (6.12+)";
  EXPECT_EQ(seen.slice_while_spinning, kShortSliceNs);
}

TEST(L1SchedulingTest, WithoutRealTimeItRunsAtNiceMinusTenWithTheShortSlice) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (nice -10)";
  const Seen seen = RunOnAThread(/*realtime=*/false);
  EXPECT_EQ(seen.policy_after_start, SCHED_OTHER);
  EXPECT_EQ(seen.nice_while_spinning, -10);
  EXPECT_EQ(seen.published_at_sleep, kL1Asleep);
  EXPECT_EQ(seen.policy_asleep, SCHED_OTHER);  // it never was real-time
  if (!KernelHasTaskSlices()) GTEST_SKIP() << "this kernel has no per-task time slices (6.12+)";
  EXPECT_EQ(seen.slice_while_spinning, kShortSliceNs);
}

// A confined L1 (seccomp allow-list, no privileges it could use to raise itself) still sets
// its slice: the parent reads it from /proc while the child waits on a pipe.
TEST(L1SchedulingTest, AConfinedL1SetsItsOwnSlice) {
  int to_child[2];
  int to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ExitChannelHeader header{};
    L1SandboxOptions options;
    options.level = L1SandboxLevel::kBestEffort;
    options.realtime = true;
    if (!ApplyL1Sandbox(options, header).ok()) _exit(3);
    L1Scheduling scheduling(/*realtime=*/true, /*l0_raises=*/true, /*vcpus=*/1);
    scheduling.Start();
    scheduling.BeforeSpin();
    const char ready = sched_getscheduler(0) == SCHED_OTHER ? 'o' : 'f';
    if (write(to_parent[1], &ready, 1) != 1) _exit(4);
    char go = 0;
    if (read(to_child[0], &go, 1) != 1) _exit(5);
    _exit(0);
  }
  close(to_child[0]);
  close(to_parent[1]);  // a child that dies leaves the read below at end of file
  char ready = 0;
  const ssize_t got = read(to_parent[0], &ready, 1);
  const std::optional<int64_t> slice = SliceOf("/proc/" + std::to_string(pid) + "/sched");
  const char go = 'g';
  if (got == 1) EXPECT_EQ(write(to_child[1], &go, 1), 1);
  close(to_child[1]);
  close(to_parent[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the confined child died: a denied system call?";
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(ready, 'o');  // SCHED_OTHER while it spins
  if (!KernelHasTaskSlices()) GTEST_SKIP() << "this kernel has no per-task time slices (6.12+)";
  EXPECT_EQ(slice, kShortSliceNs);
}

// MoveAwayFrom restricts the thread to the other CPUs; AllowEveryCpu gives it back every CPU it
// started with (a replica whose vCPU thread waits for it in L0), at most once per 10 ms like the
// move, and only after a move.
TEST(L1SchedulingTest, AllowEveryCpuUndoesAMoveAwayFromTheVcpusCpu) {
  cpu_set_t start;
  ASSERT_EQ(sched_getaffinity(0, sizeof(start), &start), 0);
  if (CPU_COUNT(&start) < 2) GTEST_SKIP() << "one CPU: there is no other CPU to move to";
  std::thread t([&start] {
    L1Scheduling scheduling(/*realtime=*/false, /*l0_raises=*/false, /*vcpus=*/1);
    EXPECT_FALSE(scheduling.AllowEveryCpu());  // never moved: nothing to undo
    const int cpu = sched_getcpu();
    const absl::Time before_move = absl::Now();
    ASSERT_TRUE(scheduling.MoveAwayFrom(cpu));
    cpu_set_t moved;
    ASSERT_EQ(sched_getaffinity(0, sizeof(moved), &moved), 0);
    EXPECT_FALSE(CPU_ISSET(cpu, &moved));
    EXPECT_EQ(CPU_COUNT(&moved), CPU_COUNT(&start) - 1);
    // Not within 10 ms of the move (on a loaded host this thread may itself be off a CPU that
    // long: then the undo may come at once).
    bool allowed = scheduling.AllowEveryCpu();
    if (allowed) EXPECT_GE(absl::Now() - before_move, absl::Milliseconds(10));
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (!allowed && absl::Now() < deadline) allowed = scheduling.AllowEveryCpu();
    ASSERT_TRUE(allowed);
    cpu_set_t back;
    ASSERT_EQ(sched_getaffinity(0, sizeof(back), &back), 0);
    EXPECT_TRUE(CPU_EQUAL(&back, &start));
    EXPECT_FALSE(scheduling.AllowEveryCpu());  // nothing left to undo
  });
  t.join();
}

}  // namespace
}  // namespace rehome
