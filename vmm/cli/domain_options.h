// vmm/cli/domain_options.h: `rehome run --domain FILE.xml`: the libvirt domain XML (parsed and
// validated by vmm/domain/) becomes `rehome run` options: kernel, memory, vCPUs, command line,
// disk, virtio-console socket, lifecycle actions and the recovery policy. Options given on the
// command line that the domain also sets are kept where that makes sense (lifecycle actions) and
// refused where they conflict (a second disk). Thread-safety: a pure function of its inputs and
// the file.
#ifndef REHOME_VMM_CLI_DOMAIN_OPTIONS_H_
#define REHOME_VMM_CLI_DOMAIN_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "vmm/cli/run_options.h"
#include "vmm/domain/domain_xml.h"

namespace rehome {

// What `rehome run` keeps of the domain besides the options: its identity (for QMP) and the
// devices it asks for that rehome does not emulate (warned about on stderr, listed over QMP).
struct DomainFacts {
  std::string name;
  std::string uuid;
  std::vector<UnsupportedDevice> unsupported_devices;

  // One line for stderr ("" when every device is emulated).
  std::string Warning(const std::string& file) const;
  // For QMP's __org.rehome_query-unsupported-devices: [{"element": ..., "type": ...}, ...].
  nlohmann::json UnsupportedDevicesJson() const;
};

// Reads options->domain_file into *options. InvalidArgument / NotFound with a one-line message
// naming the file or the element.
absl::StatusOr<DomainFacts> ApplyDomainFile(RunOptions* options);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_DOMAIN_OPTIONS_H_
