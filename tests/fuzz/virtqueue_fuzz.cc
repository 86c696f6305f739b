// tests/fuzz/virtqueue_fuzz.cc: libFuzzer target for the device side of a split virtqueue
// (vmm/virtio/virtqueue.h), whose every input is guest-controlled.
//
// Input: a queue layout (size, descriptor table, available and used ring addresses, each either
// inside the 64 KiB of fake guest RAM or anywhere), the initial guest RAM, then a sequence of
// operations: pop a chain and copy bytes from and to it at fuzzed offsets, complete it (PushUsed,
// PublishUsed), scribble on RAM between pops (as a running vCPU may), restore a fuzzed saved
// state, or decode a fuzzed state record. Checked: no memory error or UB (ASan+UBSan), every
// popped chain has the lengths Pop() promises, and copies stay within them.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "vmm/guest_memory_view.h"
#include "vmm/state_codec.h"
#include "vmm/virtio/virtqueue.h"

namespace {

using rehome::fuzz::Check;

using rehome::FlatGuestMemoryView;
using rehome::virtio::Virtqueue;

constexpr uint64_t kRamBytes = 64 << 10;

uint64_t Address(FuzzedDataProvider& in) {
  // Mostly inside RAM (and aligned now and then), sometimes anywhere.
  if (in.ConsumeBool()) return in.ConsumeIntegral<uint64_t>();
  uint64_t gpa = in.ConsumeIntegralInRange<uint64_t>(0, kRamBytes + 64);
  if (in.ConsumeBool()) gpa &= ~uint64_t{15};
  return gpa;
}

void UseChain(FuzzedDataProvider& in, const FlatGuestMemoryView& mem, Virtqueue& vq,
              const Virtqueue::Chain& chain) {
  uint64_t readable = 0, writable = 0;
  bool seen_writable = false;
  for (const Virtqueue::Descriptor& d : chain.descriptors) {
    Check(!(seen_writable && !d.write));  // readable descriptors come first
    seen_writable = seen_writable || d.write;
    (d.write ? writable : readable) += d.len;
    Check(mem.HostAddress(d.addr, d.len) != nullptr || d.len == 0);
  }
  Check(readable == chain.readable_len && writable == chain.writable_len);
  Check(chain.head < vq.size());
  std::vector<uint8_t> buffer(in.ConsumeIntegralInRange<size_t>(0, 4096));
  const uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 70000);
  const absl::Status read = rehome::virtio::CopyFromChain(mem, chain, offset, buffer);
  Check(read.ok() == (offset + buffer.size() <= chain.readable_len));
  const absl::Status written = rehome::virtio::CopyToChain(mem, chain, offset, buffer);
  Check(written.ok() == (offset + buffer.size() <= chain.writable_len));
  (void)vq.PushUsed(mem, in.ConsumeBool() ? chain.head : in.ConsumeIntegral<uint16_t>(),
                    in.ConsumeIntegral<uint32_t>());
  if (in.ConsumeBool()) (void)vq.PublishUsed(mem);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<uint8_t>& ram = rehome::fuzz::ZeroedRam(kRamBytes);
  FlatGuestMemoryView mem(ram);

  Virtqueue vq;
  vq.set_deferred_publication(in.ConsumeBool());
  (void)vq.set_size(in.ConsumeBool() ? uint16_t{1} << in.ConsumeIntegralInRange(0, 9)
                                     : in.ConsumeIntegral<uint16_t>());
  (void)vq.set_desc_gpa(Address(in));
  (void)vq.set_avail_gpa(Address(in));
  (void)vq.set_used_gpa(Address(in));
  const std::vector<uint8_t> initial =
      in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, kRamBytes));
  std::copy(initial.begin(), initial.end(), ram.begin());
  (void)vq.Enable(mem);

  for (int op = 0; op < 64 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0: {
        absl::StatusOr<std::optional<Virtqueue::Chain>> chain = vq.Pop(mem);
        if (chain.ok() && chain->has_value()) UseChain(in, mem, vq, **chain);
        break;
      }
      case 1:  // the guest writes RAM meanwhile
        rehome::fuzz::GuestWrites(in, ram);
        break;
      case 2: {
        Virtqueue::State state;
        state.size = in.ConsumeIntegral<uint16_t>();
        state.ready = in.ConsumeBool();
        state.desc_gpa = Address(in);
        state.avail_gpa = Address(in);
        state.used_gpa = Address(in);
        state.last_avail_idx = in.ConsumeIntegral<uint16_t>();
        state.used_idx = in.ConsumeIntegral<uint16_t>();
        const Virtqueue::State before = vq.SaveState();
        if (!vq.RestoreState(state, mem).ok()) Check(vq.SaveState() == before);
        break;
      }
      case 3: {
        const std::vector<uint8_t> record =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
        rehome::StateReader reader(record, "virtqueue");
        const Virtqueue::State decoded = Virtqueue::DecodeState(reader);
        if (reader.Finish().ok()) {
          rehome::StateWriter writer(0);
          Virtqueue::EncodeState(decoded, writer);
          std::vector<uint8_t> again = writer.Finish();
          again.erase(again.begin());  // the writer's version byte
          Check(again == record);
        }
        break;
      }
      case 4:
        if (in.ConsumeBool()) {
          vq.Disable();
        } else {
          (void)vq.Enable(mem);
        }
        break;
    }
  }
  return 0;
}
