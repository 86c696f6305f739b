// guest/workloads/virtio_bad_workload.cc: the `virtio-bad` workload (see io_workloads.h and
// docs/guest-abi.md): a deliberately hostile virtio-blk driver for the host's robustness tests
// (the virtio-net cases are in virtio_bad_net.cc).
// Each case submits one malformed request, waits briefly for the device's reaction, reports
// whether DEVICE_NEEDS_RESET was set, then resets and re-initialises the device and checks it
// with a normal write and read. vCPU 0 only, CPL3.
#include "guest/kernel/serial.h"
#include "guest/user/syscall.h"
#include "guest/virtio/virtio_blk.h"
#include "guest/virtio/virtio_net.h"
#include "guest/workloads/block_pattern.h"
#include "guest/workloads/io_workloads.h"

namespace rehome::guest {
namespace {

namespace bp = blockpattern;

constexpr uint64_t kReactionTicks = 50;  // 200 ms at 250 Hz
constexpr uint32_t kSlack = 5;           // avail-jump: size + kSlack ahead

enum class Case { kLoop, kBadAddr, kLenOverflow, kAvailJump };
constexpr Case kCases[] = {Case::kLoop, Case::kBadAddr, Case::kLenOverflow, Case::kAvailJump};

alignas(4096) uint8_t scratch[bp::kBlockSize];
alignas(4096) uint8_t check_buf[bp::kBlockSize];
VirtioBlk blk;

const char* Name(Case c) {
  switch (c) {
    case Case::kLoop:
      return "loop";
    case Case::kBadAddr:
      return "bad-addr";
    case Case::kLenOverflow:
      return "len-overflow";
    case Case::kAvailJump:
      return "avail-jump";
  }
  return "?";
}

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// Builds and submits the malformed request of case `c`.
void SubmitBad(Case c) {
  Virtqueue& q = blk.queue();
  VirtqDesc* d = q.desc();
  BlkRequestHeader* h = blk.header();
  // loop and len-overflow are writes, so that every descriptor of the chain is device-readable
  // and the loop (or the length) is the request's only defect.
  const bool write = c == Case::kLoop || c == Case::kLenOverflow;
  *h = {write ? kBlkTypeOut : kBlkTypeIn, 0, 0};
  *blk.status_byte() = 0xff;
  const uint64_t hdr = Addr(h);
  const uint64_t status = Addr(blk.status_byte());
  const uint16_t wnext = kDescFNext | kDescFWrite;
  d[0] = {hdr, sizeof(*h), kDescFNext, 1};
  d[2] = {status, 1, kDescFWrite, 0};
  switch (c) {
    case Case::kLoop:  // 0 -> 1 -> 0 -> ...
      d[1] = {Addr(scratch), bp::kBlockSize, kDescFNext, 0};
      break;
    case Case::kBadAddr:  // data outside guest RAM
      d[1] = {kOutsideRam, bp::kBlockSize, wnext, 2};
      break;
    case Case::kLenOverflow:  // device-readable data of 0xffffffff bytes
      d[1] = {Addr(scratch), 0xffffffffu, kDescFNext, 2};
      break;
    case Case::kAvailJump:  // a valid request, but avail.idx moves size + kSlack ahead
      d[1] = {Addr(scratch), bp::kBlockSize, wnext, 2};
      break;
  }
  if (c == Case::kAvailJump) {
    VirtqMemory* m = q.mem();
    for (uint32_t i = 0; i < q.size(); ++i) m->avail.ring[i] = 0;
    const uint16_t idx = static_cast<uint16_t>(q.avail_idx() + q.size() + kSlack);
    __atomic_store_n(&m->avail.idx, idx, __ATOMIC_RELEASE);
  } else {
    q.Publish(0);
  }
  blk.transport().Notify(q);
}

// Waits until the device sets NEEDS_RESET or uses a buffer, or kReactionTicks pass.
bool NeedsReset() {
  const uint64_t start = SysGetTicks();
  uint32_t status = 0;
  for (;;) {
    status = blk.transport().Status();
    if ((status & kStatusNeedsReset) != 0 || blk.queue().HasUsed()) break;
    if (SysGetTicks() - start > kReactionTicks) break;
  }
  status = blk.transport().Status();
  blk.transport().AckInterrupts();
  return (status & kStatusNeedsReset) != 0;
}

// Writes a pattern block to block index `lba` and reads it back.
bool CheckWorks(uint64_t seed, uint64_t iteration, uint64_t lba, LineWriter* err) {
  bp::Fill(scratch, seed, iteration, lba);
  if (!blk.Write(lba * bp::kSectorsPerBlock, scratch, bp::kBlockSize, err)) return false;
  if (!blk.Read(lba * bp::kSectorsPerBlock, check_buf, bp::kBlockSize, err)) return false;
  return VerifyBlock(check_buf, seed, iteration, lba);
}

// The virtio-blk cases against the device at `base`; adds them to *cases.
bool RunBlkCases(uint64_t base, uint64_t seed, uint64_t* cases, LineWriter* err) {
  if (!blk.Init(base, err) || blk.capacity_sectors() < 64 * bp::kSectorsPerBlock) {
    err->Str(" (init, or disk under 256 KiB)");
    return false;
  }
  uint64_t n = 0;
  for (const Case c : kCases) {
    SubmitBad(c);
    const bool needs_reset = NeedsReset();
    LineWriter()
        .Str("rehome-guest: virtio-bad case=")
        .Str(Name(c))
        .Str(" needs_reset=")
        .Dec(needs_reset ? 1 : 0)
        .Flush();
    // Reset and re-initialise, then check that the device works again.
    if (!blk.Init(base, err) || !CheckWorks(seed, n, 1 + n, err)) {
      err->Str(" (after case=").Str(Name(c)).Str(")");
      return false;
    }
    ++n;
  }
  *cases += n;
  return true;
}

}  // namespace

bool RunVirtioBad(const VirtioDevices& devices, uint64_t seed) {
  LineWriter err;
  err.Str("rehome-guest: virtio-bad: ");
  VirtioMmio found_blk, found_net;
  const bool has_blk = FindVirtioDevice(devices.regions, devices.count, kVirtioIdBlock, &found_blk);
  const bool has_net = FindVirtioDevice(devices.regions, devices.count, kVirtioIdNet, &found_net);
  if (!has_blk && !has_net) {
    err.Str("no virtio-blk or virtio-net device (needs a virtio_mmio.device= entry)").Flush();
    return false;
  }
  uint64_t n = 0;
  if (has_blk && !RunBlkCases(found_blk.base(), seed, &n, &err)) {
    err.Flush();
    return false;
  }
  if (has_net && !RunVirtioBadNet(found_net.base(), &n, &err)) {
    err.Flush();
    return false;
  }
  LineWriter().Str("rehome-guest: virtio-bad done cases=").Dec(n).Flush();
  return true;
}

}  // namespace rehome::guest
