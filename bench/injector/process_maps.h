// bench/injector/process_maps.h: another process's address space as the fault injector sees it:
// its mappings (/proc/PID/maps), which of them hold private data or memory shared with L0, which
// pages are resident (/proc/PID/pagemap), reading and writing its memory (/proc/PID/mem), and
// the function an address lies in (the ELF symbols of the file behind the mapping, opened
// through /proc/PID/map_files so that it works whatever root the process sees).
// Thread-safety: pure functions of the target's /proc files (root needed for pagemap and mem).
#ifndef REHOME_BENCH_INJECTOR_PROCESS_MAPS_H_
#define REHOME_BENCH_INJECTOR_PROCESS_MAPS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rehome::inject {

struct MapRegion {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // file offset of `start`
  std::string perms;    // "rw-p", "r-xp", "rw-s", ...
  std::string path;     // file, "[heap]", "[stack]", "/memfd:name (deleted)", or empty
  uint64_t size() const { return end - start; }
  bool writable() const { return perms.size() > 1 && perms[1] == 'w'; }
  bool executable() const { return perms.size() > 2 && perms[2] == 'x'; }
  bool shared() const { return perms.size() > 3 && perms[3] == 's'; }
};

absl::StatusOr<std::vector<MapRegion>> ReadMaps(pid_t pid);
// The region holding `addr`, or nullptr.
const MapRegion* FindRegion(const std::vector<MapRegion>& maps, uint64_t addr);

// Private writable data: heap, stacks, anonymous memory, the .data/.bss of the binary and its
// libraries (not the kernel's [vvar]/[vdso]/[vsyscall], not shared memory).
bool IsPrivateData(const MapRegion& region);
// Memory the process shares with rehome's L0 other than guest RAM: the exit channel, the commit
// journal, the console transmit ring, ... (shared memfds named rehome-*, but not rehome-ram-*).
bool IsSharedWithL0(const MapRegion& region);

// Start addresses of the resident pages of `region` (/proc/PID/pagemap, present bit).
absl::StatusOr<std::vector<uint64_t>> ResidentPages(pid_t pid, const MapRegion& region);

absl::StatusOr<uint8_t> ReadByte(pid_t pid, uint64_t addr);
absl::Status WriteByte(pid_t pid, uint64_t addr, uint8_t value);

struct CodeLocation {
  std::string module;          // file name of the mapping (basename), "[anon]" or the special name
  std::string function;        // demangled symbol, or "?" when no symbol covers it
  uint64_t module_offset = 0;  // the address in the ELF file's own virtual addresses
};
// Where `addr` lies in process `pid` (a best effort: unknown parts are "?").
CodeLocation Locate(pid_t pid, const std::vector<MapRegion>& maps, uint64_t addr);

}  // namespace rehome::inject

#endif  // REHOME_BENCH_INJECTOR_PROCESS_MAPS_H_
