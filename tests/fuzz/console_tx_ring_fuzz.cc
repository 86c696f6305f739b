// tests/fuzz/console_tx_ring_fuzz.cc: libFuzzer target for L0's side of the virtio-console
// transmit ring (kvm-l0/console_tx_ring.h), whose positions a hostile L1 may set to anything.
//
// Input: a sequence of operations on one ring: the L1's legitimate calls (WriteAt, Publish), a
// forged published or consumed position or header field written straight into the shared
// mapping (as a compromised L1 can), and L0's Take(). Checked: no memory error or UB; Take()
// returns at most the ring's capacity, exactly the published - consumed bytes when it succeeds,
// the bytes the L1 wrote when the positions are honest, and leaves consumed == published.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kvm-l0/console_tx_ring.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using rehome::fuzz::Check;

using rehome::ConsoleTxRing;
using rehome::ConsoleTxRingHeader;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  absl::StatusOr<ConsoleTxRing> made = ConsoleTxRing::Create();
  Check(made.ok());
  ConsoleTxRing& ring = *made;
  // The L1's own mapping of the same memfd: what a compromised L1 scribbles on.
  const size_t bytes = rehome::kConsoleTxRingDataOffset + rehome::kConsoleTxRingCapacity;
  void* shared = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ring.memfd(), 0);
  Check(shared != MAP_FAILED);
  auto* header = static_cast<ConsoleTxRingHeader*>(shared);

  uint64_t produce = 0;   // the honest L1's write position
  uint64_t l0_taken = 0;  // bytes L0 has taken (its own count)
  bool honest = true;     // no forged position so far
  std::string expected;   // bytes written and published, not yet taken (honest case)
  std::string written;    // bytes written since the last publish (honest case)
  for (int op = 0; op < 64 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0: {
        const std::string chunk =
            in.ConsumeBool() ? in.ConsumeRandomLengthString(4096)
                             : std::string(in.ConsumeIntegralInRange<size_t>(0, 1 << 20), 'x');
        if (ring.WriteAt(produce, chunk)) {
          produce += chunk.size();
          written += chunk;
        }
        break;
      }
      case 1:
        ring.Publish(produce);
        expected += written;
        written.clear();
        break;
      case 2:
        header->published.store(in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>()
                                                 : produce + in.ConsumeIntegral<uint32_t>());
        honest = false;
        break;
      case 3:
        header->consumed.store(in.ConsumeIntegral<uint64_t>());
        honest = false;
        break;
      case 4: {
        // Measured from what L0 took so far, never from the shared (forgeable) `consumed`.
        const uint64_t published = ring.published();
        absl::StatusOr<std::string> taken = ring.Take();
        if (taken.ok()) {
          Check(taken->size() <= rehome::kConsoleTxRingCapacity);
          Check(taken->size() == published - l0_taken);
          Check(ring.consumed() == published);
          l0_taken = published;
          if (honest) {
            Check(*taken == expected);
            expected.clear();
          }
        } else {
          Check(!honest);
        }
        break;
      }
    }
    if (in.ConsumeBool()) {  // forged header fields L0 must not depend on
      header->magic = in.ConsumeIntegral<uint64_t>();
      header->capacity = in.ConsumeIntegral<uint32_t>();
    }
  }
  munmap(shared, bytes);
  return 0;
}
