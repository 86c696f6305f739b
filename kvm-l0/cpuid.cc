// kvm-l0/cpuid.cc: see cpuid.h. Pure functions; thread-safe.
#include "kvm-l0/cpuid.h"

#include <algorithm>

namespace rehome {
namespace {

// Number of bits needed to hold an id below `count` (ceil(log2(count))).
uint32_t IdBits(uint32_t count) {
  uint32_t bits = 0;
  while ((1u << bits) < count && bits < 31) ++bits;
  return bits;
}

}  // namespace

std::vector<CpuidEntry> SanitizeCpuid(std::vector<CpuidEntry> supported, int vcpu_index,
                                      int vcpu_count) {
  const uint32_t count = static_cast<uint32_t>(std::clamp(vcpu_count, 1, 255));
  const uint32_t apic_id = static_cast<uint32_t>(std::max(vcpu_index, 0)) & 0xff;
  for (CpuidEntry& e : supported) {
    switch (e.function) {
      case 1:
        e.ebx = (apic_id << 24) | (count << 16) | (8u << 8) | (e.ebx & 0xff);
        e.ecx |= kCpuidLeaf1EcxHypervisor;
        e.ecx &= ~(kCpuidLeaf1EcxVmx | kCpuidLeaf1EcxPdcm | kCpuidLeaf1EcxOsxsave);
        if (count > 1) {
          e.edx |= kCpuidLeaf1EdxHtt;
        } else {
          e.edx &= ~kCpuidLeaf1EdxHtt;
        }
        break;
      case 4:
        if (e.eax != 0) e.eax = (e.eax & 0x03ffffffu) | (std::min(count - 1, 63u) << 26);
        break;
      case 6:
      case 0xa:
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xb:
        e.edx = apic_id;
        if (e.index == 0) {
          e.eax = 0;  // no SMT: the core id starts at bit 0
          e.ebx = 1;
          e.ecx = (1u << 8) | 0;
        } else if (e.index == 1) {
          e.eax = IdBits(count);
          e.ebx = count;
          e.ecx = (2u << 8) | 1;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index & 0xff;  // level type 0: invalid
        }
        break;
      default:
        break;
    }
  }
  return supported;
}

uint64_t SupportedXcr0(const std::vector<CpuidEntry>& cpuid) {
  bool xsave = false;
  uint64_t xcr0 = 0;
  for (const CpuidEntry& e : cpuid) {
    if (e.function == 1) xsave = (e.ecx & (1u << 26)) != 0;
    if (e.function == 0xd && e.index == 0) xcr0 = (uint64_t{e.edx} << 32) | e.eax;
  }
  return xsave ? xcr0 : 0;
}

}  // namespace rehome
