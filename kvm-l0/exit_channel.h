// kvm-l0/exit_channel.h: the shared-memory exit channel between L0 and one L1 process
// (docs/exit-channel.md). L0 owns the memfd; the L1 maps it too. One slot per vCPU, so several
// vCPUs can have exits in flight at once. Per slot, L0 writes the request and publishes it by
// storing its sequence number (release); the L1 writes the response and publishes it the same
// way. Eventfds carry the wake-ups (one request eventfd L0->L1, one response eventfd per slot
// L1->L0); the sequence numbers carry the truth, so spurious or lost wake-ups are harmless.
// Everything an L1 writes is untrusted: L0 copies a response out and validates it (sequence,
// CRC32, ranges) before using it.
// A side signals an eventfd only when the other side says it sleeps (`l1_sleeping`,
// `l0_sleeping`): a side that spins on the sequence numbers needs no wake-up, and the eventfd
// write is a system call on the exit's critical path. Both sides use the store-fence-load
// pattern (WakeL1IfSleeping / L1 about to sleep; WakeL0IfSleeping / L0 about to sleep), so one
// of them always sees the other: a wake-up is never lost.
//
// Thread-safety: a slot is written by one L0 thread (its vCPU) and one L1 thread; the header's
// atomics may be used from any thread of either process.
#ifndef REHOME_KVM_L0_EXIT_CHANNEL_H_
#define REHOME_KVM_L0_EXIT_CHANNEL_H_

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "base/unique_fd.h"

