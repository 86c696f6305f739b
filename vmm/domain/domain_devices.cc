// vmm/domain/domain_devices.cc: the device rules (see header).
#include "vmm/domain/domain_devices.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "vmm/domain/xml_util.h"

namespace rehome {
namespace {

struct DeviceRule {
  std::string_view element;
  DeviceSupport support;
  // When set, the rule applies only to elements it accepts; later rules (or kNotEmulated)
  // cover the rest.
  bool (*applies)(const xmlNode* device) = nullptr;
};

bool BalloonModelNone(const xmlNode* device) {
  return xml::Attribute(device, "model").value_or("") == "none";
}

// First match wins; an element no rule names is kNotEmulated.
// To emulate a new device: add it here as kEmulated and read it in ReadDevices (domain_xml.cc).
// virtio-net will add {"interface", kEmulated, <type='ethernet' with <model type='virtio'/>>}.
constexpr DeviceRule kDeviceRules[] = {
    {"disk", DeviceSupport::kEmulated},             // virtio-blk (one file-backed disk)
    {"serial", DeviceSupport::kEmulated},           // COM1
    {"console", DeviceSupport::kEmulated},          // COM1, or virtio-console on a UNIX socket
    {"emulator", DeviceSupport::kNotApplicable},    // rehome is the device model
    {"controller", DeviceSupport::kNotApplicable},  // rehome's devices sit on virtio-mmio
    {"memballoon", DeviceSupport::kNotApplicable, BalloonModelNone},
};

}  // namespace

DeviceSupport ClassifyDevice(const xmlNode* device) {
  const std::string_view name = reinterpret_cast<const char*>(device->name);
  for (const DeviceRule& rule : kDeviceRules) {
    if (rule.element == name && (rule.applies == nullptr || rule.applies(device))) {
      return rule.support;
    }
  }
  return DeviceSupport::kNotEmulated;
}

UnsupportedDevice DescribeDevice(const xmlNode* device) {
  UnsupportedDevice result;
  result.element = reinterpret_cast<const char*>(device->name);
  result.type = xml::Attribute(device, "type").value_or("");
  if (result.type.empty()) {
    result.type = xml::Attribute(device, "model").value_or("");  // <memballoon model=...>
    if (!result.type.empty()) result.attribute = "model";
  }
  return result;
}

std::string UnsupportedDevice::Describe() const {
  return type.empty() ? absl::StrCat("<", element, ">")
                      : absl::StrCat("<", element, " ", attribute, "='", type, "'>");
}

}  // namespace rehome
