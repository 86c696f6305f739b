// vmm/cli/run_command.cc: RunCommand.
#include "vmm/cli/run_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/errno_status.h"
#include "base/regular_file.h"
#include "qmp-client/qmp_server.h"
#include "qmp-client/vm_monitor.h"
#include "recovery/l1_process.h"
#include "vmm/cli/boot_image.h"
#include "vmm/cli/control_requests.h"
#include "vmm/cli/domain_options.h"
#include "vmm/cli/event_relay.h"
#include "vmm/cli/guest_cmdline.h"
#include "vmm/cli/host_signals.h"
#include "vmm/cli/input_pump.h"
#include "vmm/cli/machine.h"
#include "vmm/cli/machine_control.h"
#include "vmm/cli/run_options.h"
#include "vmm/device_model.h"

namespace rehome {
namespace {

// How one boot of the guest ended: boot again, or end `rehome run` with `exit_code`.
struct BootEnd {
  bool reboot = false;
  int exit_code = 0;
};

// The L1 binary when none is configured: `rehome-l1` next to this executable (the L1 alone,
// with a fraction of the libraries: it starts and dies faster and exposes less), else this
// executable itself (`rehome __l1`).
std::string DefaultL1Binary() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "/proc/self/exe";
  const std::string self(path, static_cast<size_t>(n));
  const std::string sibling = self.substr(0, self.rfind('/') + 1) + "rehome-l1";
  return access(sibling.c_str(), X_OK) == 0 ? sibling : self;
}

}  // namespace

namespace {
NestedRunner nested_runner = nullptr;
}  // namespace

void SetNestedRunner(NestedRunner runner) { nested_runner = runner; }