namespace rehome {

inline constexpr uint64_t kExitChannelMagic = 0x314c454e4e414843ull;  // "CHANNEL1"
// 2: work_progress; 3: console; 4: sleeping flags; 5: posted-write ranges; 6: sandbox_layers;
// 7: the available-index snapshot of a verified item and heartbeat_ns; 8: exit_thread_notice.
inline constexpr uint32_t kExitChannelVersion = 8;
inline constexpr uint32_t kExitDataMax = 4096;    // PIO/MMIO payload per exit
inline constexpr uint32_t kExitOutputMax = 4096;  // console bytes produced by one exit
inline constexpr uint32_t kExitReasonMax = 240;
inline constexpr uint32_t kMaxChannelSlots = 256;
inline constexpr uint32_t kMaxPostedRanges = 8;
inline constexpr uint32_t kMaxAvailSnapshot = 8;

// ExitChannelHeader::l1_sleeping: the L1's exit thread spins (awake), may block in poll
// (asleep), or may block and asks L0 to make it SCHED_FIFO before waking it (a confined L1
// cannot raise its own priority: vmm/l1/l1_scheduling.h).
inline constexpr uint32_t kL1Awake = 0;
inline constexpr uint32_t kL1Asleep = 1;
inline constexpr uint32_t kL1AsleepRaiseMe = 2;

// An L1's lifecycle as it reports it in the header.
enum class L1State : uint32_t { kStarting = 0, kStandby = 1, kActive = 2, kFailed = 3 };

// Verified execution: one virtqueue's available index as L0 read it from guest RAM when it
// posted an item (ExitRequest::avail_snapshot). Plain data.
struct AvailIndexSnapshot {
  uint64_t gpa = 0;  // the index's guest-physical address (available ring + 2)
  uint16_t index = 0;
  uint16_t reserved[3] = {0, 0, 0};
};

// The guest exit L0 forwards. Plain data.
struct ExitRequest {
  // kConsoleInput: not a guest exit but host input for the virtio console (data = the bytes),
  // posted by L0 on the host slot (index = vCPU count) and answered and committed like an exit.
  // kDeviceKick (verified execution): process the virtio devices' queues, posted by L0 on a
  // queue notification KVM signalled on an ioeventfd (addr = its QueueNotify register, for
  // reports), or again (addr 0) when a replica's item stopped at its effects budget with
  // requests still queued.
  // kNetInput (verified execution): frames arrived in the network receive ring: process the
  // virtio-net queues (no data; posted on the host slot like console input).
  enum Kind : uint32_t { kPio = 1, kMmio = 2, kConsoleInput = 3, kDeviceKick = 4, kNetInput = 5 };
  uint64_t seq = 0;  // global exit sequence number, unique across vCPUs and L1s
  uint32_t vcpu = 0;
  uint32_t kind = kPio;
  uint32_t is_write = 0;
  uint32_t size = 0;   // access size in bytes
  uint32_t count = 1;  // PIO repeat count (string I/O)
  uint32_t data_len = 0;
  uint64_t addr = 0;  // port or guest-physical address
  uint64_t rip = 0;   // vCPU state at the exit (from KVM's sync regs)
  uint64_t rflags = 0;
  // Scheduling hint: the host CPU the posting L0 thread ran on (sched_getcpu; ~0u unknown). An
  // L1 on the same CPU does not spin for the next exit: it would keep that thread off the CPU.
  uint32_t host_cpu = ~0u;
  // Verified execution with virtio-net: the low 32 bits of the receive ring's produced position
  // when L0 posted the item. A replica delivers only frames before it (the one it reconstructs
  // above its own receive position), so that every replica, and a recruit executing the item
  // later, sees the same frames. 0 otherwise.
  uint32_t net_rx_limit = 0;
  // Verified execution: the available index of each ready virtqueue (the addresses the replicas
  // agreed on with the previous item's effects, EffectType::kAvailWatch) as L0 read them when it
  // posted this item. A replica takes chains only up to these (GuestMemoryView::AvailableIndex),
  // so that replicas running at different moments while the guest's vCPUs add chains, and a
  // recruit executing the item later, all take the same ones. 0 entries otherwise; an L1 ignores
  // a count above kMaxAvailSnapshot.
  uint32_t avail_snapshot_count = 0;
  AvailIndexSnapshot avail_snapshot[kMaxAvailSnapshot];
  uint8_t data[kExitDataMax];  // write payload (data_len bytes); ignored for reads
};

// The L1's answer. Plain data; `crc` covers every other field's used bytes.
struct ExitResponse {
  enum Action : uint32_t {
    kContinue = 0,
    kGuestExit = 1,
    kReset = 2,
    kShutdown = 3,
    kGuestCrash = 4,
    kFatal = 5,
    kCheckFailed = 6,
  };
  static constexpr uint32_t kLastAction = kCheckFailed;
  uint64_t seq = 0;  // the request's seq
  uint32_t action = kContinue;
  int32_t exit_status = 0;
  uint32_t data_len = 0;       // read data (size * count bytes for reads, else 0)
  uint32_t output_len = 0;     // console bytes for L0 to write, exactly once
  uint32_t output_stream = 0;  // 0: COM1 serial output, 1: virtio-console output
  uint32_t reason_len = 0;
  uint32_t crc = 0;
  uint8_t data[kExitDataMax];
  uint8_t output[kExitOutputMax];
  char reason[kExitReasonMax];
};

// CRC32 (zlib) of a response's fields and used bytes, excluding `crc` itself.
uint32_t ResponseCrc(const ExitResponse& response);
// OK when `response` is a well-formed answer to `request`; InvalidArgument naming the defect.
absl::Status ValidateResponse(const ExitRequest& request, const ExitResponse& response);

struct alignas(64) ExitSlot {
  std::atomic<uint64_t> request_seq;  // L0 publishes a request (release)
  ExitRequest request;
  alignas(64) std::atomic<uint64_t> response_seq;  // L1 publishes a response (release)
  std::atomic<uint32_t> l0_sleeping;  // L0: 1 while its vCPU thread may block for the response
  ExitResponse response;
};

// An address range whose writes the L1 accepts as posted (docs/exit-channel.md, "Posted
// writes"): L0 may resume the writing vCPU as soon as the request is published and collect the
// answer later. Plain data.
struct PostedRange {
  enum Space : uint32_t { kPio = 1, kMmio = 2 };
  uint32_t space = kPio;
  uint32_t length = 0;  // bytes (ports), >= 1
  uint64_t base = 0;
};

struct alignas(64) ExitChannelHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t slot_count;
  std::atomic<uint64_t> heartbeat;        // the L1 increments it every heartbeat period
  std::atomic<uint64_t> work_progress;    // the L1's exit thread increments it during long work
  std::atomic<uint32_t> l1_state;         // L1State
  std::atomic<uint32_t> failure_len;      // >0: the L1 reported its own failure
  char failure[kExitReasonMax];           // written before failure_len (release)
  std::atomic<uint64_t> promote_request;  // L0: "become active as generation N"
  std::atomic<uint64_t> promote_ack;      // L1: "active as generation N" (state restored)
  std::atomic<uint64_t> quit_request;     // L0: planned retirement (non-zero: exit cleanly)
  std::atomic<uint32_t> fault_request;    // L0: fault injection for tests (L1Fault)
  std::atomic<uint32_t> l1_sleeping;      // L1: kL1Asleep* while its exit thread may block
  std::atomic<uint32_t> l1_cpu;           // L1: host CPU its exit thread last ran on, +1 (0: ?)
  // L1, before it reports kStandby: the ranges whose writes it accepts as posted. L0 reads them
  // when it promotes the L1 (and validates them: see ReadPostedRanges).
  std::atomic<uint32_t> posted_range_count;  // written after the ranges (release)
  // L1, before it reports kStandby: the L1SandboxLayer bits it applied to itself (a report,
  // not a proof: L0 uses it for the strict policy and for queries only).
  std::atomic<uint32_t> sandbox_layers;
  PostedRange posted_ranges[kMaxPostedRanges];
  // L1: CLOCK_MONOTONIC nanoseconds of its latest heartbeat, stored before the counter moves.
  // L0 dates the beat by it within what it saw itself (recovery/heartbeat_watch.h).
  std::atomic<int64_t> heartbeat_ns;
  // L1 exit thread, at start-up: its death notice (base/death_notice.h). The kernel marks it as
  // the thread dies, before the process's memory is torn down: L0 learns of a crash without
  // waiting for the pidfd (docs/exit-channel.md).
  std::atomic<uint32_t> exit_thread_notice;
  // L0's monitor, every heartbeat period, for the active L1: bit c set = a vCPU thread runs or
  // last ran on host CPU c (0..31); 0 = unknown. A hint: the L1 does not spin for the guest's
  // next request on such a CPU (it would keep the vCPU thread from posting it).
  std::atomic<uint32_t> vcpu_cpus;
};

