// vmm/domain/domain_xml.h: reads a libvirt domain definition (the subset rehome runs) into a
// plain DomainConfig, including rehome's recovery policy from <metadata>. The format, every
// supported element and attribute, and what is rejected are documented in docs/domain-xml.md.
// Thread-safe: the functions keep no state (libvirt/libxml2 are initialised once, internally).
#ifndef REHOME_VMM_DOMAIN_DOMAIN_XML_H_
#define REHOME_VMM_DOMAIN_DOMAIN_XML_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "recovery/policy/recovery_policy.h"

namespace rehome {

// Namespace URI of rehome's <metadata> element (matched by URI, never by prefix).
inline constexpr std::string_view kRehomeDomainNamespace = "https://rehome.dev/xmlns/domain/1.0";

// on_poweroff / on_reboot / on_crash. libvirt also defines rename-restart, coredump-destroy and
// coredump-restart; rehome rejects those. preserve keeps the stopped VM for the operator (QMP).
enum class LifecycleAction { kDestroy, kRestart, kPreserve };

// <disk type='file' device='disk'> with a virtio target.
struct DiskConfig {
  std::string source_file;  // <source file=...>, resolved (see ParseDomainXmlFromFile)
  std::string target_dev;   // <target dev=...>, e.g. "vda"
  bool read_only = false;   // <readonly/>
  bool direct = false;      // <driver cache='none'|'directsync'>: O_DIRECT
  friend bool operator==(const DiskConfig&, const DiskConfig&) = default;
};

enum class CharDeviceKind { kSerial, kConsole };
enum class CharBackend { kPty, kFile, kUnix, kStdio };

// <serial> or <console>.
struct CharDeviceConfig {
  CharDeviceKind kind = CharDeviceKind::kSerial;
  CharBackend backend = CharBackend::kPty;
  std::string path;         // <source path=...>: required for file/unix, empty for stdio
                            // (and for pty unless given)
  std::string target_type;  // <target type=...> ("serial", "virtio", ...) or empty
  friend bool operator==(const CharDeviceConfig&, const CharDeviceConfig&) = default;
};

// A device under <devices> that rehome does not emulate: the guest will not see it.
struct UnsupportedDevice {
  std::string element;             // e.g. "graphics"
  std::string type;                // what kind: e.g. "vnc"; may be empty
  std::string attribute = "type";  // where `type` came from: "type" or "model"
  std::string Describe() const;    // "<graphics type='vnc'>"
  friend bool operator==(const UnsupportedDevice&, const UnsupportedDevice&) = default;
};

struct DomainConfig {
  std::string name;
  std::string uuid;           // canonical lower-case 8-4-4-4-12 form; empty when <uuid> is absent
  uint64_t memory_bytes = 0;  // <memory>, a whole number of 4 KiB pages
  int vcpus = 0;              // <vcpu>, 1..kMaxVcpus
  std::string kernel_path;    // <os><kernel>, required
  std::string initrd_path;    // <os><initrd>, optional
  std::string cmdline;        // <os><cmdline>, optional
  LifecycleAction on_poweroff = LifecycleAction::kDestroy;
  LifecycleAction on_reboot = LifecycleAction::kRestart;
  LifecycleAction on_crash = LifecycleAction::kDestroy;
  std::vector<DiskConfig> disks;               // in document order
  std::vector<CharDeviceConfig> char_devices;  // serials and consoles, in document order
  // Devices rehome does not emulate, in document order (domain_devices.h has the rules); a
  // caller warns about them (`rehome run` on stderr and over QMP).
  std::vector<UnsupportedDevice> unsupported_devices;
  RecoveryPolicy recovery;  // defaults when <metadata> has none

  static constexpr int kMaxVcpus = 64;  // as `rehome run --cpus`
};

// Parses and checks `xml`. With `validate_with_libvirt` the definition is first validated by
// libvirt (schema and libvirt's own checks; relative paths, a rehome extension, are made
// absolute for that check only). Every error is InvalidArgument with a one-line message
// naming the element (and attribute) at fault. Relative paths are returned unchanged.
absl::StatusOr<DomainConfig> ParseDomainXml(std::string_view xml,
                                            bool validate_with_libvirt = true);

// Reads `path` and parses it like ParseDomainXml; relative kernel/initrd/disk/char-device
// paths are resolved against the directory holding `path`. A missing file is NotFound.
absl::StatusOr<DomainConfig> ParseDomainXmlFromFile(const std::string& path,
                                                    bool validate_with_libvirt = true);

// `value` scaled by a libvirt memory `unit` (case-insensitive; empty = KiB): b/byte/bytes,
// k/KiB, KB, M/MiB, MB, G/GiB, GB, T/TiB, TB, P/PiB, PB, E/EiB, EB. InvalidArgument on an
// unknown unit or overflow.
absl::StatusOr<uint64_t> ScaleMemory(uint64_t value, std::string_view unit);

std::string_view LifecycleActionName(LifecycleAction action);
std::string_view CharBackendName(CharBackend backend);

}  // namespace rehome

#endif  // REHOME_VMM_DOMAIN_DOMAIN_XML_H_
