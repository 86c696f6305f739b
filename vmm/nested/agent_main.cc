// vmm/nested/agent_main.cc: AgentMain: the watcher, the command loop and the fault injector.
#include "vmm/nested/agent_main.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "kvm-l0/kvm_system.h"
#include "state-extract/state_codec.h"
#include "vmm/nested/agent_regions.h"
#include "vmm/nested/l2_runner.h"
#include "vmm/nested/vmrun_return.h"

namespace rehome {
namespace {

using nested_abi::AgentState;
using nested_abi::Command;
using nested_abi::ControlPage;

void SetState(ControlPage* page, AgentState state) {
  page->agent_state.store(static_cast<uint32_t>(state), std::memory_order_release);
}

AgentState GetState(const ControlPage* page) {
  return static_cast<AgentState>(page->agent_state.load(std::memory_order_acquire));
}

// The parent of the agent: waits for it and, unless L2 finished or L0 stopped it, tells L0 it
// died (L0 then fences this L1 at once instead of waiting for the heartbeat to go stale).
int Watch(pid_t agent, ControlPage* page, std::ostream& err) {
  int status = 0;
  while (waitpid(agent, &status, 0) < 0 && errno == EINTR) {
  }
  const AgentState state = GetState(page);
  if (state == AgentState::kFinished) return 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  const std::string why =
      WIFSIGNALED(status)
          ? absl::StrCat("agent pid ", agent, " died: signal ", WTERMSIG(status))
          : absl::StrCat("agent pid ", agent, " exited with status ", WEXITSTATUS(status));
  nested_abi::SetMessage(page, why);
  SetState(page, AgentState::kDied);
  err << "rehome-agent: " << why << "\n";
  return 1;
}

void Panic(std::ostream& err) {
  err << "rehome-agent: panicking the L1 kernel (fault injection)\n";
  err.flush();
  const int fd = ::open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) (void)!::write(fd, "c", 1);
  err << "rehome-agent: /proc/sysrq-trigger did not panic the kernel\n";
}

class Agent final {
 public:
  Agent(AgentRegions* regions, KvmSystem kvm, std::ostream& err)
      : regions_(regions), kvm_(std::move(kvm)), err_(err), page_(regions->control()) {}

  int Run() {
    page_->agent_pid = static_cast<uint64_t>(getpid());
    // Read the sequence before announcing kReady: L0 sends kBoot as soon as it sees kReady, and
    // a command published in between must not count as already seen.
    uint64_t last_seq = page_->command_seq.load(std::memory_order_acquire);
    // L2's VM is built before the agent says ready: a take-over then only restores into it.
    const absl::Time prepare_start = absl::Now();
    absl::StatusOr<std::unique_ptr<L2Runner>> prepared = L2Runner::Prepare(RunnerConfig());
    if (absl::StatusOr<uint64_t> rip = FindVmrunReturn(); rip.ok()) {
      page_->vmrun_return_rip.store(*rip, std::memory_order_release);
      Log(absl::StrCat("the L1 kernel returns from VMRUN at 0x", absl::Hex(*rip)));
    } else {
      Log(absl::StrCat("L0 cannot follow L2's exits: ", rip.status().message()));
    }
    if (!prepared.ok()) {
      Fail(prepared.status());
    } else {
      prepared_ = std::move(*prepared);
      SetState(page_, AgentState::kReady);
      Log(absl::StrCat("ready (L2 VM prepared in ",
                       absl::FormatDuration(absl::Now() - prepare_start), ")"));
    }
    absl::Time status_at = absl::Now() + absl::Seconds(10);
    while (true) {
      if (runner_ != nullptr && absl::Now() >= status_at) {  // for the L1's console log
        status_at = absl::Now() + absl::Seconds(10);
        Log(absl::StrCat("L2: ", page_->l2_exits.load(), " exits, parked ", page_->parked.load(),
                         " at commit ", page_->parked_commit.load()));
      }
      if (!hung_.load(std::memory_order_acquire)) {
        page_->heartbeat.fetch_add(1, std::memory_order_release);
      }
      const uint64_t seq = page_->command_seq.load(std::memory_order_acquire);
      if (seq != last_seq) {
        last_seq = seq;
        const auto command = static_cast<Command>(page_->command.load(std::memory_order_acquire));
        if (command == Command::kStop) {
          if (runner_ != nullptr) runner_->Stop();
          page_->command_done.store(seq, std::memory_order_release);
          return 0;
        }
        Handle(command);
        page_->command_done.store(seq, std::memory_order_release);
      }
      absl::SleepFor(absl::Milliseconds(kAgentHeartbeatMs));
    }
  }

 private:
  void Log(std::string_view line) {
    err_ << "rehome-agent[" << page_->l1_id << "]: " << line << "\n";
  }