// How a failure note written by an L1's SIGSYS handler begins ("seccomp: system call #41 is not
// allowed"): L0 resolves the number to the call's name.
inline constexpr std::string_view kSeccompNotePrefix = "seccomp: system call #";

// The confinement layers of an L1 (docs/security.md), as bits of
// ExitChannelHeader::sandbox_layers.
enum L1SandboxLayer : uint32_t {
  kLayerSeccomp = 1u << 0,         // seccomp-bpf allow-list (vmm/l1/l1_seccomp.cc)
  kLayerNoNewPrivs = 1u << 1,      // PR_SET_NO_NEW_PRIVS
  kLayerNoCapabilities = 1u << 2,  // every capability set empty, the bounding set too
  kLayerUnprivilegedId = 1u << 3,  // a non-root uid/gid (when rehome runs as root)
  kLayerUserNamespace = 1u << 4,   // not the host's user namespace
  kLayerMountNamespace = 1u << 5,  // not the host's mount namespace
  kLayerEmptyRoot = 1u << 6,       // the root directory is an empty, read-only directory
  kLayerPidNamespace = 1u << 7,    // its own pid namespace (it is pid 1 there)
  kLayerNetNamespace = 1u << 8,    // a network namespace without interfaces (lo down)
  kLayerIpcNamespace = 1u << 9,    // not the host's IPC namespace
  kLayerUtsNamespace = 1u << 10,   // not the host's UTS namespace
  kLayerRlimits = 1u << 11,        // RLIMIT_NOFILE, RLIMIT_CORE 0, RLIMIT_NPROC
};
inline constexpr uint32_t kAllSandboxLayers = (1u << 12) - 1;
// "seccomp, no_new_privs, ..." for the bits set in `layers` ("none" when empty).
std::string SandboxLayerNames(uint32_t layers);

