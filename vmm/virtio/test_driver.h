// vmm/virtio/test_driver.h: TEST-ONLY. A minimal virtio-mmio guest driver over fake guest RAM
// (a std::vector seen through a FlatGuestMemoryView): it initialises the device through the
// transport's registers exactly as a guest does, lays out split virtqueues in RAM, posts
// descriptor chains, notifies, and collects used buffers. It also writes raw (hostile) ring
// entries for robustness tests, and makes temporary raw images. Not thread-safe.
#ifndef REHOME_VMM_VIRTIO_TEST_DRIVER_H_
#define REHOME_VMM_VIRTIO_TEST_DRIVER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "vmm/virtio/mmio_transport.h"

namespace rehome::virtio::testutil {

inline constexpr uint64_t kRamSize = 4 << 20;
inline constexpr uint64_t kDataBase = 0x40000;  // buffers are allocated from here upward

// Creates an unlinked temporary file of `size` bytes opened O_RDWR (read_only: O_RDONLY).
absl::StatusOr<UniqueFd> MakeTempImage(uint64_t size, bool read_only = false);

class TestDriver final {
 public:
  struct Segment {
    uint64_t gpa = 0;
    uint32_t len = 0;
    bool write = false;
  };
  struct Used {
    uint32_t id = 0;
    uint32_t len = 0;
  };
  struct QueueLayout {
    uint16_t size = 0;
    uint64_t desc = 0, avail = 0, used = 0;
  };

  TestDriver(MmioTransport& transport, std::vector<uint8_t>& ram);
  TestDriver(const TestDriver&) = delete;
  TestDriver& operator=(const TestDriver&) = delete;

  // Drives another transport from now on (e.g. one restored from a saved state over the same
  // RAM); the ring bookkeeping is kept.
  void Rebind(MmioTransport& transport) { transport_ = &transport; }

  uint32_t Read32(uint64_t offset);
  void Write32(uint64_t offset, uint32_t value);

  // Reset, ACKNOWLEDGE, DRIVER, feature negotiation (the device's features & `features_mask`),
  // FEATURES_OK (checked), all queues with `queue_size`, DRIVER_OK. FailedPrecondition when the
  // device refuses FEATURES_OK.
  absl::Status Initialize(uint64_t features_mask = ~uint64_t{0}, uint16_t queue_size = 16);
  // Programs queue `q` at its fixed place in RAM and sets QueueReady.
  void SetUpQueue(int q, uint16_t size);
  // Forgets the driver-side ring bookkeeping (after the driver wrote Status 0 itself).
  void ForgetQueues() { queues_.clear(); }

  uint64_t Alloc(uint64_t len, uint64_t align = 16);
  uint8_t* Host(uint64_t gpa) { return ram_.data() + gpa; }

  // Writes a chain into free descriptors, publishes it in the available ring. Returns the head.
  uint16_t Post(int q, const std::vector<Segment>& segments);
  void Notify(int q) { Write32(MmioTransport::kRegQueueNotify, static_cast<uint32_t>(q)); }
  // The next used element of queue `q` (frees its descriptors), nullopt when none is new.
  std::optional<Used> PopUsed(int q);
  uint32_t AckInterrupts();  // reads InterruptStatus and acknowledges it; returns it

  // Raw ring access for hostile tests.
  const QueueLayout& layout(int q) { return queues_.at(q).layout; }
  void WriteDesc(int q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
  void PublishHead(int q, uint16_t head);  // avail ring entry + idx increment
  void SetAvailIdx(int q, uint16_t idx);
  uint16_t UsedIdx(int q);

 private:
  struct Queue {
    QueueLayout layout;
    uint16_t avail_idx = 0;
    uint16_t last_used = 0;
    std::vector<uint16_t> free;
    std::map<uint16_t, std::vector<uint16_t>> chains;  // head -> descriptors
  };
  template <typename T>
  void Put(uint64_t gpa, T v);
  template <typename T>
  T Get(uint64_t gpa);

  MmioTransport* transport_;
  std::vector<uint8_t>& ram_;
  uint64_t next_alloc_ = kDataBase;
  std::map<int, Queue> queues_;
};

// A virtio-blk request posted (not yet notified) as three descriptors: 16-byte header
// (readable), data (readable for T_OUT, writable otherwise; omitted when data_len is 0) and the
// status byte (writable, preset to 0xff).
struct BlkRequest {
  uint16_t head = 0;
  uint64_t data_gpa = 0;
  uint64_t status_gpa = 0;
};
BlkRequest PostBlkRequest(TestDriver& driver, uint32_t type, uint64_t sector, uint32_t data_len,
                          std::span<const uint8_t> out_data = {});

}  // namespace rehome::virtio::testutil

#endif  // REHOME_VMM_VIRTIO_TEST_DRIVER_H_
