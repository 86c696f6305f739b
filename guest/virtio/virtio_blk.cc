// guest/virtio/virtio_blk.cc: polled virtio-blk driver (see virtio_blk.h). CPL3.
#include "guest/virtio/virtio_blk.h"

namespace rehome::guest {
namespace {

// Queue 0's rings (one page, reused across re-initialisation).
VirtqMemory blk_ring;

const char* TypeName(uint32_t type) {
  switch (type) {
    case kBlkTypeIn:
      return "read";
    case kBlkTypeOut:
      return "write";
    case kBlkTypeFlush:
      return "flush";
    case kBlkTypeGetId:
      return "get-id";
  }
  return "?";
}

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

bool VirtioBlk::Init(uint64_t base, LineWriter* err) {
  mmio_.set_base(base);
  if (!mmio_.Begin(kFeatureVersion1, err)) return false;
  if (!mmio_.SetupQueue(0, &blk_ring, &vq_, err)) return false;
  if (!mmio_.DriverOk(err)) return false;
  // capacity (u64, config offset 0) as two 32-bit reads, retried if the generation moved.
  uint32_t gen;
  do {
    gen = mmio_.Read(kRegConfigGeneration);
    capacity_ = mmio_.ConfigRead32(0) | static_cast<uint64_t>(mmio_.ConfigRead32(4)) << 32;
  } while (gen != mmio_.Read(kRegConfigGeneration));
  return true;
}

bool VirtioBlk::Submit(uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                       bool device_writes, LineWriter* err) {
  header_.type = type;
  header_.reserved = 0;
  header_.sector = sector;
  status_ = 0xff;
  VirtqDesc* d = vq_.desc();
  d[0] = {Addr(&header_), sizeof(header_), kDescFNext, static_cast<uint16_t>(len != 0 ? 1 : 2)};
  d[1] = {data, len, static_cast<uint16_t>(kDescFNext | (device_writes ? kDescFWrite : 0)), 2};
  d[2] = {Addr(&status_), 1, kDescFWrite, 0};
  vq_.Publish(0);
  mmio_.Notify(vq_);
  VirtqUsedElem used;
  // A polling driver: the used ring is the completion. InterruptStatus is read and acknowledged
  // only when a request fails (each register access is an exit to the host; an interrupt-driven
  // driver would do it in its handler), so a request costs the notification and nothing else.
  const WaitResult r = vq_.WaitUsed(kBlkTimeoutTicks, &used);
  if (r == WaitResult::kTimeout) {
    mmio_.AckInterrupts();
    err->Str("blk ").Str(TypeName(type)).Str(" sector=").Dec(sector).Str(": timeout, status=");
    err->Hex(mmio_.Status());
    return false;
  }
  const uint8_t status = __atomic_load_n(&status_, __ATOMIC_ACQUIRE);
  if (used.id != 0 || status != kBlkStatusOk) {
    err->Str("blk ").Str(TypeName(type)).Str(" sector=").Dec(sector).Str(": used id=");
    err->Dec(used.id).Str(" request status=").Dec(status);
    return false;
  }
  return true;
}

bool VirtioBlk::Read(uint64_t sector, void* buf, uint32_t len, LineWriter* err) {
  return Submit(kBlkTypeIn, sector, Addr(buf), len, true, err);
}

bool VirtioBlk::Write(uint64_t sector, const void* buf, uint32_t len, LineWriter* err) {
  return Submit(kBlkTypeOut, sector, Addr(buf), len, false, err);
}

bool VirtioBlk::Flush(LineWriter* err) { return Submit(kBlkTypeFlush, 0, 0, 0, false, err); }

uint32_t VirtioBlk::max_batch() const {
  const uint32_t by_queue = vq_.size() / 3;
  if (by_queue < 1) return 1;
  return by_queue < kBlkMaxBatch ? by_queue : kBlkMaxBatch;
}

bool VirtioBlk::WriteBatch(const BlkWrite* writes, uint32_t n, LineWriter* err) {
  const uint32_t depth = max_batch();
  while (n != 0) {
    const uint32_t k = n < depth ? n : depth;
    VirtqDesc* d = vq_.desc();
    for (uint32_t i = 0; i < k; ++i) {
      BlkRequestHeader& h = batch_headers_[i];
      h = {kBlkTypeOut, 0, writes[i].sector};
      batch_status_[i] = 0xff;
      const uint16_t head = static_cast<uint16_t>(3 * i);
      d[head] = {Addr(&h), sizeof(h), kDescFNext, static_cast<uint16_t>(head + 1)};
      d[head + 1] = {Addr(writes[i].buf), writes[i].len, kDescFNext,
                     static_cast<uint16_t>(head + 2)};
      d[head + 2] = {Addr(&batch_status_[i]), 1, kDescFWrite, 0};
      vq_.Publish(head);
    }
    mmio_.Notify(vq_);  // one notification for the whole batch
    uint32_t seen = 0;  // bit i: request i came back
    for (uint32_t done = 0; done < k; ++done) {
      VirtqUsedElem used;
      if (vq_.WaitUsed(kBlkTimeoutTicks, &used) == WaitResult::kTimeout) {
        mmio_.AckInterrupts();
        err->Str("blk write batch of ").Dec(k).Str(": timeout after ").Dec(done);
        err->Str(" completions, status=").Hex(mmio_.Status());
        return false;
      }
      const uint32_t i = used.id / 3;
      if (used.id % 3 != 0 || i >= k || (seen & (1u << i)) != 0) {
        err->Str("blk write batch: unexpected used id=").Dec(used.id);
        return false;
      }
      seen |= 1u << i;
    }
    for (uint32_t i = 0; i < k; ++i) {
      const uint8_t status = __atomic_load_n(&batch_status_[i], __ATOMIC_ACQUIRE);
      if (status != kBlkStatusOk) {
        err->Str("blk write sector=").Dec(writes[i].sector).Str(" (batched): request status=");
        err->Dec(status);
        return false;
      }
    }
    writes += k;
    n -= k;
  }
  return true;
}

bool VirtioBlk::GetId(char* id, LineWriter* err) {
  for (uint32_t i = 0; i <= kBlkIdBytes; ++i) id[i] = '\0';
  return Submit(kBlkTypeGetId, 0, Addr(id), kBlkIdBytes, true, err);
}

}  // namespace rehome::guest
