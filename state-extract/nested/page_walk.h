// state-extract/nested/page_walk.h: a walker over the nested page tables an L1 hypervisor keeps
// for its L2 guest (AMD NPT, Intel EPT), translating L2 guest-physical addresses into L1
// guest-physical addresses. Both are 4-level radix trees of 512 8-byte entries per 4 KiB page
// (level 4 = PML4 ... level 1 = PT); they differ only in how an entry is decoded, which an
// EntryFormat (npt_walker.h, ept_walker.h) supplies. The tables live in L1 memory and are read
// through a PhysicalMemory, so the same code runs on synthetic tables (tests) and on L0's
// mapping of a real L1's RAM.
//
// Nothing here trusts the tables: every entry is decoded with its reserved bits checked, a table
// page outside L1 RAM is a fault, a table page reached at two different levels is a loop, and a
// scan is bounded (ScanLimits). Pure code over immutable inputs: thread-safe as long as the
// memory does not change under a walk (L0 walks with the L1 paused).
#ifndef REHOME_STATE_EXTRACT_NESTED_PAGE_WALK_H_
#define REHOME_STATE_EXTRACT_NESTED_PAGE_WALK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome::nested {

inline constexpr uint64_t kPage4K = 1ull << 12;
inline constexpr uint64_t kPage2M = 1ull << 21;
inline constexpr uint64_t kPage1G = 1ull << 30;
inline constexpr int kLevels = 4;                        // PML4, PDPT, PD, PT
inline constexpr uint64_t kMaxL2Gpa = (1ull << 48) - 1;  // 4-level tables translate 48 bits

// Reads the L1 guest-physical memory the tables live in.
class PhysicalMemory {
 public:
  virtual ~PhysicalMemory() = default;
  // The little-endian 8 bytes at `gpa` (8-byte aligned), or nullopt when they are not RAM.
  virtual std::optional<uint64_t> ReadU64(uint64_t gpa) const = 0;
};

// RAM as byte spans at guest-physical bases (synthetic tables; L0's mapping of an L1's RAM).
// The spans must outlive this object.
class SpanPhysicalMemory final : public PhysicalMemory {
 public:
  void AddRegion(uint64_t gpa, std::span<const uint8_t> bytes) { regions_[gpa] = bytes; }
  std::optional<uint64_t> ReadU64(uint64_t gpa) const override;

 private:
  std::map<uint64_t, std::span<const uint8_t>> regions_;
};

struct Permissions {
  bool read = false;
  bool write = false;
  bool execute = false;
  bool user = false;  // NPT: U/S on every level (nested walks are user accesses); EPT: true
  bool operator==(const Permissions&) const = default;
};

// A contiguous run of L2 pages mapped to contiguous L1 pages with the same attributes.
// Translate() returns one page; Scan coalesces neighbouring pages into runs.
struct Mapping {
  uint64_t l2_gpa = 0;
  uint64_t l1_gpa = 0;
  uint64_t bytes = 0;      // a page size for Translate(); a multiple of page_size in a Scan
  uint64_t page_size = 0;  // kPage4K, kPage2M or kPage1G
  Permissions perms;       // effective: the AND of every level's rights
  // EPT: the leaf's memory type (0 UC, 1 WC, 4 WT, 5 WP, 6 WB); NPT: the PAT index of the leaf
  // (PAT << 2 | PCD << 1 | PWT), to be looked up in the PAT MSR.
  uint8_t memory_type = 0;
  bool ignore_pat = false;  // EPT only
  bool operator==(const Mapping&) const = default;
};

