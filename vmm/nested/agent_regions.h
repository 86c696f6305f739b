// vmm/nested/agent_regions.h: the agent's view of the memory L0 shares with it (nested_abi.h):
// its control region (ControlPage, transfer area, console ring), the commit journal and L2's
// RAM. In an L1 VM they are mapped from /dev/mem at their L1 physical addresses (the e820 map
// reserves them, so the kernel allows it); tests on a host without nested virtualisation map the
// same layout from memfds. Move-free owner of the mappings; the pointers stay valid while it
// lives. Thread-safety: immutable after creation; the shared bytes follow nested_abi.h's rules.
#ifndef REHOME_VMM_NESTED_AGENT_REGIONS_H_
#define REHOME_VMM_NESTED_AGENT_REGIONS_H_

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"
#include "base/mapped_region.h"
#include "kvm-l0/guest_memory.h"
#include "state-extract/device_journal.h"
#include "vmm/nested/nested_abi.h"

namespace rehome {

// A piece of a file: `size` bytes from `offset` of `fd` (not owned; duplicated where kept).
struct AgentRegionSource {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
};

class AgentRegions final {
 public:
  // InvalidArgument when the control page has the wrong magic or version, or the journal is
  // not one; errno statuses for mmap failures.
  static absl::StatusOr<std::unique_ptr<AgentRegions>> Map(AgentRegionSource control,
                                                           AgentRegionSource journal,
                                                           AgentRegionSource l2_ram);
  // From /dev/mem at nested_abi's addresses; L2's RAM size comes from the control page.
  static absl::StatusOr<std::unique_ptr<AgentRegions>> MapDevMem(const char* path = "/dev/mem");

  AgentRegions(const AgentRegions&) = delete;
  AgentRegions& operator=(const AgentRegions&) = delete;

  nested_abi::ControlPage* control() const {
    return reinterpret_cast<nested_abi::ControlPage*>(control_.bytes());
  }
  std::span<uint8_t> transfer() const {
    return {control_.bytes() + nested_abi::kTransferOffset, nested_abi::kTransferSize};
  }
  std::span<uint8_t> console_ring() const {
    return {control_.bytes() + nested_abi::kConsoleRingOffset, nested_abi::kConsoleRingSize};
  }
  DeviceJournal& journal() { return journal_; }
  // L2's RAM at L2 guest-physical 0.
  const GuestMemory& l2_ram() const { return l2_ram_; }

 private:
  AgentRegions(MappedRegion control, DeviceJournal journal, GuestMemory l2_ram)
      : control_(std::move(control)), journal_(std::move(journal)), l2_ram_(std::move(l2_ram)) {}

  MappedRegion control_;
  DeviceJournal journal_;
  GuestMemory l2_ram_;
};

// Appends `bytes` to the console ring at absolute position `position` (the ring wraps).
void WriteConsoleRing(std::span<uint8_t> ring, uint64_t position, std::string_view bytes);
// Reads [from, to) out of the ring; only the last ring.size() bytes are still there.
std::string ReadConsoleRing(std::span<const uint8_t> ring, uint64_t from, uint64_t to);

}  // namespace rehome

#endif  // REHOME_VMM_NESTED_AGENT_REGIONS_H_
