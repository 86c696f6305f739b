// bench/injector/injector_test.cc: every fault type of the injector against small child
// processes of this test, checking from outside the injector that the state really changed
// (a register the child itself observes, bytes read back through /proc/PID/mem and through
// L0's own mapping of shared memory, the process state), and the trigger's rules.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "bench/injector/fault_injector.h"
#include "bench/injector/process_maps.h"
#include "gtest/gtest.h"
#include "tests/poll_until.h"

namespace rehome::inject {
namespace {

constexpr uint64_t kSentinel = 0x1234;

// Spins with kSentinel in r12 (and sets *in_loop) until r12 changes, then reports the value it
// saw on `report_fd` and exits.
[[gnu::noinline]] void SpinOnR12(int report_fd, volatile uint32_t* in_loop) {
  uint64_t seen = 0;
  asm volatile(
      "mov %2, %%r12\n"
      "1: movl $1, (%1)\n"
      "cmp %2, %%r12\n"
      "je 1b\n"
      "mov %%r12, %0\n"
      : "=r"(seen)
      : "r"(in_loop), "i"(kSentinel)
      : "r12", "cc", "memory");
  (void)!write(report_fd, &seen, sizeof(seen));
  _exit(0);
}

// A child process of this test. `before_spin` runs in the child first (e.g. a blocking read).
class Child final {
 public:
  explicit Child(const std::function<void()>& before_spin = {}) {
    in_loop_ = static_cast<volatile uint32_t*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    report_.Reset(fds[0]);
    pid_ = fork();
    if (pid_ == 0) {
      // A fault must kill the child as it kills an L1: a sanitizer's SIGSEGV handler (ASan
      // builds) would turn the signal into an exit status.
      signal(SIGSEGV, SIG_DFL);
      if (before_spin) before_spin();
      SpinOnR12(fds[1], in_loop_);
    }
    close(fds[1]);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    munmap(const_cast<uint32_t*>(in_loop_), 4096);
  }
  pid_t pid() const { return pid_; }
  bool WaitInLoop() {
    return testing::PollUntil([&] { return *in_loop_ != 0; }, absl::Seconds(10));
  }
  // The r12 value the child reported, or nullopt if it reported nothing within the deadline.
  std::optional<uint64_t> ReportedR12() {
    pollfd pfd{report_.get(), POLLIN, 0};
    if (poll(&pfd, 1, 10000) != 1) return std::nullopt;
    uint64_t seen = 0;
    if (read(report_.get(), &seen, sizeof(seen)) != sizeof(seen)) return std::nullopt;
    return seen;
  }
  // Reaps the child; its wait status.
  int Reap() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  // Whether the child is blocked in read (syscall 0), within a deadline.
  bool WaitInRead() const {
    return testing::PollUntil(
        [&] {
          std::ifstream in("/proc/" + std::to_string(pid_) + "/syscall");
          std::string nr;
          in >> nr;
          return nr == "0";
        },
        absl::Seconds(10));
  }
  char State() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = all.rfind(')');
    return paren == std::string::npos || paren + 2 >= all.size() ? '?' : all[paren + 2];
  }

 private:
  pid_t pid_ = -1;
  UniqueFd report_;
  volatile uint32_t* in_loop_ = nullptr;
};

int TracerPid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
  }
  return 0;
}

InjectionPlan Plan(FaultType type, uint64_t seed = 1) {
  InjectionPlan plan;
  plan.type = type;
  plan.seed = seed;
  return plan;
}

TEST(Injector, RegisterFlipReachesTheThreadAndNamesItsFunction) {
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  InjectionPlan plan = Plan(FaultType::kRegister);
  plan.register_name = "r12";
  plan.bit = 5;
  absl::StatusOr<InjectionRecord> record = Inject(child.pid(), child.pid(), plan);
  ASSERT_TRUE(record.ok()) << record.status();
  ASSERT_TRUE(record->injected) << record->note;
  EXPECT_EQ(record->target, "r12");
  EXPECT_EQ(record->old_value, kSentinel);
  EXPECT_EQ(record->new_value, kSentinel ^ (1u << 5));
  // The child itself saw the changed register.
  EXPECT_EQ(child.ReportedR12(), kSentinel ^ (1u << 5));
  EXPECT_NE(record->where.function.find("SpinOnR12"), std::string::npos) << record->where.function;
  EXPECT_NE(record->where.module.find("injector_test"), std::string::npos) << record->where.module;
}

