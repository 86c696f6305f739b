// state-extract/nested/testing_memory.h: sparse synthetic L1 RAM for walker tests: 4 KiB pages
// created on first write; reads of pages never written are "not RAM". Not thread-safe.
#ifndef REHOME_STATE_EXTRACT_NESTED_TESTING_MEMORY_H_
#define REHOME_STATE_EXTRACT_NESTED_TESTING_MEMORY_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>

#include "state-extract/nested/page_walk.h"

namespace rehome::nested {

class PageMemory final : public PhysicalMemory {
 public:
  // Makes [gpa, gpa + 4 KiB) RAM (zeroed) if it is not yet.
  void AddPage(uint64_t gpa) { pages_.try_emplace(gpa & ~0xfffull); }
  void Set(uint64_t gpa, uint64_t value) {
    std::array<uint64_t, 512>& page = pages_[gpa & ~0xfffull];
    page[(gpa & 0xfff) / 8] = value;
  }
  // Sets entry `index` of the table page at `table`.
  void SetEntry(uint64_t table, uint64_t index, uint64_t value) { Set(table + 8 * index, value); }
  std::optional<uint64_t> ReadU64(uint64_t gpa) const override {
    auto it = pages_.find(gpa & ~0xfffull);
    if (it == pages_.end()) return std::nullopt;
    return it->second[(gpa & 0xfff) / 8];
  }

 private:
  std::map<uint64_t, std::array<uint64_t, 512>> pages_;
};

}  // namespace rehome::nested

#endif  // REHOME_STATE_EXTRACT_NESTED_TESTING_MEMORY_H_
