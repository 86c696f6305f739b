// tests/fuzz/elf_loader_fuzz.cc: libFuzzer target for the ELF/PVH kernel loader
// (vmm/loader/elf_pvh_loader.h), which reads a file the user names (`--kernel`, `<kernel>`).
//
// Input: the guest RAM size (4 MiB of host buffer, told to the loader as that or less), a command
// line, optionally a fuzzed memory map, then the image. Checked: no memory error or UB (the
// loader must stay inside the RAM it is given); a loaded kernel's entry point and end lie in
// RAM, and the command line is where the boot information says.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_util.h"
#include "vmm/guest_memory_view.h"
#include "vmm/loader/elf_pvh_loader.h"

namespace {

using rehome::fuzz::Check;

constexpr uint64_t kRamBytes = 4 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static std::vector<uint8_t>* ram = new std::vector<uint8_t>(kRamBytes);
  const uint64_t ram_size =
      in.ConsumeBool() ? kRamBytes : in.ConsumeIntegralInRange<uint64_t>(0, kRamBytes);
  rehome::FlatGuestMemoryView mem(std::span<uint8_t>(ram->data(), ram_size));
  const std::string cmdline = in.ConsumeRandomLengthString(64);
  std::vector<rehome::MemoryMapEntry> memmap = rehome::DefaultMemoryMap(ram_size);
  if (in.ConsumeBool()) {
    memmap.resize(in.ConsumeIntegralInRange<size_t>(0, rehome::kMaxMemmapEntries + 2));
    for (rehome::MemoryMapEntry& e : memmap) {
      e.addr = in.ConsumeIntegral<uint64_t>();
      e.size = in.ConsumeIntegral<uint64_t>();
      e.type = in.ConsumeIntegral<uint32_t>();
    }
  }
  const std::vector<uint8_t> image = in.ConsumeRemainingBytes<uint8_t>();
  absl::StatusOr<rehome::LoadedKernel> loaded =
      rehome::LoadPvhKernelFromBytes("fuzz", image, mem, ram_size, cmdline, memmap);
  if (!loaded.ok()) return 0;
  Check(loaded->entry32 < ram_size && loaded->kernel_end <= ram_size);
  Check(loaded->start_info_gpa == rehome::kStartInfoGpa);
  Check(std::memcmp(ram->data() + rehome::kCmdlineGpa, cmdline.data(), cmdline.size()) == 0);
  return 0;
}
