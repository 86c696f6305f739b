// vmm/nested/agent_regions.cc: AgentRegions and the console ring.
#include "vmm/nested/agent_regions.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"

namespace rehome {

absl::StatusOr<std::unique_ptr<AgentRegions>> AgentRegions::Map(AgentRegionSource control,
                                                                AgentRegionSource journal,
                                                                AgentRegionSource l2_ram) {
  if (control.size < nested_abi::kControlRegionSize) {
    return absl::InvalidArgumentError("agent: control region too small");
  }
  ASSIGN_OR_RETURN(MappedRegion control_map,
                   MappedRegion::Map(nested_abi::kControlRegionSize, PROT_READ | PROT_WRITE,
                                     MAP_SHARED, control.fd, static_cast<off_t>(control.offset)));
  const auto* page = reinterpret_cast<const nested_abi::ControlPage*>(control_map.bytes());
  if (page->magic != nested_abi::kControlMagic || page->version != nested_abi::kControlVersion) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "agent: no control page (magic 0x%x, version %d)", page->magic, page->version));
  }
  const int journal_fd = ::fcntl(journal.fd, F_DUPFD_CLOEXEC, 0);
  if (journal_fd < 0) return LastErrnoStatus("agent: dup journal fd");
  ASSIGN_OR_RETURN(DeviceJournal journal_map,
                   DeviceJournal::AttachAt(journal_fd, journal.offset, journal.size));
  const GuestMemory::RegionDesc ram{0, l2_ram.size, l2_ram.fd, l2_ram.offset};
  ASSIGN_OR_RETURN(GuestMemory ram_map, GuestMemory::FromFds({&ram, 1}));
  return std::unique_ptr<AgentRegions>(
      new AgentRegions(std::move(control_map), std::move(journal_map), std::move(ram_map)));
}

absl::StatusOr<std::unique_ptr<AgentRegions>> AgentRegions::MapDevMem(const char* path) {
  UniqueFd mem(::open(path, O_RDWR | O_CLOEXEC));
  if (!mem.valid()) return LastErrnoStatus(absl::StrFormat("agent: open %s", path));
  // The control page first: it says how large L2's RAM is.
  ASSIGN_OR_RETURN(MappedRegion probe,
                   MappedRegion::Map(4096, PROT_READ, MAP_SHARED, mem.get(),
                                     static_cast<off_t>(nested_abi::kControlGpa)));
  const uint64_t l2_size =
      reinterpret_cast<const nested_abi::ControlPage*>(probe.bytes())->boot.l2_ram_size;
  if (l2_size == 0 || l2_size > nested_abi::kMaxL2Ram || l2_size % 4096 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("agent: L2 RAM size %d in the control page", l2_size));
  }
  return Map({mem.get(), nested_abi::kControlGpa, nested_abi::kControlRegionSize},
             {mem.get(), nested_abi::kJournalGpa, nested_abi::kJournalRegionSize},
             {mem.get(), nested_abi::kL2RamGpa, l2_size});
}

void WriteConsoleRing(std::span<uint8_t> ring, uint64_t position, std::string_view bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    ring[(position + i) % ring.size()] = static_cast<uint8_t>(bytes[i]);
  }
}

std::string ReadConsoleRing(std::span<const uint8_t> ring, uint64_t from, uint64_t to) {
  if (to <= from) return {};
  if (to - from > ring.size()) from = to - ring.size();
  std::string out;
  out.reserve(static_cast<size_t>(to - from));
  for (uint64_t p = from; p < to; ++p) out.push_back(static_cast<char>(ring[p % ring.size()]));
  return out;
}

}  // namespace rehome
