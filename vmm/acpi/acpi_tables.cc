// vmm/acpi/acpi_tables.cc: RSDP, XSDT, FADT, MADT and DSDT.
#include "vmm/acpi/acpi_tables.h"

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/acpi/aml.h"

namespace rehome {
namespace {

constexpr size_t kHeaderSize = 36;
constexpr char kOemId[] = "REHOME";
constexpr char kOemTableId[] = "RHVM    ";

void Put(std::vector<uint8_t>& t, size_t offset, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) t[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

void PutText(std::vector<uint8_t>& t, size_t offset, const char* text, size_t len) {
  std::memcpy(t.data() + offset, text, len);
}

uint8_t Checksum(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) sum = static_cast<uint8_t>(sum + data[i]);
  return static_cast<uint8_t>(-sum);
}

// A table of `length` bytes with its header filled in; the checksum is set by Seal().
std::vector<uint8_t> Table(const char signature[5], size_t length, uint8_t revision) {
  std::vector<uint8_t> t(length, 0);
  PutText(t, 0, signature, 4);
  Put(t, 4, length, 4);
  t[8] = revision;
  PutText(t, 10, kOemId, 6);
  PutText(t, 16, kOemTableId, 8);
  Put(t, 24, 1, 4);           // OEM revision
  PutText(t, 28, "RHME", 4);  // creator id
  Put(t, 32, 1, 4);           // creator revision
  return t;
}

void Seal(std::vector<uint8_t>& t) {
  Put(t, 4, t.size(), 4);
  t[9] = 0;
  t[9] = Checksum(t.data(), t.size());
}

// Generic address structure (12 bytes): one 8-bit system I/O register.
void PutIoGas(std::vector<uint8_t>& t, size_t offset, uint16_t port) {
  t[offset] = 1;      // system I/O
  t[offset + 1] = 8;  // register bit width
  t[offset + 2] = 0;  // bit offset
  t[offset + 3] = 1;  // byte access
  Put(t, offset + 4, port, 8);
}

std::vector<uint8_t> Fadt(const AcpiConfig& config, uint64_t dsdt) {
  std::vector<uint8_t> t = Table("FACP", 276, 6);
  Put(t, 40, dsdt, 4);  // DSDT
  // IAPC_BOOT_ARCH: no 8042 (bit 1 clear), VGA not present (bit 2), CMOS RTC not present
  // (bit 5).
  Put(t, 109, (1u << 2) | (1u << 5), 2);
  // Flags: WBINVD (0), power and sleep buttons are not fixed features (4, 5), RESET_REG_SUP
  // (10), HW_REDUCED_ACPI (20).
  Put(t, 112, (1u << 0) | (1u << 4) | (1u << 5) | (1u << 10) | (1u << 20), 4);
  PutIoGas(t, 116, config.reset_port);
  t[128] = config.reset_value;
  t[131] = 4;            // FADT minor version (6.4)
  Put(t, 140, dsdt, 8);  // X_DSDT
  PutIoGas(t, 244, config.sleep_control_port);
  PutIoGas(t, 256, config.sleep_status_port);
  Put(t, 268, 0x4d4f484552ull, 8);  // hypervisor vendor identity "REHOM"
  Seal(t);
  return t;
}

std::vector<uint8_t> Madt(const AcpiConfig& config) {
  std::vector<uint8_t> t = Table("APIC", 44, 4);
  Put(t, 36, kLocalApicAddress, 4);
  Put(t, 40, 1, 4);  // PCAT_COMPAT: the in-kernel irqchip has 8259 PICs
  for (int i = 0; i < config.cpus; ++i) {
    const uint8_t lapic[8] = {0, 8, static_cast<uint8_t>(i), static_cast<uint8_t>(i), 1, 0, 0, 0};
    t.insert(t.end(), lapic, lapic + 8);
  }
  std::vector<uint8_t> ioapic(12, 0);
  ioapic[0] = 1;
  ioapic[1] = 12;
  ioapic[2] = static_cast<uint8_t>(config.cpus);  // IOAPIC id after the local APICs
  Put(ioapic, 4, kIoapicAddress, 4);
  Put(ioapic, 8, 0, 4);  // GSI base
  t.insert(t.end(), ioapic.begin(), ioapic.end());
  Seal(t);
  return t;
}

}  // namespace

std::vector<uint8_t> BuildDsdt(const AcpiConfig& config) {
  using aml::Bytes;
  std::vector<Bytes> devices;
  devices.push_back(aml::Device(
      "COM1", {aml::Name("_HID", aml::EisaId("PNP0501")), aml::Name("_UID", aml::Integer(0)),
               aml::Name("_CRS", aml::ResourceTemplate(
                                     {aml::IoPort(config.com1_port, 8),
                                      aml::ExtendedInterrupt(config.com1_gsi, aml::Trigger::kEdge,
                                                             false, false)}))}));
  if (config.pvpanic_port != 0) {
    devices.push_back(aml::Device(
        "PEVT", {aml::Name("_HID", aml::String("QEMU0001")),
                 aml::Name("_CRS", aml::ResourceTemplate({aml::IoPort(config.pvpanic_port, 1)}))}));
  }
  for (size_t i = 0; i < config.virtio.size(); ++i) {
    const AcpiVirtioDevice& d = config.virtio[i];
    devices.push_back(aml::Device(
        absl::StrFormat("VR%02X", i),
        {aml::Name("_HID", aml::String("LNRO0005")), aml::Name("_UID", aml::Integer(i)),
         aml::Name("_CCA", aml::Integer(1)),
         aml::Name("_CRS",
                   aml::ResourceTemplate(
                       {aml::Memory32Fixed(static_cast<uint32_t>(d.base), d.size, true),
                        aml::ExtendedInterrupt(d.gsi, aml::Trigger::kLevel, false, false)}))}));
  }
  Bytes body = aml::Scope("\\_SB_", devices);
  const Bytes s5 = aml::Name(
      "\\_S5_", aml::Package({aml::Integer(5), aml::Integer(5), aml::Integer(0), aml::Integer(0)}));
  body.insert(body.end(), s5.begin(), s5.end());
  std::vector<uint8_t> t = Table("DSDT", kHeaderSize, 2);
  t.insert(t.end(), body.begin(), body.end());
  Seal(t);
  return t;
}

absl::StatusOr<AcpiTables> BuildAcpiTables(const AcpiConfig& config) {
  if (config.cpus < 1 || config.cpus > 255) {
    return absl::InvalidArgumentError(absl::StrCat("ACPI: ", config.cpus, " vCPUs (1..255)"));
  }
  if (config.virtio.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("ACPI: ", config.virtio.size(), " virtio devices (at most 64)"));
  }
  AcpiTables tables;
  std::vector<uint8_t>& out = tables.bytes;
  auto place = [&out](const std::vector<uint8_t>& table) {
    out.resize((out.size() + 63) & ~size_t{63}, 0);
    const uint64_t gpa = kAcpiBase + out.size();
    out.insert(out.end(), table.begin(), table.end());
    return gpa;
  };
  out.resize(36, 0);  // the RSDP, filled in last
  tables.dsdt_gpa = place(BuildDsdt(config));
  tables.fadt_gpa = place(Fadt(config, tables.dsdt_gpa));
  tables.madt_gpa = place(Madt(config));
  std::vector<uint8_t> xsdt = Table("XSDT", kHeaderSize + 16, 1);
  Put(xsdt, kHeaderSize, tables.fadt_gpa, 8);
  Put(xsdt, kHeaderSize + 8, tables.madt_gpa, 8);
  Seal(xsdt);
  tables.xsdt_gpa = place(xsdt);
  if (kAcpiBase + out.size() > kAcpiEnd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ACPI: tables of %d bytes do not fit below 0x%x", out.size(), kAcpiEnd));
  }
  PutText(out, 0, "RSD PTR ", 8);
  PutText(out, 9, kOemId, 6);
  out[15] = 2;         // revision: ACPI 2.0+ (XSDT)
  Put(out, 16, 0, 4);  // no RSDT
  Put(out, 20, 36, 4);
  Put(out, 24, tables.xsdt_gpa, 8);
  out[8] = Checksum(out.data(), 20);
  out[32] = Checksum(out.data(), 36);
  return tables;
}

}  // namespace rehome
