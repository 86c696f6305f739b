// kvm-l0/vcpu_thread_test.cc: VcpuSet run loops on the real /dev/kvm: pause/resume storms with
// IN/OUT data checks, pause while halted, pause while an exit handler runs, stop verdicts
// racing pauses, StopAll.
#include "kvm-l0/vcpu_thread.h"

#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kvm-l0/testing/tiny_guest.h"

namespace rehome {
namespace {

using testing::CreateTinyVm;
using testing::EnterLongMode;
using testing::kTinyCodeGpa;
using testing::LoadCode;
using testing::TinyVm;
using testing::TinyVmOptions;

#define SKIP_WITHOUT_KVM()                                                               \
  do {                                                                                   \
    if (access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/kvm here"; \
  } while (0)

constexpr absl::Duration kPauseTimeout = absl::Seconds(30);
constexpr absl::Duration kProgressTimeout = absl::Seconds(60);

uint32_t Le32(std::span<const uint8_t> data) {
  uint32_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(4, data.size()));
  return v;
}

// Polls `done` (called with `mu` held) until it holds or `timeout` passes.
bool WaitFor(absl::Mutex& mu, const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu);
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    mu.AwaitWithTimeout(absl::Condition(&done, &std::function<bool()>::operator()),
                        absl::Milliseconds(10));
  }
  return true;
}

// Per-vCPU record of a guest that OUTs consecutive values (CounterLoop: 1, 2, 3, ...) or of
// EchoIncrementLoop, to which each IN returns last_out + 1 so that it OUTs 2, 4, 6, ... and EAX
// changes at every IN (a lost IN completion would show).
struct VcpuLog {
  uint32_t last_in = 0;
  uint32_t last_out = 0;
  bool last_was_in = false;
  uint64_t exits = 0;
  uint64_t outs = 0;
  std::string error;
};

class Logs {
 public:
  explicit Logs(int n) : logs_(n) {}
  absl::Mutex mu;
  VcpuLog& at(int i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return logs_[i]; }
  std::string Errors() {
    absl::MutexLock lock(&mu);
    std::string all;
    for (const VcpuLog& log : logs_) all += log.error;
    return all;
  }

 private:
  std::vector<VcpuLog> logs_;
};

// Handles the exits of CounterLoop(0x10) and EchoIncrementLoop(0x11, 0x12) and checks that
// nothing is lost or repeated.
ExitVerdict CheckConsecutive(Logs& logs, int i, KvmExit& exit) {
  absl::MutexLock lock(&logs.mu);
  VcpuLog& log = logs.at(i);
  ++log.exits;
  auto* io = std::get_if<PortIoExit>(&exit);
  if (io == nullptr || io->size != 4) {
    log.error += absl::StrCat("vCPU ", i, ": unexpected exit ", exit.index(), "\n");
    return ExitVerdict::kStopVm;
  }
  if (!io->is_write) {
    log.last_in = log.last_out + 1;
    std::memcpy(io->data.data(), &log.last_in, 4);
    log.last_was_in = true;
    return ExitVerdict::kContinue;
  }
  const uint32_t value = Le32(io->data);
  const uint32_t expected = io->port == 0x12 ? log.last_in + 1 : log.last_out + 1;
  if (value != expected && log.error.size() < 1000) {
    log.error += absl::StrCat("vCPU ", i, ": OUT ", value, ", expected ", expected, "\n");
  }
  log.last_out = value;
  log.last_was_in = false;
  ++log.outs;
  return ExitVerdict::kContinue;
}

// For a paused EchoIncrementLoop vCPU (in @0, inc @2, out @4, jmp @6): the registers must show
// the last exit completed and nothing after it but plain guest instructions. Empty when fine.
std::string CheckPausedEchoState(const VcpuLog& log, const testing::BasicRegs& regs) {
  const uint64_t offset = regs.rip - kTinyCodeGpa;
  const uint32_t eax = static_cast<uint32_t>(regs.rax);
  bool ok;
  if (log.last_was_in) {
    ok = (offset == 2 && eax == log.last_in) || (offset == 4 && eax == log.last_in + 1);
  } else {
    ok = (offset == 0 || offset == 6) && eax == log.last_out;
  }
  if (ok) return "";
  return absl::StrCat("paused at offset ", offset, " with eax ", eax, " after ",
                      log.last_was_in ? "IN " : "OUT ",
                      log.last_was_in ? log.last_in : log.last_out);
}

absl::StatusOr<TinyVm> MakeVm(int vcpus, bool irqchip, const std::vector<uint8_t>& code) {
  auto vm = CreateTinyVm(TinyVmOptions{.vcpu_count = vcpus, .irqchip = irqchip});
  if (!vm.ok()) return vm.status();
  if (auto s = LoadCode(vm->memory, kTinyCodeGpa, code); !s.ok()) return s;
  for (VcpuFd& vcpu : vm->vcpus) {
    if (auto s = EnterLongMode(vcpu, kTinyCodeGpa, 3); !s.ok()) return s;
  }
  return vm;
}

TEST(VcpuSet, PauseResumeStormLosesAndRepeatsNothing) {
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(2, /*irqchip=*/true, testing::EchoIncrementLoop(0x11, 0x12));
  ASSERT_TRUE(vm.ok()) << vm.status();
  Logs logs(2);
  auto set = VcpuSet::Create(std::move(vm->vcpus),
                             [&](int i, KvmExit& exit) { return CheckConsecutive(logs, i, exit); });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  for (int cycle = 0; cycle < 200; ++cycle) {
    ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok()) << "cycle " << cycle;
    uint64_t exits_at_pause[2];
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(vcpus.state(i), VcpuSet::State::kPaused);
      // No exit in flight: the last IN has landed in EAX and the guest ran on no further than
      // the next exit.
      auto regs = testing::GetBasicRegs(vcpus.vcpu(i));
      ASSERT_TRUE(regs.ok()) << regs.status();
      absl::MutexLock lock(&logs.mu);
      ASSERT_EQ(CheckPausedEchoState(logs.at(i), *regs), "") << "cycle " << cycle << " vCPU " << i;
      exits_at_pause[i] = logs.at(i).exits;
    }
    ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok()) << "pausing twice is fine";
    {
      absl::MutexLock lock(&logs.mu);
      for (int i = 0; i < 2; ++i) ASSERT_EQ(logs.at(i).exits, exits_at_pause[i]);
    }
    ASSERT_TRUE(vcpus.ResumeAll().ok());
    ASSERT_TRUE(WaitFor(
        logs.mu,
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return logs.at(0).exits > exits_at_pause[0] && logs.at(1).exits > exits_at_pause[1];
        },
        kProgressTimeout))
        << "no progress after resume in cycle " << cycle;
  }
  vcpus.StopAll();
  for (int i = 0; i < 2; ++i) EXPECT_EQ(vcpus.state(i), VcpuSet::State::kExited);
  EXPECT_EQ(logs.Errors(), "");
  absl::MutexLock lock(&logs.mu);
  EXPECT_GE(logs.at(0).outs, 100u);
  EXPECT_GE(logs.at(1).outs, 100u);
}

