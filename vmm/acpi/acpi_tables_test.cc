// vmm/acpi/acpi_tables_test.cc: the AML encoders against the specification's encodings, the
// tables' checksums and cross-pointers, and the DSDT disassembled by ACPICA's iasl (the tool
// the kernel's own ACPI interpreter comes from).
#include "vmm/acpi/acpi_tables.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "vmm/acpi/aml.h"

namespace rehome {
namespace {

uint64_t Le(const std::vector<uint8_t>& b, size_t offset, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(b[offset + i]) << (8 * i);
  return v;
}

uint8_t Sum(const uint8_t* data, size_t len) {
  uint8_t s = 0;
  for (size_t i = 0; i < len; ++i) s = static_cast<uint8_t>(s + data[i]);
  return s;
}

AcpiConfig TwoDevices() {
  AcpiConfig config;
  config.cpus = 3;
  config.virtio = {{0xd0000000, 0x200, 5}, {0xd0000200, 0x200, 6}};
  return config;
}

TEST(Aml, PkgLengthUsesTheShortestEncoding) {
  EXPECT_EQ(aml::PkgLength(0), aml::Bytes{1});
  EXPECT_EQ(aml::PkgLength(62), aml::Bytes{63});
  // 63 body bytes need two length bytes: total 65 = 0x41 -> 0x41 & 0xf | 1 << 6, 0x41 >> 4.
  EXPECT_EQ(aml::PkgLength(63), (aml::Bytes{0x41, 0x04}));
  EXPECT_EQ(aml::PkgLength(4093), (aml::Bytes{0x4f, 0xff}));  // 4095: the largest 2-byte
  EXPECT_EQ(aml::PkgLength(4094).size(), 3u);
}

TEST(Aml, IntegersAndNames) {
  EXPECT_EQ(aml::Integer(0), aml::Bytes{0x00});
  EXPECT_EQ(aml::Integer(1), aml::Bytes{0x01});
  EXPECT_EQ(aml::Integer(5), (aml::Bytes{0x0a, 5}));
  EXPECT_EQ(aml::Integer(0x1234), (aml::Bytes{0x0b, 0x34, 0x12}));
  EXPECT_EQ(aml::Integer(0xd0000000), (aml::Bytes{0x0c, 0, 0, 0, 0xd0}));
  EXPECT_EQ(aml::Integer(1ull << 32).size(), 9u);
  EXPECT_EQ(aml::NameString("\\_SB"), (aml::Bytes{'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(aml::NameString("\\_SB_.VR00"),
            (aml::Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'V', 'R', '0', '0'}));
  EXPECT_EQ(aml::String("ab"), (aml::Bytes{0x0d, 'a', 'b', 0}));
  EXPECT_EQ(aml::EisaId("PNP0501"), (aml::Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
}

TEST(AcpiTables, EveryTableChecksumsAndPointsAtTheNext) {
  absl::StatusOr<AcpiTables> tables = BuildAcpiTables(TwoDevices());
  ASSERT_TRUE(tables.ok()) << tables.status();
  const std::vector<uint8_t>& b = tables->bytes;
  ASSERT_LE(kAcpiBase + b.size(), kAcpiEnd);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "RSD PTR ");
  EXPECT_EQ(Sum(b.data(), 20), 0);
  EXPECT_EQ(Sum(b.data(), 36), 0);
  EXPECT_EQ(b[15], 2);
  EXPECT_EQ(Le(b, 24, 8), tables->xsdt_gpa);

  auto table = [&](uint64_t gpa, const char* sig) {
    const size_t off = gpa - kAcpiBase;
    EXPECT_EQ(std::string(b.begin() + off, b.begin() + off + 4), sig);
    const size_t len = Le(b, off + 4, 4);
    EXPECT_EQ(Sum(b.data() + off, len), 0) << sig;
    return std::vector<uint8_t>(b.begin() + off, b.begin() + off + len);
  };
  const std::vector<uint8_t> xsdt = table(tables->xsdt_gpa, "XSDT");
  EXPECT_EQ(Le(xsdt, 36, 8), tables->fadt_gpa);
  EXPECT_EQ(Le(xsdt, 44, 8), tables->madt_gpa);

  const std::vector<uint8_t> fadt = table(tables->fadt_gpa, "FACP");
  EXPECT_EQ(fadt.size(), 276u);
  EXPECT_EQ(Le(fadt, 140, 8), tables->dsdt_gpa);  // X_DSDT
  EXPECT_NE(Le(fadt, 112, 4) & (1u << 20), 0u);   // HW_REDUCED_ACPI
  EXPECT_NE(Le(fadt, 112, 4) & (1u << 10), 0u);   // RESET_REG_SUP
  EXPECT_EQ(fadt[116], 1);                        // reset: system I/O
  EXPECT_EQ(Le(fadt, 120, 8), 0xcf9u);
  EXPECT_EQ(fadt[128], 0x06);
  EXPECT_EQ(Le(fadt, 248, 8), 0x604u);  // SLEEP_CONTROL_REG address
  EXPECT_EQ(Le(fadt, 109, 2) & 2, 0u);  // no i8042

  const std::vector<uint8_t> madt = table(tables->madt_gpa, "APIC");
  EXPECT_EQ(Le(madt, 36, 4), kLocalApicAddress);
  size_t lapics = 0, ioapics = 0;
  for (size_t off = 44; off < madt.size(); off += madt[off + 1]) {
    if (madt[off] == 0) {
      EXPECT_EQ(madt[off + 3], lapics);  // APIC id
      EXPECT_EQ(madt[off + 4] & 1, 1);   // enabled
      ++lapics;
    }
    if (madt[off] == 1) {
      EXPECT_EQ(Le(madt, off + 4, 4), kIoapicAddress);
      ++ioapics;
    }
  }
  EXPECT_EQ(lapics, 3u);
  EXPECT_EQ(ioapics, 1u);
  table(tables->dsdt_gpa, "DSDT");
}

TEST(AcpiTables, RejectsWhatDoesNotFit) {
  AcpiConfig config;
  config.cpus = 0;
  EXPECT_FALSE(BuildAcpiTables(config).ok());
  config.cpus = 256;
  EXPECT_FALSE(BuildAcpiTables(config).ok());
  config.cpus = 255;
  EXPECT_TRUE(BuildAcpiTables(config).ok());
  config.virtio.resize(65);
  EXPECT_FALSE(BuildAcpiTables(config).ok());
}

TEST(AcpiTables, DsdtDescribesPvPanicUnlessTurnedOff) {
  auto contains = [](const std::vector<uint8_t>& t, std::string_view what) {
    return std::search(t.begin(), t.end(), what.begin(), what.end()) != t.end();
  };
  AcpiConfig config;
  EXPECT_TRUE(contains(BuildDsdt(config), "QEMU0001"));
  config.pvpanic_port = 0;
  EXPECT_FALSE(contains(BuildDsdt(config), "QEMU0001"));
}

// iasl -d turns the DSDT back into ASL: the devices Linux's virtio_mmio driver binds to must be
// there with their windows and interrupts.
TEST(AcpiTables, IaslDisassemblesTheDsdtIntoTheVirtioDevices) {
  if (std::system("command -v iasl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "iasl (acpica-tools) is not installed";
  }
  char dir[] = "/tmp/rehome-dsdt-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string aml = std::string(dir) + "/dsdt.aml";
  const std::vector<uint8_t> dsdt = BuildDsdt(TwoDevices());
  std::ofstream(aml, std::ios::binary)
      .write(reinterpret_cast<const char*>(dsdt.data()), static_cast<std::streamsize>(dsdt.size()));
  const std::string cmd = "cd " + std::string(dir) + " && iasl -d dsdt.aml >iasl.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "iasl failed; see " << dir << "/iasl.log";
  std::ifstream dsl(std::string(dir) + "/dsdt.dsl");
  std::stringstream text;
  text << dsl.rdbuf();
  const std::string asl = text.str();
  EXPECT_NE(asl.find("Device (VR00)"), std::string::npos) << asl;
  EXPECT_NE(asl.find("Device (VR01)"), std::string::npos);
  EXPECT_NE(asl.find("\"LNRO0005\""), std::string::npos);
  EXPECT_NE(asl.find("0xD0000200"), std::string::npos);
  EXPECT_NE(asl.find("0x00000006,"), std::string::npos);  // VR01's interrupt
  EXPECT_NE(asl.find("_S5_"), std::string::npos);
  EXPECT_NE(asl.find("Device (COM1)"), std::string::npos);
  EXPECT_NE(asl.find("EisaId (\"PNP0501\")"), std::string::npos);
  EXPECT_NE(asl.find("0x03F8,"), std::string::npos);
  EXPECT_NE(asl.find("Device (PEVT)"), std::string::npos);  // pvpanic
  EXPECT_NE(asl.find("\"QEMU0001\""), std::string::npos);
  EXPECT_NE(asl.find("0x0505,"), std::string::npos);
  std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace rehome
