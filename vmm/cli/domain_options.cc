// vmm/cli/domain_options.cc: ApplyDomainFile.
#include "vmm/cli/domain_options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "vmm/domain/domain_xml.h"

namespace rehome {

static_assert(DomainConfig::kMaxVcpus == kMaxCpus, "<vcpu> and --cpus have the same range");

std::string DomainFacts::Warning(const std::string& file) const {
  if (unsupported_devices.empty()) return "";
  std::vector<std::string> described;
  for (const UnsupportedDevice& d : unsupported_devices) described.push_back(d.Describe());
  return absl::StrCat("rehome: warning: ", file, ": rehome does not emulate ",
                      absl::StrJoin(described, ", "), "; the guest will not see ",
                      described.size() == 1 ? "it" : "them");
}

nlohmann::json DomainFacts::UnsupportedDevicesJson() const {
  nlohmann::json list = nlohmann::json::array();
  for (const UnsupportedDevice& d : unsupported_devices) {
    nlohmann::json entry = {{"element", d.element}};
    if (!d.type.empty()) entry[d.attribute] = d.type;
    list.push_back(std::move(entry));
  }
  return list;
}

absl::StatusOr<DomainFacts> ApplyDomainFile(RunOptions* options) {
  ASSIGN_OR_RETURN(DomainConfig domain_config, ParseDomainXmlFromFile(options->domain_file));
  const DomainConfig* domain = &domain_config;
  if (domain->disks.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        options->domain_file, ": rehome supports one <disk> (virtio-blk); this domain has ",
        domain->disks.size()));
  }
  if (!domain->disks.empty()) {
    if (!options->disk.empty()) {
      return absl::InvalidArgumentError("--disk: conflicts with the <disk> of --domain");
    }
    options->disk = domain->disks[0].source_file;
    options->disk_read_only = domain->disks[0].read_only;
    options->disk_direct = options->disk_direct || domain->disks[0].direct;
  }
  if (domain->memory_bytes % (2u << 20) != 0 || domain->memory_bytes < (kMinMemoryMib << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat(options->domain_file, ": <memory> must be a multiple of 2 MiB and at least ",
                     kMinMemoryMib, " MiB"));
  }
  for (const CharDeviceConfig& c : domain->char_devices) {
    // A <console type='unix'> with a target of virtio is rehome's virtio-console socket.
    if (c.kind == CharDeviceKind::kConsole && c.backend == CharBackend::kUnix &&
        c.target_type == "virtio" && options->console_socket.empty()) {
      options->console_socket = c.path;
    }
  }
  if (domain->interfaces.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(options->domain_file,
                     ": rehome supports one <interface type='ethernet'> "
                     "(virtio-net); this domain has ",
                     domain->interfaces.size()));
  }
  if (!domain->interfaces.empty()) {
    if (options->netdev.has_value()) {
      return absl::InvalidArgumentError("--netdev: conflicts with the <interface> of --domain");
    }
    const InterfaceConfig& iface = domain->interfaces[0];
    NetdevSpec spec;
    spec.ifname = iface.target_dev;
    if (!iface.mac.empty()) {
      absl::StatusOr<virtio::MacAddress> mac = virtio::ParseMac(iface.mac);
      if (!mac.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(options->domain_file, ": <mac address>: ", mac.status().message()));
      }
      spec.mac = *mac;
    }
    options->netdev = spec;
  }
  // The domain's lifecycle actions, unless given on the command line.
  if (options->on_crash.empty()) options->on_crash = LifecycleActionName(domain->on_crash);
  if (options->on_reboot.empty()) options->on_reboot = LifecycleActionName(domain->on_reboot);
  if (options->on_poweroff.empty()) {
    options->on_poweroff = LifecycleActionName(domain->on_poweroff);
  }
  options->kernel = domain->kernel_path;
  options->initrd = domain->initrd_path;
  options->memory_mib = domain->memory_bytes >> 20;
  options->cpus = domain->vcpus;
  options->cmdline = domain->cmdline;
  // The domain's recovery policy; L1 binaries given on the command line win.
  RecoveryPolicy policy = domain->recovery;
  if (!options->policy.l1_binary.empty()) policy.l1_binary = options->policy.l1_binary;
  if (!options->policy.standby_l1_binary.empty()) {
    policy.standby_l1_binary = options->policy.standby_l1_binary;
  }
  if (options->policy.verify != VerifyMode::kNone) policy.verify = options->policy.verify;
  options->policy = policy;
  // <rehome:nested>: nested mode with the domain's L1 image (command-line L1 files win).
  if (!policy.nested_l1_kernel.empty()) {
    options->nested = true;
    options->split = false;
    NestedOptions& n = options->nested_options;
    if (n.l1_kernel.empty()) n.l1_kernel = policy.nested_l1_kernel;
    if (n.l1_initrd.empty()) n.l1_initrd = policy.nested_l1_initrd;
    n.l1_memory_mib = static_cast<uint64_t>(policy.nested_l1_memory_mib);
  }
  return DomainFacts{domain->name, domain->uuid, domain->unsupported_devices};
}

}  // namespace rehome
