// kvm-l0/kvm_exit.h: a vCPU exit as a typed value, free of <linux/kvm.h> so that vmm/ and
// recovery/ can consume exits. VcpuFd::Run() produces these; ExitDispatcher consumes them.
// Values are plain data; the `data` spans of I/O exits point into the vCPU's kvm_run page and
// are valid only until the next Run() on that vCPU (tests point them at their own buffers).
#ifndef REHOME_KVM_L0_KVM_EXIT_H_
#define REHOME_KVM_L0_KVM_EXIT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>

namespace rehome {

// Port I/O (KVM_EXIT_IO). `data` holds size * count bytes: written bytes for an OUT, and the
// buffer the handler must fill for an IN (KVM completes the IN on the next KVM_RUN).
struct PortIoExit {
  bool is_write = false;
  uint16_t port = 0;
  uint8_t size = 0;    // 1, 2 or 4
  uint32_t count = 1;  // > 1 for rep ins/outs
  std::span<uint8_t> data;
  uint64_t rip = 0;  // vCPU state at the exit (KVM sync regs; 0 when unsupported)
  uint64_t rflags = 0;
};

// MMIO (KVM_EXIT_MMIO). `data` is len bytes: written bytes, or the buffer to fill for a read.
struct MmioExit {
  bool is_write = false;
  uint64_t gpa = 0;
  std::span<uint8_t> data;  // 1..8 bytes
  uint64_t rip = 0;         // vCPU state at the exit (KVM sync regs; 0 when unsupported)
  uint64_t rflags = 0;
};

struct HltExit {};          // only without an in-kernel LAPIC
struct ShutdownExit {};     // triple fault
struct InterruptedExit {};  // KVM_RUN returned EINTR (a kick or immediate_exit)
struct SystemEventExit {    // KVM_EXIT_SYSTEM_EVENT
  enum class Type : uint32_t { kShutdown = 1, kReset = 2, kCrash = 3, kOther = 0 };
  Type type = Type::kOther;
};
struct InternalErrorExit {  // KVM_EXIT_INTERNAL_ERROR (e.g. an emulation failure)
  uint32_t suberror = 0;
  std::optional<uint64_t> rip;      // from sync regs, when KVM filled them
  std::array<uint64_t, 16> data{};  // KVM's diagnostic words (internal.data[0..ndata))
  uint32_t ndata = 0;
};
struct FailEntryExit {  // KVM_EXIT_FAIL_ENTRY
  uint64_t hardware_reason = 0;
};
struct UnknownExit {  // any other exit_reason
  uint32_t reason = 0;
};

using KvmExit = std::variant<PortIoExit, MmioExit, HltExit, ShutdownExit, InterruptedExit,
                             SystemEventExit, InternalErrorExit, FailEntryExit, UnknownExit>;

}  // namespace rehome

#endif  // REHOME_KVM_L0_KVM_EXIT_H_
