// tests/fuzz/mmio_transport_fuzz.cc: libFuzzer target for the virtio-mmio transport and the
// devices behind it (vmm/virtio/mmio_transport.h, blk_device.h, console_device.h): everything a
// guest can do to them.
//
// Input: the device (virtio-blk over a 32 KiB memfd image, or virtio-console), then a sequence
// of operations on 64 KiB of fake guest RAM: register and config-space reads and writes of any
// size and offset, a canned driver initialisation (so that the rings are reachable quickly: the
// queues lie at kQueueBase + 0x3000 * q), RAM writes (descriptor tables, rings, requests), queue
// notifications, host kicks and console input, deferred publication, a save -> decode -> restore
// round trip into a second transport, and the restore of a fuzzed state record. Checked: no
// memory error or UB (ASan+UBSan); the saved state always restores; a state that decodes
// re-encodes to the same bytes.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "base/unique_fd.h"
#include "tests/fuzz/fuzz_util.h"
#include "vmm/guest_memory_view.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/console_device.h"
#include "vmm/virtio/mmio_transport.h"

namespace {

using rehome::fuzz::Check;

using rehome::FlatGuestMemoryView;
using rehome::UniqueFd;
using rehome::virtio::MmioTransport;
using T = MmioTransport;

constexpr uint64_t kRamBytes = 64 << 10;
constexpr uint64_t kQueueBase = 0x1000;
constexpr uint64_t kQueueStride = 0x3000;  // descriptor table, avail ring, used ring: 4 KiB each

int ImageFd() {
  static const int fd = [] {
    const int f = memfd_create("fuzz-disk", MFD_CLOEXEC);
    Check(f >= 0 && ftruncate(f, 64 * 512) == 0);
    return f;
  }();
  return fd;
}

std::unique_ptr<MmioTransport> MakeTransport(bool blk, const FlatGuestMemoryView& mem) {
  std::unique_ptr<rehome::virtio::VirtioDevice> device;
  if (blk) {
    absl::StatusOr<std::unique_ptr<rehome::virtio::BlkDevice>> made =
        rehome::virtio::BlkDevice::Create(UniqueFd(dup(ImageFd())), false, "fuzz");
    Check(made.ok());
    device = std::move(*made);
  } else {
    device = std::make_unique<rehome::virtio::ConsoleDevice>([](std::string_view) {});
  }
  return std::make_unique<MmioTransport>(
      std::move(device), mem, [](bool) {}, [](std::string_view) {});
}

void Write32(MmioTransport& t, uint64_t offset, uint32_t value) {
  uint8_t bytes[4];
  std::memcpy(bytes, &value, 4);
  t.Write(offset, bytes);
}

// What a guest driver does before it uses the queues (virtio 1.1 section 3.1.1).
void Initialise(MmioTransport& t, FuzzedDataProvider& in, int queues) {
  Write32(t, T::kRegStatus, 0);
  Write32(t, T::kRegStatus, 1 | 2);
  for (uint32_t sel = 0; sel < 2; ++sel) {
    Write32(t, T::kRegDeviceFeaturesSel, sel);
    uint8_t offered[4];
    t.Read(T::kRegDeviceFeatures, offered);
    uint32_t value;
    std::memcpy(&value, offered, 4);
    Write32(t, T::kRegDriverFeaturesSel, sel);
    Write32(t, T::kRegDriverFeatures, value & in.ConsumeIntegral<uint32_t>());
  }
  Write32(t, T::kRegStatus, 1 | 2 | 8);
  for (int q = 0; q < queues; ++q) {
    const uint64_t base = kQueueBase + kQueueStride * static_cast<uint64_t>(q);
    Write32(t, T::kRegQueueSel, static_cast<uint32_t>(q));
    Write32(t, T::kRegQueueNum, 1u << in.ConsumeIntegralInRange(0, 8));
    Write32(t, T::kRegQueueDescLow, static_cast<uint32_t>(base));
    Write32(t, T::kRegQueueDriverLow, static_cast<uint32_t>(base + 0x1000));
    Write32(t, T::kRegQueueDeviceLow, static_cast<uint32_t>(base + 0x2000));
    Write32(t, T::kRegQueueReady, 1);
  }
  Write32(t, T::kRegStatus, 1 | 2 | 8 | 4);
}

uint64_t RegisterOffset(FuzzedDataProvider& in) {
  static constexpr uint64_t kKnown[] = {
      T::kRegMagic,           T::kRegVersion,           T::kRegDeviceId,
      T::kRegVendorId,        T::kRegDeviceFeatures,    T::kRegDeviceFeaturesSel,
      T::kRegDriverFeatures,  T::kRegDriverFeaturesSel, T::kRegQueueSel,
      T::kRegQueueNumMax,     T::kRegQueueNum,          T::kRegQueueReady,
      T::kRegQueueNotify,     T::kRegInterruptStatus,   T::kRegInterruptAck,
      T::kRegStatus,          T::kRegQueueDescLow,      T::kRegQueueDescHigh,
      T::kRegQueueDriverLow,  T::kRegQueueDriverHigh,   T::kRegQueueDeviceLow,
      T::kRegQueueDeviceHigh, T::kRegConfigGeneration};
  if (in.ConsumeBool()) return in.PickValueInArray(kKnown);
  return in.ConsumeIntegralInRange<uint64_t>(0, T::kMmioSize + 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<uint8_t>& ram = rehome::fuzz::ZeroedRam(kRamBytes);
  FlatGuestMemoryView mem(ram);
  const bool blk = in.ConsumeBool();
  std::unique_ptr<MmioTransport> transport = MakeTransport(blk, mem);
  const int queues = transport->device().queue_count();

  for (int op = 0; op < 256 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 8)) {
      case 0: {  // register or config write of any size
        const uint64_t offset = RegisterOffset(in);
        const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(
            in.ConsumeBool() ? 4 : in.ConsumeIntegralInRange<size_t>(0, 9));
        transport->Write(offset, bytes);
        break;
      }
      case 1: {
        std::vector<uint8_t> bytes(in.ConsumeBool() ? 4 : in.ConsumeIntegralInRange<size_t>(0, 9));
        transport->Read(RegisterOffset(in), bytes);
        break;
      }
      case 2:
        Initialise(*transport, in, queues);
        break;
      case 3:  // the guest writes RAM
        rehome::fuzz::GuestWrites(in, ram);
        break;
      case 4:
        Write32(*transport, T::kRegQueueNotify, in.ConsumeIntegralInRange<uint32_t>(0, 2));
        break;
      case 5:
        if (!blk) {
          const std::string input = in.ConsumeRandomLengthString(512);
          static_cast<rehome::virtio::ConsoleDevice&>(transport->device()).QueueInput(input);
        }
        (void)transport->Kick(in.ConsumeIntegralInRange(-1, 2));
        break;
      case 6:
        transport->SetDeferredPublication(in.ConsumeBool());
        transport->PublishUsed();
        break;
      case 7: {  // failover: the state restores into a fresh transport, which takes over
        const std::vector<uint8_t> saved = transport->SaveState();
        absl::StatusOr<MmioTransport::State> decoded = MmioTransport::DecodeState(saved);
        Check(decoded.ok());
        Check(MmioTransport::EncodeState(*decoded) == saved);
        std::unique_ptr<MmioTransport> next = MakeTransport(blk, mem);
        Check(next->RestoreState(saved).ok());
        transport = std::move(next);
        break;
      }
      case 8: {  // a forged state record (a hostile committed journal)
        const std::vector<uint8_t> record =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 512));
        absl::StatusOr<MmioTransport::State> decoded = MmioTransport::DecodeState(record);
        if (decoded.ok()) Check(MmioTransport::EncodeState(*decoded) == record);
        std::unique_ptr<MmioTransport> next = MakeTransport(blk, mem);
        if (next->RestoreState(record).ok()) transport = std::move(next);
        break;
      }
    }
  }
  return 0;
}
