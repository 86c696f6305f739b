// vmm/l1/l1_fault_probes.cc: the sandbox probes and adversarial writes of an L1 (tests only).
#include "vmm/l1/l1_fault_probes.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "vmm/l1/l1_sandbox.h"

namespace rehome {
namespace {

// How long a hostile value stays in place for L0 to read: well below the tests' hang timeout,
// well above L0's polling periods (console drain 50 ms at most; exits every few µs).
constexpr absl::Duration kHold = absl::Milliseconds(25);

[[noreturn]] void Report(ExitChannelHeader& h, const std::string& note) {
  const size_t n = std::min<size_t>(note.size(), kExitReasonMax);
  std::memcpy(h.failure, note.data(), n);
  h.failure_len.store(static_cast<uint32_t>(n), std::memory_order_release);
  const std::string line = absl::StrCat("rehome L1: ", note, "\n");
  (void)!write(2, line.data(), line.size());
  KillL1Now();
}

// `ok`: the call returned success. Refusals are the errors a sandbox gives (EPERM, EACCES, ESRCH
// for an invisible process, ENOENT for a path outside the empty root, ENOSYS); anything else
// means the kernel let the call through.
[[noreturn]] void Outcome(ExitChannelHeader& h, const char* what, bool ok) {
  const int error = errno;
  const bool refused = !ok && (error == EPERM || error == EACCES || error == ESRCH ||
                               error == ENOENT || error == ENOSYS || error == EAFNOSUPPORT);
  if (refused) Report(h, absl::StrCat("sandbox probe ", what, ": refused (", strerror(error), ")"));
  Report(h, absl::StrCat(
                "SANDBOX BREACH: ", what,
                ok ? " succeeded" : absl::StrCat(" was let through (", strerror(error), ")")));
}

[[noreturn]] void Probe(L1Fault fault, const ProbeTargets& t) {
  ExitChannelHeader& h = t.channel->header();
  switch (fault) {
    case L1Fault::kTryOpenKvm: {
      const int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
      Outcome(h, "open /dev/kvm", fd >= 0);
    }
    case L1Fault::kTryOpenHostFile: {
      const int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
      Outcome(h, "open /etc/passwd", fd >= 0);
    }
    case L1Fault::kTrySocket: {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      Outcome(h, "socket(AF_INET)", fd >= 0);
    }
    case L1Fault::kTryPtraceL0: {
      const long rc = ptrace(PTRACE_SEIZE, t.l0_pid, nullptr, nullptr);
      Outcome(h, "ptrace L0", rc == 0);
    }
    case L1Fault::kTrySignalL0: {
      const int rc = kill(t.l0_pid, SIGCONT);  // harmless if it ever arrives
      Outcome(h, "kill(L0, SIGCONT)", rc == 0);
    }
    case L1Fault::kTryExec: {
      char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                            const_cast<char*>("exit 0"), nullptr};
      execve("/bin/sh", argv, environ);
      Outcome(h, "execve /bin/sh", false);
    }
    case L1Fault::kTryWriteL0Memory: {
      uint64_t value = 0x5a5a5a5a5a5a5a5a;
      uint64_t target = 0;  // some address of this binary: the same one in L0 without ASLR
      const iovec local{&value, sizeof(value)};
      const iovec remote{&target, sizeof(target)};
      const ssize_t n = process_vm_writev(t.l0_pid, &local, 1, &remote, 1, 0);
      Outcome(h, "process_vm_writev into L0", n >= 0);
    }
    case L1Fault::kTryExecMemory: {
      void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
      Outcome(h, "mmap PROT_WRITE|PROT_EXEC", p != MAP_FAILED);
    }
    case L1Fault::kTryFork: {
      const pid_t pid = fork();
      if (pid == 0) _exit(0);
      if (pid > 0) waitpid(pid, nullptr, 0);
      Outcome(h, "fork", pid > 0);
    }
    case L1Fault::kTryRaisePrivilege: {
      const int rc = setuid(0);
      Outcome(h, "setuid(0)", rc == 0 && geteuid() == 0);
    }
    default:
      Report(h, absl::StrCat("unknown sandbox probe ", static_cast<uint32_t>(fault)));
  }
}

// Every header field L0 reads, hostile; then an exit (the note is read as the failure).
[[noreturn]] void ScribbleHeader(const ProbeTargets& t) {
  ExitChannelHeader& h = t.channel->header();
  // A note that is not text: control characters, an escape sequence, invalid UTF-8.
  static constexpr char kHostile[] = "\x1b[2J\n\r\xff\xfe\xc3\x28 \x00 L1 note";
  for (size_t i = 0; i < kExitReasonMax; ++i) h.failure[i] = kHostile[i % (sizeof(kHostile) - 1)];
  h.failure_len.store(0xffffffffu, std::memory_order_release);
  h.l1_state.store(0xdeadbeefu, std::memory_order_release);
  h.promote_ack.store(~0ull, std::memory_order_release);
  h.l1_cpu.store(0xffffffffu, std::memory_order_relaxed);
  h.l1_sleeping.store(0x55u, std::memory_order_relaxed);
  h.work_progress.store(~0ull, std::memory_order_relaxed);
  h.sandbox_layers.store(0xffffffffu, std::memory_order_release);
  // Another owner with waiters, not dead: the kernel no longer marks the notice at this L1's
  // death (the owner differs), so L0 must learn of it from the pidfd.
  h.exit_thread_notice.store(FUTEX_WAITERS | FUTEX_TID_MASK, std::memory_order_release);
  for (uint32_t v = 0; v < t.channel->slot_count(); ++v) {
    ExitSlot& slot = t.channel->slot(v);
    std::memset(static_cast<void*>(&slot.response), 0xff, sizeof(slot.response));
    slot.response_seq.store(~0ull, std::memory_order_release);
    t.channel->SignalResponse(v);
  }
  t.channel->SignalAck();
  absl::SleepFor(kHold);
  KillL1Now();
}

// Journal fields L0 reads (LatestCommit, CommittedAnswer, Progress), hostile one after another,
// each for kHold; the original values are put back before the exit, so that the standby restores
// the true last commit (this tests L0's reading, not the loss of a journal, which an active L1
// can always cause: docs/security.md).
[[noreturn]] void ScribbleJournal(const ProbeTargets& t) {
  DeviceJournal& j = *t.journal;
  DeviceJournal::Header& header = j.RawHeader();
  const uint32_t current = header.current.load();
  const uint64_t commits = header.commits.load();
  std::span<uint8_t> committed = j.RawBuffer(static_cast<int>(current));
  std::span<uint8_t> other = j.RawBuffer(static_cast<int>(1 - current));
  uint8_t saved[16];
  std::memcpy(saved, committed.data(), sizeof(saved));
  header.current.store(7);  // no such buffer
  absl::SleepFor(kHold);
  header.current.store(current);
  header.commits.store(~0ull);
  const uint32_t huge = 0xffffffffu;
  std::memcpy(committed.data(), &huge, 4);  // length past the capacity
  absl::SleepFor(kHold);
  const uint32_t full = static_cast<uint32_t>(j.capacity());
  std::memcpy(committed.data(), &full, 4);  // the whole capacity, with the old checksum
  absl::SleepFor(kHold);
  // A payload with a valid checksum that is no commit record: every vCPU count, no data.
  uint8_t payload[64] = {2};           // the record version byte, then zeros ...
  std::memset(payload + 41, 0xff, 4);  // ... and a vCPU count of 2^32 - 1
  const uint32_t len = sizeof(payload);
  const uint64_t number = commits + 1;
  uLong crc = crc32(0, nullptr, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(&number), sizeof(number));
  crc = crc32(crc, payload, len);
  const uint32_t crc32v = static_cast<uint32_t>(crc);
  std::memcpy(other.data(), &len, 4);
  std::memcpy(other.data() + 4, &crc32v, 4);
  std::memcpy(other.data() + 8, &number, 8);
  std::memcpy(other.data() + 16, payload, len);
  header.current.store(1 - current);
  absl::SleepFor(kHold);
  std::memcpy(committed.data(), saved, sizeof(saved));
  header.current.store(current);
  header.commits.store(commits);
  KillL1Now();
}

// Console ring positions L0 reads, hostile; left as they are at the exit (L0 must repair them
// before the next active L1 writes the ring).
[[noreturn]] void ScribbleConsoleRing(const ProbeTargets& t) {
  if (t.console_ring == nullptr) Report(t.channel->header(), "no console ring to scribble on");
  auto* header = reinterpret_cast<ConsoleTxRingHeader*>(t.console_ring->RawHeader());
  const uint64_t consumed = header->consumed.load();
  header->published.store(consumed + kConsoleTxRingCapacity + 1);  // more than the ring holds
  absl::SleepFor(kHold);
  header->published.store(consumed == 0 ? ~0ull : consumed - 1);  // behind what L0 took
  absl::SleepFor(kHold);
  header->consumed.store(~0ull / 2);  // far ahead: would make the next writer skip its bytes
  header->published.store(~0ull);
  KillL1Now();
}

// The death notice marked as if this L1 had died, while it lives on (and beats) for kHold: L0
// must fence it as a crashed L1 (SIGKILL), not wait for it.
[[noreturn]] void ForgeDeathNotice(const ProbeTargets& t) {
  t.channel->header().exit_thread_notice.store(FUTEX_OWNER_DIED | FUTEX_WAITERS,
                                               std::memory_order_release);
  syscall(SYS_futex, &t.channel->header().exit_thread_notice, FUTEX_WAKE, 1, nullptr, nullptr, 0);
  absl::SleepFor(kHold);
  KillL1Now();
}

}  // namespace