enum class FaultKind {
  kNotPresent,        // NPT: P = 0; EPT: R = W = X = 0 (an EPT violation)
  kReservedBit,       // NPT: a reserved bit set (#NPF with RSVD; KVM marks MMIO this way)
  kMisconfigured,     // EPT: a malformed entry (an EPT misconfiguration)
  kPermission,        // the entry is valid but forbids the access
  kTableNotInMemory,  // a table pointer leads outside L1 RAM
  kLoop,              // a table page reached at two different levels
  kAddressTooWide,    // the L2 address needs more than 48 bits
};
const char* FaultKindName(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::kNotPresent;
  int level = 0;           // 4 = PML4 ... 1 = PT; 0 when no entry was read
  uint64_t l2_gpa = 0;     // the address being translated (a Scan: the entry's first address)
  uint64_t entry_gpa = 0;  // where the offending entry lives in L1 memory
  uint64_t entry = 0;
  std::string detail;  // what is wrong with it, for people
  std::string ToString() const;
};

enum class Access { kRead, kWrite, kExecute };

// Exactly one of `mapping` and `fault` is set.
struct Translation {
  std::optional<Mapping> mapping;
  std::optional<Fault> fault;
};

// How one entry decodes at one level.
struct DecodedEntry {
  enum class Kind { kNotPresent, kTable, kLeaf, kMalformed } kind = Kind::kNotPresent;
  uint64_t address = 0;  // next table (kTable) or page base (kLeaf)
  Permissions perms;     // this level's rights
  uint8_t memory_type = 0;
  bool ignore_pat = false;
  FaultKind malformed_as = FaultKind::kMisconfigured;  // kMalformed: how hardware reports it
  std::string detail;                                  // kMalformed: which rule it breaks
};

class EntryFormat {
 public:
  virtual ~EntryFormat() = default;
  virtual DecodedEntry Decode(uint64_t entry, int level) const = 0;
};

struct ScanLimits {
  uint64_t max_entries = 1ull << 24;  // entries examined before the scan gives up
  uint64_t max_faults = 1024;         // faults recorded (the rest are only counted)
};

// Everything the tables map, in increasing L2 order.
struct Scan {
  std::vector<Mapping> mappings;      // coalesced runs
  std::vector<Fault> faults;          // malformed entries, loops, tables outside RAM
  uint64_t faults_dropped = 0;        // beyond ScanLimits::max_faults
  std::vector<uint64_t> table_pages;  // every table page read (L1 GPAs), sorted, unique
  uint64_t entries_examined = 0;
  uint64_t pages_4k = 0, pages_2m = 0, pages_1g = 0;
  uint64_t MappedBytes() const;
};

class PageWalker final {
 public:
  // `root`: the L1 guest-physical address of the PML4 page (4 KiB aligned). `format` and
  // `memory` must outlive the walker.
  PageWalker(const EntryFormat& format, const PhysicalMemory& memory, uint64_t root)
      : format_(format), memory_(memory), root_(root) {}

  // Translates one L2 address for `access`: the page that maps it, or the first fault.
  Translation Translate(uint64_t l2_gpa, Access access) const;

  // Walks the whole tree. Not-present entries are skipped; every other fault is recorded and
  // its subtree skipped. ResourceExhausted when more than limits.max_entries entries would be
  // examined (shared tables can make a tree large; KVM's own tables never share).
  absl::StatusOr<Scan> ScanAll(ScanLimits limits = {}) const;

  uint64_t root() const { return root_; }

 private:
  const EntryFormat& format_;
  const PhysicalMemory& memory_;
  uint64_t root_;
};

// Bytes covered by one entry at `level` (1: 4 KiB ... 4: 512 GiB).
constexpr uint64_t LevelSpan(int level) { return kPage4K << (9 * (level - 1)); }
// Bits [51:maxphyaddr] of an address field: set means the entry is malformed.
constexpr uint64_t AddressReservedMask(int maxphyaddr) {
  return maxphyaddr >= 52 ? 0 : (((1ull << 52) - 1) & ~((1ull << maxphyaddr) - 1));
}
inline constexpr uint64_t kAddressMask = 0x000f'ffff'ffff'f000ull;  // bits 51:12

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_PAGE_WALK_H_
