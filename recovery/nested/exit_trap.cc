// recovery/nested/exit_trap.cc: ParseVmrunReturnCode.
#include "recovery/nested/exit_trap.h"

#include <cstring>

namespace rehome::nested {

std::optional<int32_t> ParseVmrunReturnCode(std::span<const uint8_t> code) {
  if (code.size() < kExitTrapCodeBytes || code[0] != 0x58 || code[1] != 0x48 || code[2] != 0x89 ||
      code[3] != 0x88) {
    return std::nullopt;
  }
  int32_t disp;
  std::memcpy(&disp, code.data() + 4, 4);
  return disp;
}

}  // namespace rehome::nested
