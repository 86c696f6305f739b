// vmm/bus.h: the address-range registry that routes guest port I/O and MMIO accesses to
// devices. Two independent address spaces: port I/O (addresses 0..0xffff) and MMIO (64-bit).
// An access is routed to a device only if it lies entirely inside that device's range; any
// other access (unregistered, or straddling a range end) is "unhandled": reads return all-ones,
// writes are dropped, both are counted and logged with a rate limit. Never crashes on guest input.
// Thread-safety: all methods may be called concurrently (registry under an absl::Mutex, devices
// are called with the registry read-locked, so a device must not call Register on its own bus).
// BusDevice implementations must be thread-safe: several vCPU threads may access one device.
#ifndef REHOME_VMM_BUS_H_
#define REHOME_VMM_BUS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace rehome {

class BusDevice {
 public:
  virtual ~BusDevice();
  // `offset` is relative to the base the device was registered at; data.size() is the access
  // width (1, 2, 4 for port I/O; 1..8 for MMIO). Read fills every byte of `data`.
  virtual void Read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual std::string name() const = 0;
  // True when the device's writes may be posted (split mode, docs/exit-channel.md): a write
  // never produces anything the writing vCPU waits for (no VM-wide request such as exit or
  // reset, no console bytes, no state visible without a later exit), so L0 may resume the vCPU
  // before the L1 has handled the write. The L1 still handles posted writes in exit order, before
  // any later exit of any vCPU.
  virtual bool writes_posted() const { return false; }
};

enum class BusSpace { kPio, kMmio };

// A registered range whose device's writes may be posted.
struct PostedWriteRange {
  BusSpace space = BusSpace::kPio;
  uint64_t base = 0;
  uint64_t len = 0;
};

class Bus final {
 public:
  using LogSink = std::function<void(std::string_view)>;
  static constexpr uint64_t kPioSpaceSize = 0x10000;
  // Unhandled accesses logged per space before the log is thinned to powers of two.
  static constexpr uint64_t kLogFirstUnhandled = 8;

  Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Registers `device` at [base, base + len) in `space`. InvalidArgument (naming the range) for
  // len 0, a range that overflows or leaves the space, or one that overlaps a registered range;
  // InvalidArgument for a null device.
  absl::Status Register(BusSpace space, uint64_t base, uint64_t len,
                        std::shared_ptr<BusDevice> device);

  // The device whose range holds all of [addr, addr + len), with *offset = addr - base; nullptr
  // when none does.
  std::shared_ptr<BusDevice> Lookup(BusSpace space, uint64_t addr, uint64_t len,
                                    uint64_t* offset) const;

  void Read(BusSpace space, uint64_t addr, std::span<uint8_t> data);
  void Write(BusSpace space, uint64_t addr, std::span<const uint8_t> data);

  // Every registered range whose device says writes_posted(), port ranges first.
  std::vector<PostedWriteRange> PostedWriteRanges() const;

  uint64_t unhandled_reads(BusSpace space) const;
  uint64_t unhandled_writes(BusSpace space) const;

  // Where rate-limited messages about unhandled accesses go (default: stderr). Set it before
  // vCPUs run.
  void SetLogSink(LogSink sink);

 private:
  struct Range {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  struct Space {
    std::map<uint64_t, Range> ranges;  // by base
  };
  struct Counters {
    std::atomic<uint64_t> reads{0};
    std::atomic<uint64_t> writes{0};
  };

  const Space& space_ref(BusSpace s) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return s == BusSpace::kPio ? pio_ : mmio_;
  }
  Counters& counters(BusSpace s) { return s == BusSpace::kPio ? pio_counts_ : mmio_counts_; }
  const Counters& counters(BusSpace s) const {
    return s == BusSpace::kPio ? pio_counts_ : mmio_counts_;
  }
  const Range* Find(BusSpace space, uint64_t addr, uint64_t len, uint64_t* offset) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void LogUnhandled(BusSpace space, bool is_write, uint64_t addr, size_t len, uint64_t count);

  mutable absl::Mutex mu_;
  Space pio_ ABSL_GUARDED_BY(mu_);
  Space mmio_ ABSL_GUARDED_BY(mu_);
  Counters pio_counts_;
  Counters mmio_counts_;
  LogSink log_;
};

}  // namespace rehome

#endif  // REHOME_VMM_BUS_H_
