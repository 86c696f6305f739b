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

bool VirtioBlk::GetId(char* id, LineWriter* err) {
  for (uint32_t i = 0; i <= kBlkIdBytes; ++i) id[i] = '\0';
  return Submit(kBlkTypeGetId, 0, Addr(id), kBlkIdBytes, true, err);
}

}  // namespace rehome::guest
