// vmm/domain/domain_devices.h: what rehome does with each element under a domain's <devices>
// (internal to vmm/domain). The rules are one table, kDeviceRules in domain_devices.cc: the one
// place to extend when rehome learns to emulate a device (e.g. <interface type='ethernet'> with
// a virtio model, once virtio-net exists). docs/domain-xml.md lists the same rules.
// Thread-safe: pure functions over a constant table.
#ifndef REHOME_VMM_DOMAIN_DOMAIN_DEVICES_H_
#define REHOME_VMM_DOMAIN_DOMAIN_DEVICES_H_

#include <libxml/tree.h>

#include "vmm/domain/domain_xml.h"

namespace rehome {

enum class DeviceSupport {
  kEmulated,       // rehome builds it from the element (ReadDevices reads it, or rejects a form
                   // rehome cannot build with a one-line error)
  kNotApplicable,  // no guest device follows from it (the host's emulator binary, buses rehome
                   // does not have, a balloon of model 'none')
  kNotEmulated,    // a guest device rehome does not build: the guest will not see it; listed in
                   // DomainConfig::unsupported_devices so that `rehome run` warns
};

DeviceSupport ClassifyDevice(const xmlNode* device);

// The element name and its type attribute (or the type of its <model>), for the warning.
UnsupportedDevice DescribeDevice(const xmlNode* device);

}  // namespace rehome

#endif  // REHOME_VMM_DOMAIN_DOMAIN_DEVICES_H_
