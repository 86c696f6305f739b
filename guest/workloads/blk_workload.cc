// guest/workloads/blk_workload.cc: the `blk` workload (see io_workloads.h and docs/guest-abi.md):
// iteration i writes a pattern block at BlockIndex(seed, i), reads back the block of iteration
// i/2 (checked against its last writer), flushes every kFlushEvery iterations and, at the end,
// flushes and reads back every block written. vCPU 0 only, CPL3.
#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_blk.h"
#include "guest/workloads/block_pattern.h"
#include "guest/workloads/io_workloads.h"

namespace rehome::guest {
namespace {

namespace bp = blockpattern;

constexpr uint64_t kMinSectors = (16ull << 20) / kSectorSize;  // 16 MiB
constexpr uint64_t kMaxBlocks = 32768;                         // use at most 128 MiB
constexpr uint64_t kFlushEvery = 16;

alignas(4096) uint8_t write_buf[bp::kBlockSize];
alignas(4096) uint8_t read_buf[bp::kBlockSize];
alignas(4096) uint8_t expect_buf[bp::kBlockSize];
uint64_t last_writer[kMaxBlocks];  // iteration + 1 of the block's last write; 0 = never written
char device_id[kBlkIdBytes + 1];
VirtioBlk blk;

struct Counts {
  uint64_t writes = 0;
  uint64_t reads = 0;
  uint64_t flushes = 0;
};

bool Fail(LineWriter* err) {
  err->Flush();
  return false;
}

// Reads block `lba` and checks it against its last writer.
bool ReadAndVerify(uint64_t seed, uint64_t lba, Counts* c) {
  LineWriter err;
  err.Str("rehome-guest: blk: ");
  if (!blk.Read(lba * bp::kSectorsPerBlock, read_buf, bp::kBlockSize, &err)) return Fail(&err);
  ++c->reads;
  return VerifyBlock(read_buf, seed, last_writer[lba] - 1, lba);
}

}  // namespace

bool VerifyBlock(const uint8_t* got, uint64_t seed, uint64_t iteration, uint64_t lba) {
  bp::Fill(expect_buf, seed, iteration, lba);
  uint32_t off = 0;
  while (off < bp::kBlockSize && got[off] == expect_buf[off]) ++off;
  if (off == bp::kBlockSize) return true;
  LineWriter w;
  w.Str("rehome-guest: blk mismatch lba=").Dec(lba).Str(" want_iteration=").Dec(iteration);
  w.Str(" offset=").Dec(off).Str(" got_byte=").Hex(got[off]).Str(" want_byte=");
  w.Hex(expect_buf[off]);
  w.Flush();
  w.Str("rehome-guest: blk mismatch found magic=").Hex(bp::Get32(got));
  w.Str(" seed=").Dec(bp::Get64(got + 8)).Str(" iteration=").Dec(bp::Get64(got + 16));
  w.Str(" lba=").Dec(bp::Get64(got + 24));
  w.Str(" self_consistent=").Dec(bp::SelfConsistent(got) ? 1 : 0);
  w.Flush();
  return false;
}

bool RunBlk(const VirtioDevices& devices, uint64_t seed, uint64_t steps) {
  LineWriter err;
  err.Str("rehome-guest: blk: ");
  VirtioMmio found;
  if (!FindVirtioDevice(devices.regions, devices.count, kVirtioIdBlock, &found)) {
    err.Str("no virtio-blk device (needs a virtio_mmio.device= entry, disk >= 16 MiB)");
    return Fail(&err);
  }
  if (!blk.Init(found.base(), &err)) return Fail(&err);
  const uint64_t sectors = blk.capacity_sectors();
  if (sectors < kMinSectors) {
    err.Str("disk too small: ").Dec(sectors).Str(" sectors, need ").Dec(kMinSectors);
    return Fail(&err);
  }
  if (!blk.GetId(device_id, &err)) return Fail(&err);
  for (uint32_t i = 0; device_id[i] != '\0'; ++i) {
    if (device_id[i] < 0x20 || device_id[i] > 0x7e) device_id[i] = '?';
  }
  const uint64_t cap_blocks = sectors / bp::kSectorsPerBlock;
  const uint64_t blocks = cap_blocks < kMaxBlocks ? cap_blocks : kMaxBlocks;
  LineWriter()
      .Str("rehome-guest: blk device base=")
      .Hex(found.base())
      .Str(" capacity=")
      .Dec(sectors)
      .Str(" blocks_used=")
      .Dec(blocks)
      .Str(" id=")
      .Str(device_id)
      .Flush();

  Counts c;
  for (uint64_t i = 0; steps == 0 || i < steps; ++i) {
    const uint64_t lba = bp::BlockIndex(seed, i, blocks);
    bp::Fill(write_buf, seed, i, lba);
    if (!blk.Write(lba * bp::kSectorsPerBlock, write_buf, bp::kBlockSize, &err)) {
      return Fail(&err);
    }
    ++c.writes;
    last_writer[lba] = i + 1;
    if (!ReadAndVerify(seed, bp::BlockIndex(seed, i / 2, blocks), &c)) return false;
    if ((i + 1) % kFlushEvery == 0) {
      if (!blk.Flush(&err)) return Fail(&err);
      ++c.flushes;
    }
  }
  if (!blk.Flush(&err)) return Fail(&err);
  ++c.flushes;
  for (uint64_t lba = 0; lba < blocks; ++lba) {
    if (last_writer[lba] != 0 && !ReadAndVerify(seed, lba, &c)) return false;
  }
  LineWriter()
      .Str("rehome-guest: blk done steps=")
      .Dec(steps)
      .Str(" writes=")
      .Dec(c.writes)
      .Str(" reads=")
      .Dec(c.reads)
      .Str(" flushes=")
      .Dec(c.flushes)
      .Flush();
  return true;
}

}  // namespace rehome::guest