TEST(VcpuSet, PausesAVcpuHaltedInTheKernel) {
  SKIP_WITHOUT_KVM();
  auto vm = CreateTinyVm(TinyVmOptions{.vcpu_count = 2, .irqchip = true});
  ASSERT_TRUE(vm.ok()) << vm.status();
  constexpr uint64_t kHaltCode = kTinyCodeGpa + 0x1000;
  ASSERT_TRUE(LoadCode(vm->memory, kTinyCodeGpa, testing::CounterLoop(0x10)).ok());
  ASSERT_TRUE(LoadCode(vm->memory, kHaltCode, testing::HaltLoop(0x10)).ok());
  ASSERT_TRUE(EnterLongMode(vm->vcpus[0], kHaltCode, 0, /*rax=*/7).ok());
  ASSERT_TRUE(EnterLongMode(vm->vcpus[1], kTinyCodeGpa, 3).ok());
  Logs logs(2);
  auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
    if (i == 1) return CheckConsecutive(logs, i, exit);
    absl::MutexLock lock(&logs.mu);
    ++logs.at(0).outs;  // the halting vCPU OUTs once, then halts for good (no interrupts)
    return ExitVerdict::kContinue;
  });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  for (int round = 1; round <= 5; ++round) {
    ASSERT_TRUE(WaitFor(
        logs.mu,
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return logs.at(0).outs == 1 && logs.at(1).outs >= 100u * round;
        },
        kProgressTimeout));
    ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok()) << "round " << round;
    EXPECT_EQ(vcpus.state(0), VcpuSet::State::kPaused);
    EXPECT_EQ(vcpus.state(1), VcpuSet::State::kPaused);
    ASSERT_TRUE(vcpus.ResumeAll().ok());
  }
  vcpus.StopAll();
  EXPECT_EQ(logs.Errors(), "");
  absl::MutexLock lock(&logs.mu);
  EXPECT_EQ(logs.at(0).outs, 1u);
}

