// vmm/domain/libvirt_validate.h: validates a domain definition with real libvirt, in-process
// (no daemon): a private instance of libvirt's test driver defines the domain with
// VIR_DOMAIN_DEFINE_VALIDATE (RelaxNG schema + libvirt's own checks) and undefines it again.
// Thread-safe: each call opens its own empty test-driver instance; libvirt's default error
// printing to stderr is switched off process-wide on first use.
#ifndef REHOME_VMM_DOMAIN_LIBVIRT_VALIDATE_H_
#define REHOME_VMM_DOMAIN_LIBVIRT_VALIDATE_H_

#include <string_view>

#include "absl/status/status.h"

namespace rehome {

// OK when libvirt accepts `xml`; InvalidArgument "libvirt rejected the domain: <message>"
// otherwise; Internal when libvirt itself cannot be started.
absl::Status ValidateDomainWithLibvirt(std::string_view xml);

}  // namespace rehome

#endif  // REHOME_VMM_DOMAIN_LIBVIRT_VALIDATE_H_