bool IsTakenFaultProbe(L1Fault fault) {
  const auto f = static_cast<uint32_t>(fault);
  return (f >= 16 && f < 32) || fault == L1Fault::kScribbleHeader ||
         fault == L1Fault::kScribbleJournal || fault == L1Fault::kScribbleConsoleRing ||
         fault == L1Fault::kScribblePostedRanges || fault == L1Fault::kScribbleDeathNotice;
}

void RunTakenFaultProbe(L1Fault fault, const ProbeTargets& targets) {
  switch (fault) {
    case L1Fault::kScribbleHeader:
      ScribbleHeader(targets);
    case L1Fault::kScribbleJournal:
      ScribbleJournal(targets);
    case L1Fault::kScribbleConsoleRing:
      ScribbleConsoleRing(targets);
    case L1Fault::kScribbleDeathNotice:
      ForgeDeathNotice(targets);
    case L1Fault::kScribblePostedRanges: {
      // Read by L0 only when it promotes this L1: one bad range and none may be taken.
      ExitChannelHeader& h = targets.channel->header();
      for (uint32_t i = 0; i < kMaxPostedRanges; ++i) {
        h.posted_ranges[i] = PostedRange{PostedRange::kPio, 0xffffffffu, ~0ull - i};
      }
      h.posted_range_count.store(kMaxPostedRanges, std::memory_order_release);
      return;
    }
    default:
      Probe(fault, targets);
  }
}

bool IsAnswerScribble(L1Fault fault) {
  return fault == L1Fault::kScribbleResponseLengths || fault == L1Fault::kScribbleResponseData ||
         fault == L1Fault::kScribbleResponseSeq || fault == L1Fault::kScribbleResponseAction;
}

void ScribbleAnswer(L1Fault fault, ExitResponse* r) {
  switch (fault) {
    case L1Fault::kScribbleResponseLengths:
      r->data_len = 0xffffffffu;
      r->output_len = kExitOutputMax + 1;
      r->reason_len = 0x80000000u;
      break;
    case L1Fault::kScribbleResponseData:
      r->data_len = r->data_len == 0 ? kExitDataMax : 0;
      break;
    case L1Fault::kScribbleResponseSeq:
      r->seq += 1;
      break;
    case L1Fault::kScribbleResponseAction:
      r->action = 0x7fffffffu;
      r->output_stream = 9;
      break;
    default:
      return;
  }
  r->crc = ResponseCrc(*r);  // well-formed as far as the checksum goes
}

}  // namespace rehome
