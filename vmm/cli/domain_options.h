// vmm/cli/domain_options.h: `rehome run --domain FILE.xml`: the libvirt domain XML (parsed and
// validated by vmm/domain/) becomes `rehome run` options: kernel, memory, vCPUs, command line,
// disk, virtio-console socket, lifecycle actions and the recovery policy. Options given on the
// command line that the domain also sets are kept where that makes sense (lifecycle actions) and
// refused where they conflict (a second disk). Thread-safety: a pure function of its inputs and
// the file.
#ifndef REHOME_VMM_CLI_DOMAIN_OPTIONS_H_
#define REHOME_VMM_CLI_DOMAIN_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "vmm/cli/run_options.h"

namespace rehome {

// Reads options->domain_file into *options; fills the domain's name and UUID (for QMP).
// InvalidArgument / NotFound with a one-line message naming the file or the element.
absl::Status ApplyDomainFile(RunOptions* options, std::string* domain_name,
                             std::string* domain_uuid);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_DOMAIN_OPTIONS_H_