TEST(VcpuSet, PauseRequestedInsideTheHandlerWaitsForItAndCompletesTheExit) {
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(1, /*irqchip=*/true, testing::CounterLoop(0x10));
  ASSERT_TRUE(vm.ok()) << vm.status();
  Logs logs(1);
  absl::Notification in_handler, release;
  auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
    const ExitVerdict verdict = CheckConsecutive(logs, i, exit);
    if (Le32(std::get<PortIoExit>(exit).data) == 10) {
      in_handler.Notify();
      release.WaitForNotification();
    }
    return verdict;
  });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  in_handler.WaitForNotification();
  // The handler cannot return until released, so this pause cannot complete.
  EXPECT_EQ(vcpus.PauseAll(absl::Milliseconds(50)).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(vcpus.state(0), VcpuSet::State::kRunning);
  release.Notify();
  ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok());
  auto regs = testing::GetBasicRegs(vcpus.vcpu(0));
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_EQ(regs->rbx, 10u) << "the guest ran on after the pause request";
  {
    absl::MutexLock lock(&logs.mu);
    EXPECT_EQ(logs.at(0).last_out, 10u);
  }
  ASSERT_TRUE(vcpus.ResumeAll().ok());
  ASSERT_TRUE(WaitFor(
      logs.mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return logs.at(0).last_out >= 20; },
      kProgressTimeout));
  vcpus.StopAll();
  EXPECT_EQ(logs.Errors(), "");
}

TEST(VcpuSet, PauseDuringAnInExitCompletesTheInBeforeParking) {
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(1, /*irqchip=*/true, testing::EchoIncrementLoop(0x11, 0x12));
  ASSERT_TRUE(vm.ok()) << vm.status();
  Logs logs(1);
  absl::Notification in_handler, release;
  auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
    const ExitVerdict verdict = CheckConsecutive(logs, i, exit);
    const auto& io = std::get<PortIoExit>(exit);
    if (!io.is_write && Le32(io.data) == 21) {  // the 11th IN
      in_handler.Notify();
      release.WaitForNotification();
    }
    return verdict;
  });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  in_handler.WaitForNotification();
  EXPECT_EQ(vcpus.PauseAll(absl::Milliseconds(10)).code(), absl::StatusCode::kDeadlineExceeded);
  release.Notify();
  ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok());
  // KVM wrote the IN data to EAX on the KVM_RUN with immediate_exit, and ran nothing after it.
  auto regs = testing::GetBasicRegs(vcpus.vcpu(0));
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_EQ(regs->rip, kTinyCodeGpa + 2);
  EXPECT_EQ(regs->rax, 21u);
  ASSERT_TRUE(vcpus.ResumeAll().ok());
  ASSERT_TRUE(WaitFor(
      logs.mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return logs.at(0).last_out >= 40; },
      kProgressTimeout));
  vcpus.StopAll();
  EXPECT_EQ(logs.Errors(), "");
}

TEST(VcpuSet, StopVerdictStopsEveryVcpuAndSaysWhy) {
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(2, /*irqchip=*/true, testing::CounterLoop(0x10));
  ASSERT_TRUE(vm.ok()) << vm.status();
  Logs logs(2);
  auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
    const ExitVerdict verdict = CheckConsecutive(logs, i, exit);
    if (i == 1 && Le32(std::get<PortIoExit>(exit).data) == 50) return ExitVerdict::kStopVm;
    return verdict;
  });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  const VmStopReason reason = vcpus.WaitForStop();
  EXPECT_EQ(reason.cause, VmStopReason::Cause::kVerdict);
  EXPECT_EQ(reason.vcpu_index, 1);
  EXPECT_TRUE(reason.status.ok());
  const auto* io = std::get_if<PortIoExit>(&reason.exit);
  ASSERT_NE(io, nullptr);
  EXPECT_EQ(io->port, 0x10);
  EXPECT_TRUE(io->data.empty());
  EXPECT_EQ(vcpus.state(0), VcpuSet::State::kExited);
  EXPECT_EQ(vcpus.state(1), VcpuSet::State::kExited);
  EXPECT_EQ(vcpus.PauseAll(kPauseTimeout).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(vcpus.ResumeAll().code(), absl::StatusCode::kFailedPrecondition);
  vcpus.StopAll();
  vcpus.StopAll();
  EXPECT_EQ(vcpus.WaitForStop().cause, VmStopReason::Cause::kVerdict);
  EXPECT_EQ(logs.Errors(), "");
  // The stopping vCPU completed its OUT and went no further.
  auto regs = testing::GetBasicRegs(vcpus.vcpu(1));
  ASSERT_TRUE(regs.ok()) << regs.status();
  EXPECT_EQ(regs->rbx, 50u);
}

