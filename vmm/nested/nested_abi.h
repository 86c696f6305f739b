// vmm/nested/nested_abi.h: the contract between L0 and the agent that runs L2 inside an L1 VM
// in nested mode (docs/nested.md). L0 owns three kinds of shared memory and maps them into
// every L1 VM at fixed guest-physical addresses, which the L1's e820 map marks reserved and the
// agent maps through /dev/mem:
//   kControlGpa  the L1's own control region (kControlRegionSize): a ControlPage (commands from
//                L0, status and heartbeat from the agent), a transfer area (the L2 state L0
//                extracted, for a takeover) and the console ring (L2's COM1 output);
//   kJournalGpa  the commit journal (state-extract/device_journal.h) shared by all L1s: the
//                active agent commits L2's CPU and device state after every exit;
//   kL2RamGpa    L2's RAM: one memfd, the same pages in every L1.
// Single writer per field (L0 or the agent, as marked); published with release stores and
// read with acquire loads. Header-only; the types are trivially copyable views of shared memory.
#ifndef REHOME_VMM_NESTED_NESTED_ABI_H_
#define REHOME_VMM_NESTED_NESTED_ABI_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace rehome::nested_abi {

inline constexpr uint64_t kControlGpa = 0x1'0000'0000;  // 4 GiB
inline constexpr uint64_t kControlRegionSize = 2ull << 20;
inline constexpr uint64_t kTransferOffset = 0x1000;       // in the control region
inline constexpr uint64_t kTransferSize = 0xff000;        // up to 1 MiB
inline constexpr uint64_t kConsoleRingOffset = 0x100000;  // the second MiB
inline constexpr uint64_t kConsoleRingSize = 0x100000;
inline constexpr uint64_t kJournalGpa = kControlGpa + kControlRegionSize;
inline constexpr uint64_t kJournalRegionSize = 2ull << 20;  // the journal memfd is this big
inline constexpr uint64_t kL2RamGpa = 0x2'0000'0000;        // 8 GiB
inline constexpr uint64_t kMaxL2Ram = 3ull << 30;           // one region below the MMIO hole

inline constexpr uint64_t kControlMagic = 0x31304c54434e4852ull;  // "RHNCTL01"
inline constexpr uint32_t kControlVersion = 2;                    // 2 added vmrun_return_rip

// L0 -> agent.
enum class Command : uint32_t {
  kNone = 0,
  kBoot = 1,      // start L2 from BootParams (the first active L1)
  kTakeOver = 2,  // rebuild L2 from the transfer area + the journal and run it
  kPanic = 3,     // fault injection: panic the L1 kernel when L2 is next parked
  kHang = 4,      // fault injection: stop heartbeats and L2 when L2 is next parked
  kCrash = 5,     // fault injection: the agent exits when L2 is next parked
  kStop = 6,      // stop L2 and exit
  // fault injection: the agent exits in the middle of L2's next I/O exit, after handling it and
  // completing its instruction, before committing the result (L2 is parked at the exit's
  // pre-handling commit then)
  kCrashInExit = 7,
};

// Agent -> L0.
enum class AgentState : uint32_t {
  kStarting = 0,
  kReady = 1,     // /dev/kvm opened, the regions mapped: a standby
  kRunning = 2,   // L2 runs
  kFinished = 3,  // L2 ended: result and exit_status are set
  kFailed = 4,    // the agent hit an error (message says which)
  kDied = 5,      // set by the agent's watcher when the agent process died
};

// How L2 ended (AgentState::kFinished): the ExitOutcome action and the guest's status.
struct L2Result {
  uint32_t action = 0;  // ExitOutcome::Action
  int32_t exit_status = 0;
};

struct BootParams {
  uint64_t l2_ram_size = 0;
  uint64_t entry32 = 0;     // PVH entry of the kernel L0 loaded into L2 RAM
  uint64_t start_info = 0;  // its hvm_start_info
  uint32_t cpus = 1;
  uint32_t cmdline_len = 0;  // L2's command line (the agent arms the oracle from it)
  char cmdline[2048] = {};
};

struct alignas(64) ControlPage {
  // Written once by L0 before the L1 boots.
  uint64_t magic;
  uint32_t version;
  uint32_t l1_id;
  // L0 -> agent: a command is published by storing command then incrementing command_seq.
  std::atomic<uint32_t> command;
  uint32_t pad0;
  std::atomic<uint64_t> command_seq;
  uint64_t transfer_len;  // kTakeOver: bytes of RHSTATE in the transfer area
  // Agent -> L0.
  std::atomic<uint64_t> command_done;  // the last command_seq the agent acted on
  std::atomic<uint64_t> heartbeat;
  std::atomic<uint32_t> agent_state;
  // 1: L2 has not run since journal commit parked_commit: the journal's last commit (that one,
  // or the one after it that the agent is writing) is L2's exact state.
  std::atomic<uint32_t> parked;
  std::atomic<uint64_t> parked_commit;      // the journal's commit count at that point
  std::atomic<uint64_t> l2_exits;           // exits the agent handled for L2
  std::atomic<uint64_t> console_published;  // L2 console bytes in the ring (absolute count)
  L2Result result;
  uint64_t agent_pid;
  char message[256];  // the agent's last status or error line, NUL-terminated
  BootParams boot;    // L0 -> agent, before kBoot
  // Agent -> L0, before kReady: the linear address in the L1 kernel of the instruction after
  // kvm_amd's VMRUN (vmm/nested/vmrun_return.h), where L0 captures L2 at each exit; 0: unknown.
  std::atomic<uint64_t> vmrun_return_rip;
};
static_assert(sizeof(ControlPage) <= kTransferOffset, "ControlPage fits its page");

inline void SetMessage(ControlPage* page, std::string_view text) {
  const size_t n =
      text.size() < sizeof(page->message) - 1 ? text.size() : sizeof(page->message) - 1;
  std::memcpy(page->message, text.data(), n);
  page->message[n] = 0;
}

}  // namespace rehome::nested_abi

#endif  // REHOME_VMM_NESTED_NESTED_ABI_H_