// What an L1 wrote for a human (its failure note, an answer's reason) as one printable ASCII
// line: every byte outside 0x20..0x7e becomes '?'. The text is the L1's, so it is untrusted:
// it must not break a log line, a terminal or a JSON encoder (which refuses invalid UTF-8).
std::string PrintableL1Text(std::string_view text);

// The posted-write ranges an L1 published in `header`, validated: none (an empty vector) unless
// the count is at most kMaxPostedRanges and every range has a known space, a non-zero length and
// no overflow (port ranges within 0..0xffff). An L1 cannot make L0 post anything else.
std::vector<PostedRange> ReadPostedRanges(const ExitChannelHeader& header);
// Whether a `size`-byte access at `addr` (kind ExitRequest::kPio or kMmio) lies entirely inside
// one of `ranges`.
bool InPostedRange(const std::vector<PostedRange>& ranges, uint32_t kind, uint64_t addr,
                   uint64_t size);

// Faults an L1 injects into itself on request (tests and `__org.rehome_inject-fault`).
enum class L1Fault : uint32_t {
  kNone = 0,
  kGarbageAnswer = 1,    // answer the next exit with a malformed response
  kAssert = 2,           // report an assertion failure, then abort
  kDieBeforeCommit = 3,  // handle the next exit, then die before committing it
  kDieAfterCommit = 4,   // commit the next exit, then die before answering
  kHang = 5,             // stop answering (and heartbeating) forever
  kFailAnswer = 6,       // answer the next exit with a check failure (committed like any answer)
  // Well-formed wrong results (verified execution must catch them; an unverified L1 passes
  // them on): the device state committed after the next exit is wrong but restorable; the next
  // read exit is answered with wrong data.
  kWrongState = 7,
  kWrongReadData = 8,
  // The exit thread blocks in a system call forever while the heartbeat thread beats on (the
  // campaigns' undetected hang: an L1 stuck in `read` on a corrupted fd between exits).
  kBlock = 9,
  // The exit thread ends alone (its process lives on, the heartbeat thread beats on): the pidfd
  // never becomes readable; only the exit thread's death notice tells.
  kExitThreadExits = 10,
  // 11..15: reserved.
  // Sandbox probes (tests only; docs/security.md): the L1 tries something its sandbox must stop,
  // then writes the outcome as its failure note and exits, unless seccomp stopped it first
  // (vmm/l1/l1_fault_probes.cc).
  kTryOpenKvm = 16,         // open /dev/kvm
  kTryOpenHostFile = 17,    // open /etc/passwd
  kTrySocket = 18,          // create a socket
  kTryPtraceL0 = 19,        // ptrace L0
  kTrySignalL0 = 20,        // send L0 a signal
  kTryExec = 21,            // execve /bin/sh
  kTryWriteL0Memory = 22,   // process_vm_writev into L0
  kTryExecMemory = 23,      // map memory writable and executable
  kTryFork = 24,            // start a process
  kTryRaisePrivilege = 25,  // setuid(0), then regain a capability
  // Adversarial L1 (tests only): the L1 writes hostile values into a shared structure that L0
  // reads, keeps them there for a while, then exits; L0 must survive and fail over.
  kScribbleHeader = 32,           // every header field L0 reads
  kScribbleResponseLengths = 33,  // next answer: lengths past their maxima (valid CRC)
  kScribbleResponseData = 34,     // next answer: data_len that does not match the exit
  kScribbleResponseSeq = 35,      // next answer: another exit's seq
  kScribbleResponseAction = 36,   // next answer: unknown action and output stream
  kScribbleJournal = 37,          // journal header and buffer fields (restored before exiting)
  kScribbleConsoleRing = 38,      // console ring positions
  kScribblePostedRanges = 39,     // invalid posted-write ranges, read at the next promotion
  kScribbleDeathNotice = 40,      // its death notice marked while it lives on, then exits
};
// A fault request (ExitChannelHeader::fault_request) is the L1Fault in bits 0-7 and, in bits
// 8-31, how many exits the L1 handles before the fault applies to the next one ("at a chosen
// exit"; 0: the next exit).
inline constexpr uint32_t FaultRequest(L1Fault fault, uint32_t after_exits = 0) {
  return static_cast<uint32_t>(fault) | (std::min<uint32_t>(after_exits, 0xffffff) << 8);
}

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// One side's view of a channel: the mapping plus the eventfds. Move-only.
class ExitChannel final {
 public:
  // L0: a new channel (memfd + eventfds) for `slots` vCPUs.
  static absl::StatusOr<ExitChannel> Create(uint32_t slots);
  // L1: maps a channel created by L0 from inherited fds. Validates magic, version and size.
  static absl::StatusOr<ExitChannel> Attach(int memfd, int request_eventfd, int ack_eventfd,
                                            std::vector<int> response_eventfds);
  ExitChannel(ExitChannel&&) = default;
  ExitChannel& operator=(ExitChannel&&) = default;
  ExitChannel(const ExitChannel&) = delete;
  ExitChannel& operator=(const ExitChannel&) = delete;

