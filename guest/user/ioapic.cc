// guest/user/ioapic.cc: I/O APIC redirection entry for a device interrupt (see ioapic.h).
#include "guest/user/ioapic.h"

#include "guest/kernel/io.h"
#include "guest/kernel/layout.h"
#include "guest/user/acpi.h"

namespace rehome::guest {
namespace {

constexpr uint32_t kRegSelect = 0x00;
constexpr uint32_t kRegWindow = 0x10;
constexpr uint32_t kIndexVersion = 0x01;
constexpr uint32_t kIndexRedirection = 0x10;  // entry n: low dword 0x10 + 2n, high 0x11 + 2n
constexpr uint32_t kRedirectionMasked = 1u << 16;

class IoApic {
 public:
  explicit IoApic(uint64_t base) : base_(base) {}
  uint32_t Read(uint32_t index) const {
    Reg(kRegSelect) = index;
    return Reg(kRegWindow);
  }
  void Write(uint32_t index, uint32_t value) const {
    Reg(kRegSelect) = index;
    Reg(kRegWindow) = value;
  }

 private:
  volatile uint32_t& Reg(uint32_t offset) const {
    return *reinterpret_cast<volatile uint32_t*>(static_cast<uintptr_t>(base_ + offset));
  }
  uint64_t base_;
};

}  // namespace

bool RouteDeviceIrqHere(uint64_t rsdp_paddr, uint32_t gsi) {
  uint64_t base = kDefaultIoApicBase;
  uint32_t gsi_base = 0;
  if (!MadtIoApicFor(rsdp_paddr, gsi, &base, &gsi_base)) {
    base = kDefaultIoApicBase;
    gsi_base = 0;
  }
  if (base == 0 || base + 0x20 > (1ull << 32)) return false;
  const IoApic ioapic(base);
  const uint32_t version = ioapic.Read(kIndexVersion);
  if (version == 0xffffffffu) return false;  // nothing answers there
  const uint32_t pins = ((version >> 16) & 0xff) + 1;
  const uint32_t pin = gsi - gsi_base;
  if (pin >= pins) return false;
  // Masked while the destination changes, then the vector, edge, active high, unmasked.
  ioapic.Write(kIndexRedirection + 2 * pin, kRedirectionMasked | VEC_DEVICE);
  ioapic.Write(kIndexRedirection + 2 * pin + 1, CurrentApicId() << 24);
  ioapic.Write(kIndexRedirection + 2 * pin, VEC_DEVICE);
  return true;
}

}  // namespace rehome::guest
