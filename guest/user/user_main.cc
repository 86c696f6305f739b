// guest/user/user_main.cc: the CPL3 side of the guest. The BSP (UserMain) copies and parses the
// command line, decides the CPU list (cpus= key, else the ACPI MADT, else 1), prints the
// banner, starts the APs through SYS_START_AP and runs its own share of the workload; each AP
// (UserApMain) runs its share and parks. When every vCPU has finished, the BSP prints the done
// line and writes the exit status to the debug-exit port. Shared state: `started` and
// `finished` (atomic counters) and the configuration, written by the BSP before any AP starts.
#include <stdint.h>

#include "guest/abi/rehome_abi.h"
#include "guest/kernel/io.h"
#include "guest/kernel/kernel.h"
#include "guest/kernel/serial.h"
#include "guest/net/service_protocol.h"
#include "guest/user/acpi.h"
#include "guest/user/cmdline.h"
#include "guest/user/syscall.h"
#include "guest/workloads/io_workloads.h"
#include "guest/workloads/workloads.h"

namespace rehome::guest {
namespace {

constexpr uint64_t kApStartTimeoutTicks = 2 * TIMER_HZ;  // 2 s

GuestConfig config;
uint32_t cpu_count = 1;
uint32_t apic_ids[GUEST_MAX_CPUS];  // by vCPU index; [0] is the BSP
uint32_t started = 0;
uint32_t finished = 0;
char cmdline[1024];
uint64_t ram_end = 0;     // end of the RAM range holding the image (PVH memory map), 0 = unknown
uint64_t rsdp_paddr = 0;  // the ACPI RSDP from the PVH start info, 0 = none

[[noreturn]] void Exit(uint32_t status) {
  OutL(abi::kDebugExitPort, status);
  SysExitTask();  // a host without the debug-exit device: park
}

void CopyCommandLine(const HvmStartInfo* info) {
  uint32_t n = 0;
  if (info->cmdline_paddr != 0 && info->cmdline_paddr < (1ull << 32)) {
    const char* src = reinterpret_cast<const char*>(static_cast<uintptr_t>(info->cmdline_paddr));
    for (; n < sizeof(cmdline) - 1 && src[n] != '\0'; ++n) cmdline[n] = src[n];
  }
  cmdline[n] = '\0';
}

// The end of the PVH memory map's RAM entry (type 1) that contains the image at 1 MiB.
void FindRamEnd(const HvmStartInfo* info) {
  struct Entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
  };
  if (info->version < 1 || info->memmap_paddr == 0 || info->memmap_paddr >= (1ull << 32)) return;
  const auto* map = reinterpret_cast<const Entry*>(static_cast<uintptr_t>(info->memmap_paddr));
  for (uint32_t i = 0; i < info->memmap_entries && i < 128; ++i) {
    if (map[i].type == 1 && map[i].addr <= 0x100000 && map[i].addr + map[i].size > 0x100000) {
      ram_end = map[i].addr + map[i].size;
    }
  }
}

// Fills apic_ids[0..cpu_count) or returns false with a reason in `error`.
bool ChooseCpus(const HvmStartInfo* info, LineWriter* error) {
  uint32_t madt_ids[GUEST_MAX_CPUS];
  const uint32_t madt_count = MadtApicIds(info->rsdp_paddr, madt_ids, GUEST_MAX_CPUS);
  cpu_count = config.cpus != 0 ? config.cpus : (madt_count != 0 ? madt_count : 1);
  const uint32_t bsp = CurrentApicId();
  apic_ids[0] = bsp;
  uint32_t n = 1;
  // Candidates in ascending LAPIC id order: the MADT's, or 0..GUEST_MAX_CPUS-1 without one.
  const uint32_t candidates = madt_count != 0 ? madt_count : GUEST_MAX_CPUS;
  for (uint32_t i = 0; i < candidates && n < cpu_count; ++i) {
    const uint32_t id = madt_count != 0 ? madt_ids[i] : i;
    if (id != bsp) apic_ids[n++] = id;
  }
  if (n < cpu_count) {
    error->Str("cpus=").Dec(cpu_count).Str(" but the MADT lists ").Dec(madt_count).Str(" CPUs");
    return false;
  }
  return true;
}

void WaitForAll(const uint32_t* counter) {
  while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < cpu_count) SysYield();
}

// The virtio workloads (vCPU 0 only); each prints its own result lines.
bool RunIo() {
  const VirtioDevices devices{config.virtio, config.virtio_count, rsdp_paddr};
  switch (config.workload) {
    case Workload::kBlk:
      return RunBlk(devices, config.seed, config.steps);
    case Workload::kEcho:
      return RunEcho(devices, config.seed, config.steps);
    case Workload::kNetEcho:
      return RunNetEcho(devices, config.ip, config.port, config.steps);
    case Workload::kSearch:
      return RunSearch(devices, config.ip, config.steps, config.cache_kib, ram_end);
    case Workload::kOltp:
      return RunOltp(devices, config.ip, config.port_given ? config.port : service::kOltpPort,
                     config.steps, ram_end, config.io_depth);
    default:
      return RunVirtioBad(devices, config.seed);
  }
}

