// vmm/domain/recovery_policy_xml.h: reads rehome's <recovery> element (namespace
// kRehomeDomainNamespace, any prefix) from a libvirt domain's <metadata> into a RecoveryPolicy.
// Elements of other namespaces are ignored; unknown elements/attributes of ours are errors.
// Thread-compatible (works on a document owned by the caller).
#ifndef REHOME_VMM_DOMAIN_RECOVERY_POLICY_XML_H_
#define REHOME_VMM_DOMAIN_RECOVERY_POLICY_XML_H_

#include <libxml/tree.h>

#include "absl/status/statusor.h"
#include "recovery/policy/recovery_policy.h"

namespace rehome {

// `metadata` is the domain's <metadata> element or nullptr. No rehome element -> defaults.
// Errors are InvalidArgument, e.g. `recovery policy: <rehome:hang timeout-ms="abc">: not an
// integer` (elements are named with the prefix the document uses).
absl::StatusOr<RecoveryPolicy> ReadRecoveryPolicy(const xmlNode* metadata);

}  // namespace rehome

#endif  // REHOME_VMM_DOMAIN_RECOVERY_POLICY_XML_H_
