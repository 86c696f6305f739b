// kvm-l0/cpuid.h: CPUID entries as plain data (no <linux/kvm.h> needed by callers) and the pure
// function that turns KVM's supported CPUID into what one vCPU of a rehome VM sees.
// Thread-safe: plain values and pure functions.
#ifndef REHOME_KVM_L0_CPUID_H_
#define REHOME_KVM_L0_CPUID_H_

#include <cstdint>
#include <vector>

namespace rehome {

// Mirrors struct kvm_cpuid_entry2 field for field.
struct CpuidEntry {
  uint32_t function = 0;
  uint32_t index = 0;
  uint32_t flags = 0;  // kCpuidFlagSignificantIndex, ...
  uint32_t eax = 0;
  uint32_t ebx = 0;
  uint32_t ecx = 0;
  uint32_t edx = 0;

  friend bool operator==(const CpuidEntry&, const CpuidEntry&) = default;
};

// KVM_CPUID_FLAG_SIGNIFCANT_INDEX: `index` (the ECX sub-leaf) selects this entry.
inline constexpr uint32_t kCpuidFlagSignificantIndex = 1;

inline constexpr uint32_t kCpuidLeaf1EcxOsxsave = 1u << 27;
inline constexpr uint32_t kCpuidLeaf1EcxHypervisor = 1u << 31;
inline constexpr uint32_t kCpuidLeaf1EcxVmx = 1u << 5;
inline constexpr uint32_t kCpuidLeaf1EcxPdcm = 1u << 15;
inline constexpr uint32_t kCpuidLeaf1EdxHtt = 1u << 28;

// Returns `supported` (from KvmSystem::SupportedCpuid) adjusted for vCPU `vcpu_index` of
// `vcpu_count`:
//  - leaf 1: EBX[31:24] initial APIC id = vcpu_index, EBX[23:16] logical processors =
//    vcpu_count, EBX[15:8] CLFLUSH line = 8 (64 B); EDX.HTT set iff vcpu_count > 1; ECX gets the
//    hypervisor bit, loses VMX (no nested virtualisation), PDCM (no PMU) and OSXSAVE (KVM sets it
//    from the guest's CR4 at run time).
//  - leaf 6 (thermal/power) and leaf 0xa (performance monitoring) are zeroed.
//  - leaf 0xb (x2APIC topology): EDX = vcpu_index on every sub-leaf; sub-leaf 0 is the SMT level
//    (1 thread per core), sub-leaf 1 the core level (vcpu_count cores), further sub-leaves are
//    invalid (type 0).
//  - leaf 4 (cache topology): EAX[31:26] = cores per package - 1.
//  - leaf 0x4000'0000: KVM's hypervisor signature "KVMKVMKVM" is kept so that guests find the
//    KVM paravirtual features (kvmclock) in 0x4000'0001.
// Every other entry is passed through unchanged and the order of entries is kept. Pure.
std::vector<CpuidEntry> SanitizeCpuid(std::vector<CpuidEntry> supported, int vcpu_index,
                                      int vcpu_count);

// The XCR0 value with every XSAVE feature leaf 0xd sub-leaf 0 advertises (EDX:EAX), or 0 when
// the table has no such leaf or no XSAVE (leaf 1 ECX bit 26). Pure.
uint64_t SupportedXcr0(const std::vector<CpuidEntry>& cpuid);

}  // namespace rehome

#endif  // REHOME_KVM_L0_CPUID_H_