  void Fail(const absl::Status& status) {
    nested_abi::SetMessage(page_, std::string(status.message()));
    SetState(page_, AgentState::kFailed);
    Log(absl::StrCat("failed: ", status.message()));
  }

  L2Runner::Config RunnerConfig() {
    L2Runner::Config config;
    config.regions = regions_;
    config.kvm = &kvm_;
    config.generation = page_->l1_id;
    config.inject = [this](Command fault) {
      Inject(fault);
      return false;
    };
    config.log = [this](std::string_view line) { Log(line); };
    return config;
  }

  void Handle(Command command) {
    switch (command) {
      case Command::kBoot:
      case Command::kTakeOver: {
        if (runner_ != nullptr) return Fail(absl::FailedPreconditionError("L2 already runs"));
        // Without a prepared VM the agent never reported ready (it failed instead).
        if (prepared_ == nullptr) return Fail(absl::FailedPreconditionError("no L2 VM prepared"));
        Log(command == Command::kBoot ? "booting L2" : "taking L2 over");
        runner_ = std::move(prepared_);
        const absl::Status set_up =
            command == Command::kBoot ? runner_->SetUpBoot() : TakeOver(*runner_);
        if (!set_up.ok()) return Fail(set_up);
        if (absl::Status started = runner_->Start(); !started.ok()) return Fail(started);
        SetState(page_, AgentState::kRunning);
        Log(command == Command::kBoot ? "L2 booted" : "L2 taken over");
        return;
      }
      case Command::kPanic:
      case Command::kHang:
      case Command::kCrash:
      case Command::kCrashInExit:
        if (runner_ != nullptr && !runner_->done()) {
          runner_->RequestFault(command);  // at L2's next parked point (or inside its next exit)
        } else {
          Inject(command);
        }
        return;
      case Command::kNone:
      case Command::kStop:
        return;
    }
  }

  absl::Status TakeOver(L2Runner& runner) {
    const uint64_t len = page_->transfer_len;
    if (len == 0 || len > regions_->transfer().size()) {
      return absl::InvalidArgumentError(absl::StrCat("transfer area holds ", len, " bytes"));
    }
    const std::string blob(reinterpret_cast<const char*>(regions_->transfer().data()), len);
    ASSIGN_OR_RETURN(const VmState state, DecodeVmState(blob));
    ASSIGN_OR_RETURN(const std::string payload, regions_->journal().ReadCommitted());
    ASSIGN_OR_RETURN(const NestedCommit committed, DecodeNestedCommit(payload));
    return runner.Restore(state, committed);
  }

  void Inject(Command fault) {
    switch (fault) {
      case Command::kPanic:
        Panic(err_);
        return;
      case Command::kHang:
        Log("hanging (fault injection): no more heartbeats");
        hung_.store(true, std::memory_order_release);
        while (true) pause();
      case Command::kCrash:
      case Command::kCrashInExit:
        Log(fault == Command::kCrash ? "exiting (fault injection)"
                                     : "exiting inside an exit (fault injection)");
        err_.flush();
        _exit(99);
      default:
        return;
    }
  }

  AgentRegions* regions_;
  KvmSystem kvm_;
  std::ostream& err_;
  ControlPage* page_;
  std::unique_ptr<L2Runner> prepared_;  // L2's VM, built before the agent said ready
  std::unique_ptr<L2Runner> runner_;
  std::atomic<bool> hung_{false};
};

}  // namespace

int AgentMain(const std::vector<std::string>& args, std::ostream& err) {
  std::string devmem = "/dev/mem";
  std::string kvm_path = "/dev/kvm";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--devmem" && i + 1 < args.size()) {
      devmem = args[++i];
    } else if (args[i] == "--kvm" && i + 1 < args.size()) {
      kvm_path = args[++i];
    } else {
      err << "rehome-agent: usage: rehome-agent [--devmem PATH] [--kvm PATH]\n";
      return 64;
    }
  }
  absl::StatusOr<std::unique_ptr<AgentRegions>> regions = AgentRegions::MapDevMem(devmem.c_str());
  if (!regions.ok()) {
    err << "rehome-agent: " << regions.status().message() << "\n";
    return 70;
  }
  ControlPage* page = (*regions)->control();
  const pid_t agent = fork();
  if (agent < 0) {
    err << "rehome-agent: fork failed\n";
    return 70;
  }
  if (agent > 0) return Watch(agent, page, err);
  absl::StatusOr<KvmSystem> kvm = KvmSystem::Open(kvm_path.c_str());
  if (!kvm.ok()) {
    nested_abi::SetMessage(page, std::string(kvm.status().message()));
    SetState(page, AgentState::kFailed);
    err << "rehome-agent: " << kvm.status().message() << "\n";
    return 69;
  }
  Agent run(regions->get(), std::move(*kvm), err);
  return run.Run();
}

}  // namespace rehome
