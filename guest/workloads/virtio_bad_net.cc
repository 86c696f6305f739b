// guest/workloads/virtio_bad_net.cc: the virtio-net cases of the `virtio-bad` workload (see
// io_workloads.h and docs/guest-abi.md): a deliberately hostile virtio-net driver. Each case
// submits one malformed chain (a transmit loop, a buffer outside guest RAM, an oversized frame, a
// receive buffer outside RAM or too small), waits for the device's reaction (receive cases need
// frames from the host to arrive: up to 2 s), reports whether DEVICE_NEEDS_RESET was set, then
// resets and re-initialises the device and checks that a normal frame is transmitted. vCPU 0
// only, CPL3.
#include "guest/kernel/serial.h"
#include "guest/user/syscall.h"
#include "guest/virtio/virtio_net.h"
#include "guest/workloads/io_workloads.h"

namespace rehome::guest {
namespace {

constexpr uint64_t kTxReactionTicks = 50;   // 200 ms at 250 Hz
constexpr uint64_t kRxReactionTicks = 500;  // 2 s: the host must send something
constexpr uint32_t kOversize = 1600;        // > the 1518-byte maximum frame

enum class Case { kTxLoop, kTxBadAddr, kTxOversize, kRxBadAddr, kRxSmall };
constexpr Case kCases[] = {Case::kTxLoop, Case::kTxBadAddr, Case::kTxOversize, Case::kRxBadAddr,
                           Case::kRxSmall};

alignas(64) uint8_t scratch[2048];
VirtioNet nic;

const char* Name(Case c) {
  switch (c) {
    case Case::kTxLoop:
      return "net-tx-loop";
    case Case::kTxBadAddr:
      return "net-tx-bad-addr";
    case Case::kTxOversize:
      return "net-tx-oversize";
    case Case::kRxBadAddr:
      return "net-rx-bad-addr";
    case Case::kRxSmall:
      return "net-rx-small";
  }
  return "?";
}

bool IsReceive(Case c) { return c == Case::kRxBadAddr || c == Case::kRxSmall; }

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

void SubmitBad(Case c) {
  Virtqueue& q = IsReceive(c) ? nic.rx_queue() : nic.tx_queue();
  VirtqDesc* d = q.desc();
  for (uint32_t i = 0; i < sizeof(scratch); ++i) scratch[i] = 0;
  switch (c) {
    case Case::kTxLoop:  // header -> frame -> header -> ...
      d[0] = {Addr(scratch), kNetHeaderBytes, kDescFNext, 1};
      d[1] = {Addr(scratch + 64), 60, kDescFNext, 0};
      break;
    case Case::kTxBadAddr:
      d[0] = {kOutsideRam, kNetHeaderBytes + 60, 0, 0};
      break;
    case Case::kTxOversize:
      d[0] = {Addr(scratch), kNetHeaderBytes + kOversize, 0, 0};
      break;
    case Case::kRxBadAddr:
      d[0] = {kOutsideRam, kNetBufferBytes, kDescFWrite, 0};
      break;
    case Case::kRxSmall:  // no frame fits in 16 bytes with the 12-byte header
      d[0] = {Addr(scratch), 16, kDescFWrite, 0};
      break;
  }
  q.Publish(0);
  nic.transport().Notify(q);
}

// Waits until the device sets NEEDS_RESET or uses the buffer, or the case's time passes.
bool NeedsReset(Case c) {
  Virtqueue& q = IsReceive(c) ? nic.rx_queue() : nic.tx_queue();
  const uint64_t limit = IsReceive(c) ? kRxReactionTicks : kTxReactionTicks;
  const uint64_t start = SysGetTicks();
  for (;;) {
    if ((nic.transport().Status() & kStatusNeedsReset) != 0 || q.HasUsed()) break;
    if (SysGetTicks() - start > limit) break;
  }
  const uint32_t status = nic.transport().Status();
  nic.transport().AckInterrupts();
  return (status & kStatusNeedsReset) != 0;
}

// A broadcast frame of the IEEE local experimental EtherType, which hosts ignore.
bool CheckWorks(LineWriter* err) {
  uint8_t frame[60] = {};
  for (int i = 0; i < 6; ++i) frame[i] = 0xff;
  for (int i = 0; i < 6; ++i) frame[6 + i] = nic.mac()[i];
  frame[12] = 0x88;
  frame[13] = 0xb5;
  return nic.Send(frame, sizeof(frame), 2500, err) && nic.Flush(2500, err);
}

}  // namespace

bool RunVirtioBadNet(uint64_t base, uint64_t* cases, LineWriter* err) {
  for (const Case c : kCases) {
    if (!nic.Init(base, err, /*post_rx=*/false)) return false;
    SubmitBad(c);
    const bool needs_reset = NeedsReset(c);
    LineWriter()
        .Str("rehome-guest: virtio-bad case=")
        .Str(Name(c))
        .Str(" needs_reset=")
        .Dec(needs_reset ? 1 : 0)
        .Flush();
    // Reset and re-initialise, then check that the device works again.
    if (!nic.Init(base, err) || !CheckWorks(err)) {
      err->Str(" (after case=").Str(Name(c)).Str(")");
      return false;
    }
    ++*cases;
  }
  return true;
}

}  // namespace rehome::guest
