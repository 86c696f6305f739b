// tests/fuzz/domain_xml_fuzz.cc: libFuzzer target for rehome's reading of a libvirt domain XML
// (vmm/domain/domain_xml.h): libxml2 parsing with rehome's options, the element and attribute
// checks, the recovery policy in <metadata>, the device checks, and (for one input in four) the
// validation by libvirt's own test driver.
//
// Input: a selector byte, then the document. Checked: no memory error or UB; every error is one
// line; an accepted domain has the values its contract promises (vCPUs within --cpus' range,
// memory a whole number of pages, a kernel path).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_util.h"
#include "vmm/domain/domain_xml.h"

namespace {

using rehome::fuzz::Check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool libvirt = in.ConsumeIntegralInRange(0, 3) == 0;
  const std::string xml = in.ConsumeRemainingBytesAsString();
  absl::StatusOr<rehome::DomainConfig> domain = rehome::ParseDomainXml(xml, libvirt);
  if (!domain.ok()) {
    Check(domain.status().message().find('\n') == std::string_view::npos);
    return 0;
  }
  Check(domain->vcpus >= 1 && domain->vcpus <= rehome::DomainConfig::kMaxVcpus);
  Check(domain->memory_bytes != 0 && domain->memory_bytes % 4096 == 0);
  Check(!domain->kernel_path.empty());
  return 0;
}