TEST(VcpuSet, StopVerdictWhileAnotherThreadPauses) {
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(2, /*irqchip=*/true, testing::CounterLoop(0x10));
  ASSERT_TRUE(vm.ok()) << vm.status();
  Logs logs(2);
  auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
    const ExitVerdict verdict = CheckConsecutive(logs, i, exit);
    if (i == 0 && Le32(std::get<PortIoExit>(exit).data) == 400) return ExitVerdict::kStopVm;
    return verdict;
  });
  ASSERT_TRUE(set.ok()) << set.status();
  VcpuSet& vcpus = **set;
  ASSERT_TRUE(vcpus.Start().ok());
  const absl::Time deadline = absl::Now() + kProgressTimeout;
  int pauses = 0;
  for (;;) {
    ASSERT_LT(absl::Now(), deadline) << "the stop verdict never came";
    const absl::Status paused = vcpus.PauseAll(kPauseTimeout);
    if (!paused.ok()) {
      ASSERT_EQ(paused.code(), absl::StatusCode::kFailedPrecondition) << paused;
      break;
    }
    ++pauses;
    uint64_t exits_at_pause;
    {
      absl::MutexLock lock(&logs.mu);
      exits_at_pause = logs.at(0).exits;
    }
    const absl::Status resumed = vcpus.ResumeAll();
    if (!resumed.ok()) {
      ASSERT_EQ(resumed.code(), absl::StatusCode::kFailedPrecondition) << resumed;
      break;
    }
    // Pausing again at once could keep vCPU 0 from ever running on a loaded host (each pause
    // kicks it out of KVM_RUN before its first instruction): let it make an exit first, or stop.
    while (!WaitFor(
        logs.mu, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return logs.at(0).exits > exits_at_pause; },
        absl::Milliseconds(10))) {
      if (vcpus.WaitForStopFor(absl::ZeroDuration()).has_value()) break;
      ASSERT_LT(absl::Now(), deadline) << "vCPU 0 made no progress after a resume";
    }
  }
  const auto reason = vcpus.WaitForStopFor(kProgressTimeout);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->cause, VmStopReason::Cause::kVerdict);
  EXPECT_EQ(reason->vcpu_index, 0);
  EXPECT_GT(pauses, 0);
  EXPECT_EQ(logs.Errors(), "");
}

TEST(VcpuSet, StopAllStopsRunningAndPausedVcpus) {
  SKIP_WITHOUT_KVM();
  for (bool pause_first : {false, true}) {
    auto vm = MakeVm(2, /*irqchip=*/true, testing::CounterLoop(0x10));
    ASSERT_TRUE(vm.ok()) << vm.status();
    Logs logs(2);
    auto set = VcpuSet::Create(std::move(vm->vcpus), [&](int i, KvmExit& exit) {
      return CheckConsecutive(logs, i, exit);
    });
    ASSERT_TRUE(set.ok()) << set.status();
    VcpuSet& vcpus = **set;
    EXPECT_EQ(vcpus.PauseAll(kPauseTimeout).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(vcpus.WaitForStopFor(absl::ZeroDuration()).has_value());
    ASSERT_TRUE(vcpus.Start().ok());
    EXPECT_EQ(vcpus.Start().code(), absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(WaitFor(
        logs.mu,
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return logs.at(0).outs >= 10 && logs.at(1).outs >= 10;
        },
        kProgressTimeout));
    if (pause_first) {
      ASSERT_TRUE(vcpus.PauseAll(kPauseTimeout).ok());
    }
    vcpus.StopAll();
    EXPECT_EQ(vcpus.state(0), VcpuSet::State::kExited);
    EXPECT_EQ(vcpus.state(1), VcpuSet::State::kExited);
    const auto reason = vcpus.WaitForStopFor(absl::ZeroDuration());
    ASSERT_TRUE(reason.has_value());
    EXPECT_EQ(reason->cause, VmStopReason::Cause::kStopAll);
    EXPECT_EQ(reason->vcpu_index, -1);
    EXPECT_EQ(logs.Errors(), "");
  }
}

TEST(VcpuSet, CreateValidatesAndUnstartedSetsStopCleanly) {
  EXPECT_EQ(
      VcpuSet::Create({}, [](int, KvmExit&) { return ExitVerdict::kContinue; }).status().code(),
      absl::StatusCode::kInvalidArgument);
  SKIP_WITHOUT_KVM();
  auto vm = MakeVm(1, /*irqchip=*/false, testing::CounterLoop(0x10));
  ASSERT_TRUE(vm.ok()) << vm.status();
  EXPECT_EQ(VcpuSet::Create(std::move(vm->vcpus), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto vm2 = MakeVm(1, /*irqchip=*/false, testing::CounterLoop(0x10));
  ASSERT_TRUE(vm2.ok()) << vm2.status();
  auto set =
      VcpuSet::Create(std::move(vm2->vcpus), [](int, KvmExit&) { return ExitVerdict::kContinue; });
  ASSERT_TRUE(set.ok()) << set.status();
  (*set)->StopAll();
  EXPECT_EQ((*set)->state(0), VcpuSet::State::kExited);
  EXPECT_EQ((*set)->Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*set)->WaitForStop().cause, VmStopReason::Cause::kStopAll);
}

}  // namespace
}  // namespace rehome