int RunCommand(const std::vector<std::string>& args, std::ostream& err) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::cout << RunUsage();
      return 0;
    }
  }
  absl::StatusOr<RunOptions> options = ParseRunOptions(args);
  if (!options.ok()) {
    err << "rehome run: " << options.status().message() << "\n";
    return kExitUsage;
  }
  DomainFacts domain;
  if (!options->domain_file.empty()) {
    absl::StatusOr<DomainFacts> applied = ApplyDomainFile(&*options);
    if (!applied.ok()) {
      err << "rehome run: " << applied.status().message() << "\n";
      return kExitUsage;
    }
    domain = std::move(*applied);
    if (const std::string warning = domain.Warning(options->domain_file); !warning.empty()) {
      err << warning << "\n";
    }
  }
  // Files are checked here, before anything starts, so that a bad one is a usage error naming it
  // (the loader and the machine check them again when they use them).
  if (absl::StatusOr<UniqueFd> kernel = OpenRegularFile(options->kernel, O_RDONLY, "kernel");
      !kernel.ok()) {
    err << "rehome run: " << kernel.status().message() << "\n";
    return kExitUsage;
  }
  if (!options->disk.empty()) {
    absl::StatusOr<UniqueFd> disk =
        OpenDiskImage(options->disk, options->disk_read_only, options->disk_direct);
    if (!disk.ok()) {
      err << "rehome run: " << disk.status().message() << "\n";
      return kExitUsage;
    }
  }
  // libvirt's defaults.
  if (options->on_crash.empty()) options->on_crash = "destroy";
  if (options->on_reboot.empty()) options->on_reboot = "restart";
  if (options->on_poweroff.empty()) options->on_poweroff = "destroy";
  if (options->policy.verify != VerifyMode::kNone && !options->split) {
    err << "rehome run: --verify " << VerifyModeName(options->policy.verify)
        << ": verified execution needs --mode split\n";
    return kExitUsage;
  }
  if (absl::Status valid = options->policy.Validate(); !valid.ok()) {
    err << "rehome run: " << valid.message() << "\n";
    return kExitUsage;
  }
  for (const std::string* binary :
       {&options->policy.l1_binary, &options->policy.standby_l1_binary}) {
    if (binary->empty()) continue;
    if (absl::Status usable = CheckL1Binary(*binary); !usable.ok()) {
      err << "rehome run: " << usable.message() << "\n";
      return kExitUsage;
    }
  }
  // The test guest finds its virtio devices and vCPU count on its command line; a Linux
  // kernel finds them in ACPI and gets its command line as given.
  const bool linux_kernel = IsBzImageFile(options->kernel);
  if (!linux_kernel &&
      (!options->disk.empty() || !options->console_socket.empty() || options->netdev.has_value())) {
    const std::string virtio = VirtioMmioCmdline(
        !options->disk.empty(), !options->console_socket.empty(), options->netdev.has_value());
    options->cmdline =
        options->cmdline.empty() ? virtio : absl::StrCat(options->cmdline, " ", virtio);
  }
  absl::StatusOr<std::string> cmdline = linux_kernel ? absl::StatusOr<std::string>(options->cmdline)
                                                     : WithCpusKey(options->cmdline, options->cpus);
  absl::StatusOr<GuestWorkload> workload =
      cmdline.ok() ? ParseGuestWorkload(*cmdline) : absl::StatusOr<GuestWorkload>(cmdline.status());
  if (!workload.ok()) {
    err << "rehome run: " << workload.status().message() << "\n";
    return kExitUsage;
  }
  if (options->nested) {
    if (absl::Status valid = ValidateNestedOptions(options->nested_options); !valid.ok()) {
      err << "rehome run: " << valid.message() << "\n";  // --mode nested with a --domain
      return kExitUsage;
    }
    if (nested_runner == nullptr) {
      err << "rehome run: --mode nested is not built into this binary\n";
      return kExitUsage;
    }
    return nested_runner(*options, *cmdline, err);
  }
  const HostSignals signals;  // SIGTERM, SIGINT, SIGHUP: a clean stop (host_signals.h)
  // The QMP monitor lives across boots of the guest (a reset or an on_*=restart builds a new
  // Machine; the monitor's clients stay connected and see RESET).
  std::shared_ptr<MachineControl> control;
  std::unique_ptr<QmpServer> qmp;
  if (!options->qmp_socket.empty()) {
    control =
        std::make_shared<MachineControl>(options->cpus, options->split, domain.name, domain.uuid,
                                         options->policy, domain.UnsupportedDevicesJson());
    absl::StatusOr<std::unique_ptr<QmpServer>> server =
        QmpServer::Start(options->qmp_socket, std::make_shared<VmMonitor>(control));
    if (!server.ok()) {
      err << "rehome run: --qmp " << options->qmp_socket << ": " << server.status().message()
          << "\n";
      return kExitUsage;
    }
    qmp = std::move(*server);
    control->SetEmitter(
        [server = qmp.get()](std::string_view name, std::optional<nlohmann::json> data) {
          server->EmitEvent(name, std::move(data));
        });
  }
  // Ends `rehome run` with `code`: the monitor's queued events reach its clients first.
  auto finish = [&](int code) -> BootEnd {
    if (qmp != nullptr) qmp->Stop();
    return BootEnd{false, code};
  };
  // Ends `rehome run` after a host signal, as QEMU does: SHUTDOWN (host-signal), guest stopped.
  auto stop_for_signal = [&](int signal_number, Machine* vm) -> BootEnd {
    if (control != nullptr) {
      control->SetState(RunState::kShutdown);
      control->Emit(kEventShutdown, ShutdownEventData(ShutdownCause::kHostSignal));
    }
    if (vm != nullptr) vm->Stop();
    err << "rehome: " << HostSignals::Name(signal_number) << " received: guest stopped\n";
    return finish(HostSignals::ExitCode(signal_number));
  };
  // With the guest stopped but kept (a preserve action): waits for QMP quit (ends with
  // `quit_code`) or system_reset (boots again).
  auto preserve = [&](int quit_code) -> BootEnd {
    for (;;) {
      for (MachineControl::Request r : control->TakeRequests()) {
        if (r == MachineControl::Request::kQuit) {
          control->SetState(RunState::kShutdown);
          control->Emit(kEventShutdown, ShutdownEventData(ShutdownCause::kHostQmpQuit));
          err << "rehome: quit requested over QMP\n";
          return finish(quit_code);
        }
        if (r == MachineControl::Request::kReset) {
          control->Emit(kEventReset, ResetEventData(ShutdownCause::kHostQmpSystemReset));
          err << "rehome: system_reset over QMP: booting the guest again\n";
          return BootEnd{true, 0};
        }
      }
      if (const int signal_number = signals.received(); signal_number != 0) {
        return stop_for_signal(signal_number, nullptr);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  };

  constexpr int kMaxCrashRestarts = 10;  // on_crash=restart: a guest that always crashes ends
  int crash_restarts = 0;
  // One boot of the guest; `round` > 0 for every boot after the first (reset or restart).
  auto run_once = [&](int round) -> BootEnd {
    absl::StatusOr<UniqueFd> serial = OpenSerialOutput(options->serial_file, round > 0);
    if (!serial.ok()) {
      err << "rehome run: " << serial.status().message() << "\n";
      return finish(kExitUsage);
    }

    const absl::Time start = absl::Now();
    MachineConfig config;
    config.kernel_path = options->kernel;
    config.initrd_path = options->initrd;
    config.memory_bytes = options->memory_mib << 20;
    config.cpus = options->cpus;
    config.cmdline = *cmdline;
    config.serial_output = std::move(*serial);
    config.oracle = OracleConfigFor(*workload, options->cpus);
    config.mode = options->split ? MachineMode::kSplit : MachineMode::kMonolithic;
    config.disk_path = options->disk;
    config.disk_read_only = options->disk_read_only;
    config.disk_direct = options->disk_direct;
    config.exit_stats = options->exit_stats;
    config.console_socket = options->console_socket;
    config.net = options->netdev;
    config.split.pause_on_limit = !options->qmp_socket.empty();  // an operator can `cont`
    config.split.l1_realtime = options->l1_realtime;
    config.split.post_writes = options->posted_writes;
    config.split.l1_binary =
        options->policy.l1_binary.empty() ? DefaultL1Binary() : options->policy.l1_binary;
    config.split.standby_l1_binary = options->policy.standby_l1_binary;
    config.split.policy = options->policy;
    // A mode an operator set over QMP holds for every later boot too.
    if (control != nullptr) config.split.policy.verify = control->verify_mode();
    auto err_mu = std::make_shared<absl::Mutex>();
    auto relay = std::make_shared<EventRelay>();
    const bool quiet = options->quiet;
    config.split.on_event = [&err, err_mu, relay, quiet](const SupervisorEvent& event) {
      relay->Forward(event);
      if (quiet) return;
      {
        absl::MutexLock lock(err_mu.get());
        switch (event.kind) {
          case SupervisorEvent::Kind::kL1Failed:
            err << "rehome: " << event.role << " L1 pid " << event.pid << " failed: " << event.cause
                << "\n";
            break;
          case SupervisorEvent::Kind::kFailoverStarted:
            break;
          case SupervisorEvent::Kind::kFailoverCompleted:
            err << "rehome: " << event.report->ToString() << "\n";
            break;
          case SupervisorEvent::Kind::kFailoverFailed:
            err << "rehome: failover failed: " << event.cause << "\n";
            break;
          case SupervisorEvent::Kind::kStandbyReady:
            err << "rehome: standby L1 pid " << event.pid << " ready\n";
            break;
          case SupervisorEvent::Kind::kDivergence:
            err << "rehome: replicas disagree on item " << event.divergence->seq << " ("
                << event.divergence->item << "): " << event.divergence->what << "\n";
            break;
          case SupervisorEvent::Kind::kDivergenceResolved:
            err << "rehome: " << event.divergence->ToString() << "\n";
            break;
        }
      }
    };
    if (const char* kvm_path = std::getenv("REHOME_KVM_PATH"); kvm_path != nullptr) {
      config.kvm_path = kvm_path;  // for tests of hosts without KVM
    }
    absl::StatusOr<std::unique_ptr<Machine>> machine = Machine::Create(std::move(config));
    if (!machine.ok()) {
      err << "rehome run: " << machine.status().message() << "\n";
      return finish(ExitCodeForSetupError(machine.status()));
    }
    Machine& vm = **machine;
    // Detaches the monitor from this boot's machine before it is destroyed, whatever the exit path.
    struct DetachOnExit {
      MachineControl* control;
      EventRelay* relay;
      ~DetachOnExit() {
        relay->Detach();
        if (control != nullptr) control->Attach(nullptr);
      }
    } detach{control.get(), relay.get()};
    if (control != nullptr) {
      control->Attach(&vm);
      relay->Attach(control);
      control->SetState(RunState::kPrelaunch);  // until the vCPUs run
    }
    absl::StatusOr<std::unique_ptr<InputPump>> pump = InputPump::Start(
        STDIN_FILENO, [&vm](std::string_view bytes) { vm.QueueSerialInput(bytes); });
    if (!pump.ok()) {
      err << "rehome run: " << pump.status().message() << "\n";
      return finish(kExitInternal);
    }
    if (absl::Status started = vm.Start(); !started.ok()) {
      err << "rehome run: " << started.message() << "\n";
      return finish(kExitInternal);
    }
    if (control != nullptr) control->SetState(RunState::kRunning);
    if (!options->quiet) {
      err << absl::StrFormat(
          "rehome: guest started: %d vCPU(s), %d MiB, workload %s, setup %.1f ms\n", options->cpus,
          options->memory_mib, workload->name, absl::ToDoubleMilliseconds(absl::Now() - start));
    }

    // Periodic actions: re-homing into a new VM, killing the active L1, planned switchovers.
    struct Periodic {
      uint64_t every_ms;
      absl::Time next;
      std::function<void()> run;
    };
    std::vector<Periodic> periodic;
    auto status_line = [&](const std::string& line) {
      if (options->quiet) return;
      absl::MutexLock lock(err_mu.get());
      const WorkloadProgress progress = vm.Progress();
      err << "rehome: " << line;
      if (progress.has_oracle)
        err << "; oracle verified " << progress.verified_reports << " reports";
      err << "\n";
    };
    std::string failure;
    if (options->rehome_interval_ms != 0) {
      periodic.push_back({options->rehome_interval_ms, absl::Time(), [&] {
                            absl::StatusOr<RehomeReport> report = vm.Rehome();
                            if (absl::IsFailedPrecondition(report.status())) return;
                            if (!report.ok()) {
                              failure = absl::StrCat("moving the guest failed: ",
                                                     report.status().message());
                              return;
                            }
                            status_line(report->ToString());
                          }});
    }
    if (options->kill_active_every_ms != 0) {
      periodic.push_back({options->kill_active_every_ms, absl::Time(), [&] {
                            std::vector<L1Info> l1s = vm.supervisor()->L1s();
                            pid_t pid = -1;
                            for (const L1Info& l1 : l1s) {
                              if (l1.role == "active") pid = l1.pid;
                            }
                            if (vm.supervisor()->InjectFault("active", "kill").ok()) {
                              status_line(
                                  absl::StrCat("fault injection: SIGKILL to active L1 pid ", pid));
                            }
                          }});
    }
    if (options->switchover_every_ms != 0) {
      periodic.push_back({options->switchover_every_ms, absl::Time(), [&] {
                            absl::StatusOr<FailoverReport> report = vm.supervisor()->Switchover();
                            if (report.ok()) status_line(report->ToString());
                          }});
    }
    for (Periodic& p : periodic) p.next = absl::Now() + absl::Milliseconds(p.every_ms);
    std::optional<MachineResult> result;
    for (;;) {
      // Signals and requests come first: a guest that resets or powers off faster than one wait
      // must not keep a quit (or a signal) waiting for ever across its reboots.
      if (const int signal_number = signals.received(); signal_number != 0) {
        relay->Detach();
        return stop_for_signal(signal_number, &vm);
      }
      if (control != nullptr) {
        const ControlOutcome outcome = HandleControlRequests(vm, *control, err);
        if (outcome == ControlOutcome::kQuit) {
          relay->Detach();
          vm.Stop();
          return finish(0);
        }
        if (outcome == ControlOutcome::kReset) {
          relay->Detach();
          vm.Stop();
          control->Emit(kEventReset, ResetEventData(ShutdownCause::kHostQmpSystemReset));
          err << "rehome: system_reset over QMP: booting the guest again\n";
          return BootEnd{true, 0};
        }
      }
      for (Periodic& p : periodic) {
        if (absl::Now() < p.next) continue;
        p.run();
        p.next = absl::Now() + absl::Milliseconds(p.every_ms);
      }
      if (!failure.empty()) {
        err << "rehome: " << failure << "\n";
        vm.Stop();
        return finish(kExitInternal);
      }
      absl::Time next = absl::InfiniteFuture();
      for (const Periodic& p : periodic) next = std::min(next, p.next);
      next = std::min(next, absl::Now() + absl::Milliseconds(control != nullptr ? 20 : 50));
      result = vm.WaitFor(next - absl::Now());
      if (result.has_value()) break;
    }
    pump->reset();
    relay->Detach();
    // The guest's own failures: a triple fault, or its exception / panic report through the
    // debug-exit port (guest ABI statuses 2 and 4). They follow on_crash, never failover. A
    // guest reset follows on_reboot, a guest power-off on_poweroff (libvirt's lifecycle actions).
    const bool crashed = result->kind == MachineResult::Kind::kGuestCrash ||
                         (result->kind == MachineResult::Kind::kGuestExit &&
                          (result->exit_status == 2 || result->exit_status == 4));
    const bool reset = result->kind == MachineResult::Kind::kReset;
    const bool poweroff = result->kind == MachineResult::Kind::kShutdown;
    const bool recovery_stopped = vm.supervisor() != nullptr && vm.supervisor()->limit_reached();
    if (!recovery_stopped && (crashed || reset || poweroff)) {
      const char* event_name = crashed ? "on_crash" : reset ? "on_reboot" : "on_poweroff";
      const std::string& action = crashed ? options->on_crash
                                  : reset ? options->on_reboot
                                          : options->on_poweroff;
      const ShutdownCause cause =
          reset ? ShutdownCause::kGuestReset : ShutdownCause::kGuestShutdown;
      if (action == "restart" && crashed && crash_restarts >= kMaxCrashRestarts) {
        err << "rehome: guest crashed " << crash_restarts + 1
            << " times; on_crash=restart gives up\n";
      } else if (action == "restart") {
        if (crashed) ++crash_restarts;
        if (crashed) {
          err << "rehome: guest crashed (" << result->reason << "); on_crash=restart: ";
          if (control != nullptr) {
            control->SetState(RunState::kGuestPanicked);
            control->Emit(kEventGuestPanicked, GuestPanickedEventData(GuestPanicAction::kRun));
          }
        } else {
          err << "rehome: guest " << (reset ? "reset" : "powered off") << " (" << result->reason
              << "); " << event_name << "=restart: ";
          if (control != nullptr) {
            if (poweroff) control->Emit(kEventShutdown, ShutdownEventData(cause));
            control->Emit(kEventReset, ResetEventData(cause));
          }
        }
        err << "booting the guest again\n";
        return BootEnd{true, 0};
      }
      if (action == "preserve") {
        const int code = crashed ? kExitGuestCrash : 0;
        err << "rehome: guest "
            << (crashed ? "crashed"
                : reset ? "reset"
                        : "powered off")
            << " (" << result->reason << "); " << event_name << "=preserve: ";
        if (control == nullptr) {
          err << "nothing to preserve without --qmp\n";  // so it ends as with destroy
        } else {
          // The VM stays as it stopped (vCPUs stopped, RAM and L1s intact) for inspection until
          // the operator sends quit (or system_reset to boot it again).
          err << "guest preserved until QMP quit or system_reset\n";
          if (crashed) {
            control->SetState(RunState::kGuestPanicked);
            control->Emit(kEventGuestPanicked, GuestPanickedEventData(GuestPanicAction::kPause));
          } else {
            control->SetState(RunState::kShutdown);
            control->Emit(kEventShutdown, ShutdownEventData(cause));
          }
          return preserve(code);
        }
      }
    }
    if (control != nullptr) {
      switch (result->kind) {
        case MachineResult::Kind::kGuestCrash:
          control->SetState(RunState::kGuestPanicked);
          control->Emit(kEventGuestPanicked, GuestPanickedEventData(GuestPanicAction::kPoweroff));
          break;
        case MachineResult::Kind::kReset:
          control->SetState(RunState::kShutdown);
          control->Emit(kEventShutdown, ShutdownEventData(ShutdownCause::kGuestReset));
          break;
        default:
          control->SetState(RunState::kShutdown);
          control->Emit(kEventShutdown, ShutdownEventData(ShutdownCause::kGuestShutdown));
          break;
      }
    }
    return finish(Finish(*result, vm, options->quiet, err));
  };
  for (int round = 0;; ++round) {
    const BootEnd end = run_once(round);
    if (!end.reboot) return end.exit_code;
  }
}

}  // namespace rehome