void RunShare(uint32_t vcpu) {
  switch (config.workload) {
    case Workload::kCounter:
      RunCounter(vcpu, config.seed, config.steps, config.report_every);
      break;
    case Workload::kPio:
      if (vcpu == 0) RunPio(config.steps);
      break;
    case Workload::kFault:
      // A plain ud2 (without the system-call signature) is a real #UD: the kernel's exception
      // handler reports it and the guest exits with kExitCpuException.
      if (vcpu == 0) asm volatile("ud2");
      break;
    case Workload::kBlk:
    case Workload::kEcho:
    case Workload::kNetEcho:
    case Workload::kSearch:
    case Workload::kOltp:
    case Workload::kVirtioBad:
      if (vcpu == 0 && !RunIo()) Exit(abi::kExitWorkloadFailed);
      break;
    case Workload::kReboot:
    case Workload::kPowerOff:
    case Workload::kPanic:
      if (vcpu == 0) {
        if (config.workload == Workload::kReboot) {
          LineWriter().Str("rehome-guest: rebooting").Flush();
          OutB(abi::kResetPort, abi::kResetValue);
        } else if (config.workload == Workload::kPowerOff) {
          LineWriter().Str("rehome-guest: powering off").Flush();
          OutW(abi::kPowerOffPort, abi::kPowerOffValue);
        } else {  // what Linux's pvpanic driver does: read the supported events, report a panic
          const uint8_t events = InB(abi::kPvPanicPort);
          LineWriter().Str("rehome-guest: panicking through pvpanic, events=").Dec(events).Flush();
          if ((events & abi::kPvPanicPanicked) != 0) OutB(abi::kPvPanicPort, abi::kPvPanicPanicked);
        }
        // The host stops the vCPUs; a host without the device (QEMU microvm has no power-off
        // register) leaves the guest here: report that rather than hang.
        const uint64_t t0 = SysGetTicks();
        while (SysGetTicks() - t0 < 1000) SysYield();
        LineWriter().Str("rehome-guest: the host ignored the request").Flush();
        Exit(abi::kExitWorkloadFailed);
      }
      break;
    case Workload::kIdle:
      break;
  }
}

void PrintResults() {
  if (config.workload == Workload::kCounter) {
    for (uint32_t v = 0; v < cpu_count; ++v) {
      const abi::CounterReport& r = CounterLastReport(v);
      LineWriter w;
      w.Str("rehome-guest: vcpu=").Dec(v).Str(" step=").Dec(r.step).Str(" digest=");
      for (int j = 0; j < 4; ++j) w.Hex64(r.digest[j]);
      w.Flush();
    }
    LineWriter()
        .Str("rehome-guest: counter done cpus=")
        .Dec(cpu_count)
        .Str(" steps=")
        .Dec(config.steps)
        .Flush();
  } else if (config.workload == Workload::kPio) {
    LineWriter().Str("rehome-guest: pio done steps=").Dec(config.steps).Flush();
  } else if (config.workload == Workload::kIdle || config.workload == Workload::kFault) {
    LineWriter().Str("rehome-guest: idle done cpus=").Dec(cpu_count).Flush();
  }  // the virtio workloads printed their done line already
}

}  // namespace
}  // namespace rehome::guest

extern "C" {

[[noreturn]] void UserMain(uint64_t start_info, uint64_t) {
  using namespace rehome::guest;
  const auto* info = reinterpret_cast<const HvmStartInfo*>(static_cast<uintptr_t>(start_info));
  CopyCommandLine(info);
  FindRamEnd(info);
  rsdp_paddr = info->rsdp_paddr;
  LineWriter error;
  error.Str("rehome-guest: bad command line: ");
  if (!ParseCommandLine(cmdline, &config, &error) || !ChooseCpus(info, &error)) {
    error.Flush();
    Exit(rehome::abi::kExitBadCommandLine);
  }
  LineWriter banner;
  banner.Str("rehome-guest: cpus=").Dec(cpu_count).Str(" workload=");
  banner.Str(WorkloadName(config.workload)).Str(" seed=").Dec(config.seed);
  banner.Str(" steps=").Dec(config.steps).Str(" report_every=").Dec(config.report_every);
  banner.Flush();

  __atomic_store_n(&started, 1, __ATOMIC_RELEASE);
  for (uint32_t i = 1; i < cpu_count; ++i) {
    if (SysStartAp(apic_ids[i], i) != 0) {
      LineWriter().Str("rehome-guest: cannot start apic id ").Dec(apic_ids[i]).Flush();
      Exit(rehome::abi::kExitPanic);
    }
  }
  const uint64_t t0 = SysGetTicks();
  while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < cpu_count) {
    if (SysGetTicks() - t0 > kApStartTimeoutTicks) {
      LineWriter()
          .Str("rehome-guest: only ")
          .Dec(started)
          .Str(" of ")
          .Dec(cpu_count)
          .Str(" cpus started")
          .Flush();
      Exit(rehome::abi::kExitPanic);
    }
    SysYield();
  }

  RunShare(0);
  __atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
  WaitForAll(&finished);
  PrintResults();
  Exit(rehome::abi::kExitSuccess);
}

[[noreturn]] void UserApMain(uint64_t vcpu_index, uint64_t) {
  using namespace rehome::guest;
  __atomic_add_fetch(&started, 1, __ATOMIC_ACQ_REL);
  RunShare(static_cast<uint32_t>(vcpu_index));
  __atomic_add_fetch(&finished, 1, __ATOMIC_ACQ_REL);
  SysExitTask();
}

}  // extern "C"