  static size_t SizeFor(uint32_t slots);

  ExitChannelHeader& header() const { return *header_; }
  ExitSlot& slot(uint32_t i) const { return slots_[i]; }
  uint32_t slot_count() const { return slot_count_; }

  // Wake-ups (eventfd writes/reads; never block).
  void SignalRequest() const;
  void SignalResponse(uint32_t slot) const;
  void SignalAck() const;
  static void Drain(int eventfd);

  // L0, after publishing a request: signals the request eventfd only if the L1 said it sleeps
  // (first making it SCHED_FIFO if it asked: set_l1_thread).
  void WakeL1IfSleeping() const;
  // The same without the fence, for a request nobody waits for (a posted write): cheaper by a
  // cross-core round trip (the fence waits for the request's store to reach the L1's CPU), but
  // it can miss an L1 that is just going to sleep. Whoever later needs the answer must then
  // call WakeL1IfSleeping before waiting for it.
  void WakeL1IfSeenSleeping() const;
  // L0, after posting a control request (promote, fault, quit): signals the request eventfd
  // (first making the L1 SCHED_FIFO if it asked).
  void WakeL1ForControl() const;
  // L0: the L1 thread (host tid of its exit thread) that WakeL1* make SCHED_FIFO when the L1
  // asks (kL1AsleepRaiseMe); 0: never. The tid is L0's own record, never read from the channel.
  void set_l1_thread(pid_t tid) { l1_thread_ = tid; }
  // L1, after publishing slot `slot`'s response: signals its eventfd only if L0 said it sleeps.
  void WakeL0IfSleeping(uint32_t slot) const;
  // The sleeping side's half: store the flag, then a full fence, so that the caller's re-check
  // of the sequence numbers that follows cannot miss what the other side published before it
  // read the flag. Clear it (kL1Awake / `false`) after waking up.
  void SetL1Sleeping(uint32_t state) const;
  void SetL0Sleeping(uint32_t slot, bool sleeping) const;

  int memfd() const { return memfd_.get(); }
  int request_eventfd() const { return request_efd_.get(); }
  int ack_eventfd() const { return ack_efd_.get(); }
  int response_eventfd(uint32_t slot) const { return response_efds_[slot].get(); }

  // The L1's self-reported failure, or "" when none.
  std::string ReportedFailure() const;

 private:
  ExitChannel() = default;
  absl::Status Map(size_t size, bool initialise);

  UniqueFd memfd_;
  UniqueFd request_efd_;
  UniqueFd ack_efd_;
  std::vector<UniqueFd> response_efds_;
  MappedRegion mapping_;
  ExitChannelHeader* header_ = nullptr;
  ExitSlot* slots_ = nullptr;
  uint32_t slot_count_ = 0;
  pid_t l1_thread_ = 0;  // L0 side: see set_l1_thread
};

}  // namespace rehome

#endif  // REHOME_KVM_L0_EXIT_CHANNEL_H_