TEST(Injector, RandomRegisterFlipChangesExactlyOneBit) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Child child;
    ASSERT_TRUE(child.WaitInLoop());
    absl::StatusOr<InjectionRecord> record =
        Inject(child.pid(), child.pid(), Plan(FaultType::kRegister, seed));
    ASSERT_TRUE(record.ok()) << record.status();
    ASSERT_TRUE(record->injected);
    ASSERT_GE(record->bit, 0);
    if (record->note.empty()) {
      EXPECT_EQ(record->old_value ^ record->new_value, 1ull << record->bit) << record->target;
    } else {
      EXPECT_EQ(record->target, "rflags") << record->note;  // only RFLAGS bits can be masked
    }
  }
}

TEST(Injector, SameSeedDrawsTheSameFault) {
  std::string first_target;
  int first_bit = -1;
  for (int run = 0; run < 2; ++run) {
    Child child;
    ASSERT_TRUE(child.WaitInLoop());
    absl::StatusOr<InjectionRecord> record =
        Inject(child.pid(), child.pid(), Plan(FaultType::kRegister, 42));
    ASSERT_TRUE(record.ok() && record->injected);
    if (run == 0) {
      first_target = record->target;
      first_bit = record->bit;
    } else {
      EXPECT_EQ(record->target, first_target);
      EXPECT_EQ(record->bit, first_bit);
    }
  }
}

TEST(Injector, FailStopSetsRipToZeroAndTheThreadFaults) {
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  absl::StatusOr<InjectionRecord> record =
      Inject(child.pid(), child.pid(), Plan(FaultType::kFailStop));
  ASSERT_TRUE(record.ok() && record->injected);
  EXPECT_EQ(record->target, "rip");
  const int status = child.Reap();
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
}

TEST(Injector, CodeFlipChangesOnlyTheTargetsPrivateCopy) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Child child;
    ASSERT_TRUE(child.WaitInLoop());
    absl::StatusOr<InjectionRecord> record =
        Inject(child.pid(), child.pid(), Plan(FaultType::kCode, seed));
    ASSERT_TRUE(record.ok() && record->injected) << record.status();
    EXPECT_GE(record->address, record->rip);
    EXPECT_LT(record->address, record->rip + 15);
    EXPECT_EQ(record->old_value ^ record->new_value, 1u << record->bit);
    // This process runs the same code at the same address (fork): its copy is untouched.
    EXPECT_EQ(*reinterpret_cast<const uint8_t*>(record->address), record->old_value);
  }
}

TEST(Injector, MemoryFlipLandsInResidentPrivateData) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Child child;
    ASSERT_TRUE(child.WaitInLoop());
    absl::StatusOr<InjectionRecord> record =
        Inject(child.pid(), child.pid(), Plan(FaultType::kMemory, seed));
    ASSERT_TRUE(record.ok() && record->injected) << record.status();
    absl::StatusOr<std::vector<MapRegion>> maps = ReadMaps(child.pid());
    ASSERT_TRUE(maps.ok());
    const MapRegion* region = FindRegion(*maps, record->address);
    ASSERT_NE(region, nullptr);
    EXPECT_TRUE(IsPrivateData(*region)) << region->perms << " " << region->path;
    EXPECT_EQ(record->old_value ^ record->new_value, 1u << record->bit);
    // Read back independently (the child spins without touching memory).
    absl::StatusOr<uint8_t> now = ReadByte(child.pid(), record->address);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(*now, record->new_value);
  }
}

TEST(Injector, SharedMemoryFlipIsSeenThroughTheOtherMappingButNeverInGuestRam) {
  constexpr size_t kChannel = 64 << 10, kRam = 1 << 20;
  UniqueFd channel_fd(memfd_create("rehome-exit-channel", MFD_CLOEXEC));
  UniqueFd ram_fd(memfd_create("rehome-ram-low", MFD_CLOEXEC));
  ASSERT_EQ(ftruncate(channel_fd.get(), kChannel), 0);
  ASSERT_EQ(ftruncate(ram_fd.get(), kRam), 0);
  auto* channel = static_cast<uint8_t*>(
      mmap(nullptr, kChannel, PROT_READ | PROT_WRITE, MAP_SHARED, channel_fd.get(), 0));
  auto* ram = static_cast<uint8_t*>(
      mmap(nullptr, kRam, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd.get(), 0));
  std::memset(channel, 0x11, kChannel);
  std::memset(ram, 0x22, kRam);
  {
    Child child;  // inherits both shared mappings
    ASSERT_TRUE(child.WaitInLoop());
    InjectionPlan plan = Plan(FaultType::kMemoryShared, 9);
    absl::StatusOr<InjectionRecord> record = Inject(child.pid(), child.pid(), plan);
    ASSERT_TRUE(record.ok() && record->injected) << record.status();
    EXPECT_NE(record->region.find("rehome-exit-channel"), std::string::npos) << record->region;
    ASSERT_LT(record->region_offset, kChannel);
    EXPECT_EQ(record->old_value, 0x11);
    EXPECT_EQ(channel[record->region_offset], 0x11 ^ (1u << record->bit));
  }
  for (size_t i = 0; i < kRam; ++i) ASSERT_EQ(ram[i], 0x22) << i;
  munmap(channel, kChannel);
  munmap(ram, kRam);
}

