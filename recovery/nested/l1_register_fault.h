// recovery/nested/l1_register_fault.h: register fault injection into a whole L1 hypervisor
// (Romulus's and NiLiHype's model): with the L1 VM paused, flip one bit of one general register,
// RIP or RFLAGS of an L1 vCPU that runs the L1's own code (not in guest mode: its registers
// are the L1 kernel's or its agent's, not L2's), then let it run on. What follows is up to the
// L1: nothing (masked), an oops, a panic, a hang, a dead agent, or corrupted L2 state that the
// counter oracle reports. Thread-safety: the controller thread, with the L1 paused.
#ifndef REHOME_RECOVERY_NESTED_L1_REGISTER_FAULT_H_
#define REHOME_RECOVERY_NESTED_L1_REGISTER_FAULT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "recovery/nested/nested_l1.h"
#include "state-extract/cpu_state.h"

namespace rehome {

// rax..r15 (0..15), rip (16), rflags (17).
inline constexpr int kFlippableRegisters = 18;

struct RegisterFlip {
  int reg = 0;  // 0 .. kFlippableRegisters-1
  int bit = 0;  // 0..63
};

// "rax" ... "r15", "rip", "rflags"; "?" out of range.
const char* FlippableRegisterName(int reg);

// Flips the bit in `regs`; returns the register's old value. Pure. Out-of-range flips change
// nothing and return 0.
uint64_t ApplyRegisterFlip(Regs& regs, RegisterFlip flip);

// On the paused `l1`: Unavailable when its vCPU is in guest mode (L2 runs: try later), else
// flips and returns a one-line description ("L1 #n vCPU 0: rip bit 3 0x.. -> 0x..").
absl::StatusOr<std::string> FlipL1Register(NestedL1& l1, RegisterFlip flip);

}  // namespace rehome

#endif  // REHOME_RECOVERY_NESTED_L1_REGISTER_FAULT_H_
