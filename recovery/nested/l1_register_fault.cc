// recovery/nested/l1_register_fault.cc: register bit flips in an L1 vCPU.
#include "recovery/nested/l1_register_fault.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kvm-l0/nested_state_io.h"
#include "state-extract/nested/nested_state.h"

namespace rehome {
namespace {

uint64_t* Field(Regs& r, int reg) {
  uint64_t* const fields[kFlippableRegisters] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi,
                                                 &r.rsp, &r.rbp, &r.r8,  &r.r9,  &r.r10, &r.r11,
                                                 &r.r12, &r.r13, &r.r14, &r.r15, &r.rip, &r.rflags};
  return reg >= 0 && reg < kFlippableRegisters ? fields[reg] : nullptr;
}

}  // namespace

const char* FlippableRegisterName(int reg) {
  static constexpr const char* kNames[kFlippableRegisters] = {
      "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8",
      "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
  return reg >= 0 && reg < kFlippableRegisters ? kNames[reg] : "?";
}

uint64_t ApplyRegisterFlip(Regs& regs, RegisterFlip flip) {
  uint64_t* field = Field(regs, flip.reg);
  if (field == nullptr || flip.bit < 0 || flip.bit > 63) return 0;
  const uint64_t old = *field;
  *field ^= uint64_t{1} << flip.bit;
  return old;
}

absl::StatusOr<std::string> FlipL1Register(NestedL1& l1, RegisterFlip flip) {
  const std::vector<int> fds = l1.machine().VcpuFds();
  if (fds.empty()) return absl::FailedPreconditionError("the L1 has no vCPUs");
  ASSIGN_OR_RETURN(const std::vector<uint8_t> blob, GetNestedState(l1.machine().kvm_fd(), fds[0]));
  ASSIGN_OR_RETURN(const nested::NestedState state, nested::ParseNestedState(blob));
  if (state.guest_mode()) return absl::UnavailableError("the L1 vCPU is in guest mode (L2 runs)");
  ASSIGN_OR_RETURN(Regs regs, GetVcpuRegs(fds[0]));
  const uint64_t old = ApplyRegisterFlip(regs, flip);
  RETURN_IF_ERROR(SetVcpuRegs(fds[0], regs));
  return absl::StrFormat("L1 #%d vCPU 0: %s bit %d 0x%x -> 0x%x (rip 0x%x)", l1.id(),
                         FlippableRegisterName(flip.reg), flip.bit, old,
                         old ^ (uint64_t{1} << flip.bit), regs.rip);
}

}  // namespace rehome
