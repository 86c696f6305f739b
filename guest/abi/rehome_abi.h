// guest/abi/rehome_abi.h: the contract between the rehome test guest and its hosts (rehome and
// QEMU microvm). Included by freestanding guest code and by host code, so it uses only
// <stdint.h> and constexpr values. Any change here is a change to docs/guest-abi.md.
#ifndef REHOME_GUEST_ABI_REHOME_ABI_H_
#define REHOME_GUEST_ABI_REHOME_ABI_H_

#include <stdint.h>

namespace rehome::abi {

// ---- Port I/O map (guest CPL3 code has IOPL=3 and may use every port below) ----
// 8250 UART, COM1. Output is the guest console.
inline constexpr uint16_t kCom1Port = 0x3f8;
// Debug exit, QEMU isa-debug-exit compatible (iobase=0xf4, iosize=4): a 32-bit (or 8-bit)
// write of V ends the VM. rehome exits with status V & 0xff; QEMU exits with (V << 1) | 1.
inline constexpr uint16_t kDebugExitPort = 0xf4;
// PC reset control register: writing kResetValue requests a system reset.
inline constexpr uint16_t kResetPort = 0xcf9;
inline constexpr uint8_t kResetValue = 0x06;
// Power off: a 16-bit write of kPowerOffValue (SLP_EN, sleep type 0) to kPowerOffPort, the ACPI
// PM1a control register of QEMU's pc and q35 machines. rehome treats it as the guest powering
// off (on_poweroff applies); QEMU microvm has no device there and ignores it.
inline constexpr uint16_t kPowerOffPort = 0x604;
inline constexpr uint16_t kPowerOffValue = 0x2000;
// pvpanic (QEMU's ISA pvpanic device, iobase 0x505): a read returns the events the host
// supports (kPvPanicPanicked); an 8-bit write of kPvPanicPanicked says the guest's kernel
// panicked, and rehome ends the VM as a guest crash. Linux's pvpanic driver finds it in the DSDT
// ("QEMU0001") of a Linux guest; QEMU microvm has no device there and ignores it.
inline constexpr uint16_t kPvPanicPort = 0x505;
inline constexpr uint8_t kPvPanicPanicked = 0x01;
// Counter workload report port: a 32-bit write of the guest-physical address of a
// CounterReport (below 4 GiB, 64-byte aligned). QEMU has no device here; writes are ignored.
inline constexpr uint16_t kCounterReportPort = 0x7e0;
// Exit-cost benchmark port: the `pio` workload writes one byte here per step. Hosts treat it as
// a sink (rehome counts the writes; QEMU has no device here and ignores them).
inline constexpr uint16_t kPioBenchPort = 0x7e8;

// ---- Guest exit status values written to kDebugExitPort ----
inline constexpr uint32_t kExitSuccess = 0;         // every workload step completed
inline constexpr uint32_t kExitWorkloadFailed = 1;  // a guest-side self check failed
inline constexpr uint32_t kExitCpuException = 2;    // unexpected CPU exception (printed first)
inline constexpr uint32_t kExitBadCommandLine = 3;  // unknown workload or malformed key=value
inline constexpr uint32_t kExitPanic = 4;           // guest kernel assertion

// ---- Counter workload report record (in guest RAM, written before the port write) ----
inline constexpr uint32_t kCounterReportMagic = 0x31545052;  // "RPT1" little-endian
inline constexpr uint64_t kCounterReportFinal = 1;           // flags bit 0: last report
struct CounterReport {
  uint32_t magic;      // kCounterReportMagic
  uint32_t vcpu;       // reporting vCPU index (0 = BSP), dense 0..cpus-1
  uint64_t step;       // number of chain steps completed by this vCPU
  uint64_t digest[4];  // counter::Digest() after `step` steps
  uint64_t flags;      // kCounterReportFinal on the vCPU's last report
  uint64_t reserved;   // zero
};
static_assert(sizeof(CounterReport) == 64, "CounterReport is 64 bytes");

// ---- Command line keys understood by the guest (space-separated key=value) ----
//   workload=counter|idle|pio|blk|echo|netecho|search|oltp|virtio-bad|reboot|poweroff|panic
//                            (default idle: print banner, exit kExitSuccess; pio: vCPU 0 does
//                            `steps` 1-byte writes to kPioBenchPort, then exits;
//                            blk/echo/netecho/search/oltp/virtio-bad: vCPU 0 drives the virtio
//                            devices below, kExitWorkloadFailed on a failed check;
//                            reboot/poweroff/panic: vCPU 0 resets, powers off or reports a
//                            panic through pvpanic)
//   virtio_mmio.device=<size>@<base>:<irq>   one virtio-mmio (version 2) transport, repeatable
//                            (Linux syntax; sizes/base decimal or 0x hex, optional K/M/G)
//   seed=<u64>              (default 1)
//   steps=<u64>             per-vCPU chain steps; 0 = run forever (default 0)
//   report_every=<u64>      steps between reports (default 100000)
//   cpus=<n>                number of vCPUs to start (default: ACPI MADT if present, else 1)
//   ip=<a.b.c.d>            the guest's IPv4 address on its virtio-net device (netecho)
//   port=<1..65535>         the UDP port netecho (default 7) or oltp (default 8082) serves
//   cache_kib=<n>           search: the index block cache in KiB (default 4096, >= 4)
//   io_depth=<1..16>        oltp: page writes in flight at once (checkpoints, write-behind;
//                            default 16; 1 = one request at a time)
inline constexpr uint64_t kDefaultReportEvery = 100000;
inline constexpr uint32_t kDefaultGuestIp = 0x0a00020f;   // 10.0.2.15
inline constexpr uint16_t kDefaultNetEchoPort = 7;        // the echo service
inline constexpr uint64_t kDefaultSearchCacheKib = 4096;  // search: 1024 cached 4 KiB blocks

}  // namespace rehome::abi

#endif  // REHOME_GUEST_ABI_REHOME_ABI_H_