TEST(Injector, HangStopsTheWholeProcess) {
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  absl::StatusOr<InjectionRecord> record = Inject(child.pid(), child.pid(), Plan(FaultType::kHang));
  ASSERT_TRUE(record.ok() && record->injected);
  EXPECT_TRUE(testing::PollUntil([&] { return child.State() == 'T'; }, absl::Seconds(10)));
}

TEST(Injector, LivelockSpinsForeverAtTheInstruction) {
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  absl::StatusOr<InjectionRecord> record =
      Inject(child.pid(), child.pid(), Plan(FaultType::kLivelock));
  ASSERT_TRUE(record.ok() && record->injected);
  absl::StatusOr<uint8_t> b0 = ReadByte(child.pid(), record->rip);
  absl::StatusOr<uint8_t> b1 = ReadByte(child.pid(), record->rip + 1);
  ASSERT_TRUE(b0.ok() && b1.ok());
  EXPECT_EQ(*b0, 0xeb);
  EXPECT_EQ(*b1, 0xfe);
  EXPECT_EQ(child.State(), 'R');  // spinning, not stopped or dead
}

TEST(Injector, TriggerWaitsUntilASleepingThreadHasWork) {
  int wake[2];
  ASSERT_EQ(pipe(wake), 0);
  Child child([&] {
    close(wake[1]);
    char byte;
    (void)!read(wake[0], &byte, 1);  // asleep in a system call until the test writes
  });
  close(wake[0]);
  // The child is blocked in read (syscall 0) before the injector starts.
  ASSERT_TRUE(child.WaitInRead());
  std::future<absl::StatusOr<InjectionRecord>> injection = std::async(std::launch::async, [&] {
    return Inject(child.pid(), child.pid(), Plan(FaultType::kMemory, 3));
  });
  // Once the injector has seized the child, let the child wake.
  ASSERT_TRUE(testing::PollUntil([&] { return TracerPid(child.pid()) != 0; }, absl::Seconds(10)));
  ASSERT_EQ(injection.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t woken_at_us = ts.tv_sec * 1'000'000LL + ts.tv_nsec / 1000;
  ASSERT_EQ(write(wake[1], "x", 1), 1);
  absl::StatusOr<InjectionRecord> record = injection.get();
  ASSERT_TRUE(record.ok() && record->injected) << record.status();
  EXPECT_GE(record->injected_at_us, woken_at_us);
  close(wake[1]);
}

TEST(Injector, StepTriggerCountsInstructions) {
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  InjectionPlan plan = Plan(FaultType::kMemory, 5);
  plan.trigger = TriggerMode::kStep;
  plan.max_steps = 50;
  absl::StatusOr<InjectionRecord> record = Inject(child.pid(), child.pid(), plan);
  ASSERT_TRUE(record.ok() && record->injected);
  EXPECT_LE(record->steps, 50u);
}

TEST(Injector, ATargetThatDiesWhileAsleepIsReportedNotInjected) {
  int wake[2];
  ASSERT_EQ(pipe(wake), 0);
  Child child([&] {
    close(wake[1]);
    char byte;
    (void)!read(wake[0], &byte, 1);  // asleep until it is killed
  });
  close(wake[0]);
  // Asleep before the injector starts: a child caught before its read would be injected at once.
  ASSERT_TRUE(child.WaitInRead());
  std::future<absl::StatusOr<InjectionRecord>> injection = std::async(
      std::launch::async, [&] { return Inject(child.pid(), child.pid(), Plan(FaultType::kCode)); });
  ASSERT_TRUE(testing::PollUntil([&] { return TracerPid(child.pid()) != 0; }, absl::Seconds(10)));
  kill(child.pid(), SIGKILL);
  absl::StatusOr<InjectionRecord> record = injection.get();
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_FALSE(record->injected);
  EXPECT_NE(record->note.find("exited"), std::string::npos) << "note: " << record->note;
  close(wake[1]);
}

TEST(Injector, UnknownNamesAreRefused) {
  EXPECT_FALSE(ParseFaultType("bitflip").ok());
  EXPECT_EQ(*ParseFaultType("memory-shared"), FaultType::kMemoryShared);
  Child child;
  ASSERT_TRUE(child.WaitInLoop());
  InjectionPlan plan = Plan(FaultType::kRegister);
  plan.register_name = "xmm0";
  EXPECT_FALSE(Inject(child.pid(), child.pid(), plan).ok());
}

}  // namespace
}  // namespace rehome::inject
