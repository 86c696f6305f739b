// vmm/domain/domain_xml.cc: libvirt domain XML -> DomainConfig (see header and
// docs/domain-xml.md). Stateless; libxml2 reads the fields (XPath), libvirt validates.
#include "vmm/domain/domain_xml.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/errno_status.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"
#include "vmm/domain/domain_devices.h"
#include "vmm/domain/libvirt_validate.h"
#include "vmm/domain/recovery_policy_xml.h"
#include "vmm/domain/xml_util.h"

namespace rehome {
namespace {

constexpr size_t kMaxDomainXmlBytes = 16 << 20;
constexpr uint64_t kPageSize = 4096;

// Every error leaves as one line, whatever text of the document it quotes.
absl::Status OneLineStatus(const absl::Status& status) {
  return absl::Status(status.code(), xml::OneLine(std::string_view(status.message().data(),
                                                                   status.message().size()),
                                                  std::string::npos));
}

absl::Status DomainError(const std::string& what, const std::string& problem) {
  // `what` quotes the document, whose values may hold newlines or be long: still one line.
  return absl::InvalidArgumentError(
      absl::StrCat("domain XML: ", xml::OneLine(what), ": ", problem));
}

// "<element attr="value">" for messages.
std::string Describe(const xmlNode* node, const char* attr, const std::string& value) {
  return absl::StrCat("<", xml::QualifiedName(node), " ", attr, "=\"", value, "\">");
}

std::string Describe(const xmlNode* node) {
  return absl::StrCat("<", xml::QualifiedName(node), ">");
}

// Strict unsigned decimal: digits only, no sign or blanks.
std::optional<uint64_t> ParseUnsigned(const std::string& text) {
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(absl::string_view(text), &value)) return std::nullopt;
  return value;
}

// Resolves a relative `path` against `base_dir` (no-op for absolute paths or an empty base).
std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// The XPath expressions (relative to <domain>) of every file path rehome reads.
constexpr const char* kPathTexts[] = {"os/kernel", "os/initrd"};
constexpr const char* kPathAttrs[][2] = {{"devices/disk/source", "file"},
                                         {"devices/serial/source", "path"},
                                         {"devices/console/source", "path"}};

// Makes relative paths absolute in `root` (a copy handed to libvirt, whose schema only takes
// absolute paths); `base_dir` may be empty, then "/" stands in for it.
void AbsolutizeForLibvirt(xmlNode* root, const std::string& base_dir) {
  const std::string base = base_dir.empty() ? "/" : base_dir;
  for (const char* expr : kPathTexts) {
    for (xmlNode* node : xml::Select(root, expr)) {
      const std::string path = xml::TrimmedText(node);
      if (path.empty() || path.front() == '/') continue;
      const std::string absolute = ResolvePath(path, base);
      xmlNodeSetContent(node, nullptr);
      xmlNodeAddContent(node, reinterpret_cast<const xmlChar*>(absolute.c_str()));
    }
  }
  for (const auto& [expr, attr] : kPathAttrs) {
    for (xmlNode* node : xml::Select(root, expr)) {
      const std::optional<std::string> path = xml::Attribute(node, attr);
      if (!path || path->empty() || path->front() == '/') continue;
      xmlSetProp(node, reinterpret_cast<const xmlChar*>(attr),
                 reinterpret_cast<const xmlChar*>(ResolvePath(*path, base).c_str()));
    }
  }
}

// Text of the single child `expr`; nullopt when absent.
absl::StatusOr<std::optional<std::string>> OptionalText(xmlNode* parent, const char* expr) {
  ASSIGN_OR_RETURN(xmlNode * node, xml::SelectOne(parent, expr));
  if (node == nullptr) return std::optional<std::string>();
  return std::optional<std::string>(xml::TrimmedText(node));
}

absl::StatusOr<std::string> CanonicalUuid(xmlNode* node) {
  const std::string text = xml::TrimmedText(node);
  std::string hex;
  bool valid = true;
  for (char c : text) {
    if (c == '-') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      valid = false;
      break;
    }
    hex.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  if (!valid || hex.size() != 32) {
    return DomainError(absl::StrCat("<uuid>", text, "</uuid>"), "not a UUID (32 hex digits)");
  }
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

absl::Status ReadMemory(xmlNode* root, DomainConfig* config) {
  ASSIGN_OR_RETURN(xmlNode * node, xml::SelectOne(root, "memory"));
  if (node == nullptr) return DomainError("<domain>", "missing <memory>");
  const std::string unit = xml::Attribute(node, "unit").value_or("");
  const std::string text = xml::TrimmedText(node);
  const std::string where = absl::StrCat("<memory unit=\"", unit, "\">", text, "</memory>");
  std::optional<uint64_t> value = ParseUnsigned(text);
  if (!value) return DomainError(where, "not a non-negative integer");
  absl::StatusOr<uint64_t> bytes = ScaleMemory(*value, unit);
  if (!bytes.ok()) return DomainError(where, std::string(bytes.status().message()));
  // libvirt keeps memory in KiB, rounding up.
  uint64_t rounded = (*bytes / 1024 + (*bytes % 1024 != 0 ? 1 : 0)) * 1024;
  if (rounded == 0) return DomainError(where, "memory must not be zero");
  if (rounded % kPageSize != 0) return DomainError(where, "not a whole number of 4 KiB pages");
  config->memory_bytes = rounded;
  return absl::OkStatus();
}

absl::Status ReadVcpus(xmlNode* root, DomainConfig* config) {
  ASSIGN_OR_RETURN(xmlNode * node, xml::SelectOne(root, "vcpu"));
  config->vcpus = 1;  // libvirt's default
  if (node == nullptr) return absl::OkStatus();
  const std::string text = xml::TrimmedText(node);
  std::optional<uint64_t> value = ParseUnsigned(text);
  if (!value || *value < 1 || *value > DomainConfig::kMaxVcpus) {
    return DomainError(absl::StrCat("<vcpu>", text, "</vcpu>"),
                       absl::StrCat("must be an integer between 1 and ", DomainConfig::kMaxVcpus));
  }
  config->vcpus = static_cast<int>(*value);
  if (auto current = xml::Attribute(node, "current"); current && *current != text) {
    return DomainError(Describe(node, "current", *current),
                       "vCPU hot-plug is not supported: current must equal the vcpu count");
  }
  return absl::OkStatus();
}

absl::Status ReadOs(xmlNode* root, const std::string& base_dir, DomainConfig* config) {
  ASSIGN_OR_RETURN(xmlNode * os, xml::SelectOne(root, "os"));
  if (os == nullptr) return DomainError("<domain>", "missing <os>");
  ASSIGN_OR_RETURN(xmlNode * type, xml::SelectOne(os, "type"));
  if (type == nullptr) return DomainError("<os>", "missing <type>hvm</type>");
  if (const std::string text = xml::TrimmedText(type); text != "hvm") {
    return DomainError(absl::StrCat("<os><type>", text, "</type>"), "rehome runs only hvm guests");
  }
  if (auto arch = xml::Attribute(type, "arch"); arch && *arch != "x86_64") {
    return DomainError(Describe(type, "arch", *arch), "rehome runs only x86_64 guests");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> kernel, OptionalText(os, "kernel"));
  if (!kernel || kernel->empty()) {
    return DomainError("<os>", "missing <kernel>: rehome boots a kernel image directly");
  }
  config->kernel_path = ResolvePath(*kernel, base_dir);
  ASSIGN_OR_RETURN(std::optional<std::string> initrd, OptionalText(os, "initrd"));
  if (initrd) config->initrd_path = ResolvePath(*initrd, base_dir);
  ASSIGN_OR_RETURN(std::optional<std::string> cmdline, OptionalText(os, "cmdline"));
  if (cmdline) config->cmdline = *cmdline;
  return absl::OkStatus();
}

absl::Status ReadLifecycle(xmlNode* root, const char* element, LifecycleAction* action) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, OptionalText(root, element));
  if (!text) return absl::OkStatus();
  for (LifecycleAction candidate :
       {LifecycleAction::kDestroy, LifecycleAction::kRestart, LifecycleAction::kPreserve}) {
    if (*text == LifecycleActionName(candidate)) {
      *action = candidate;
      return absl::OkStatus();
    }
  }
  const std::string where = absl::StrCat("<", element, ">", *text, "</", element, ">");
  if (*text == "rename-restart" || *text == "coredump-destroy" || *text == "coredump-restart") {
    return DomainError(where, "not supported by rehome (supported: destroy, restart, preserve)");
  }
  return DomainError(where, "unknown action (supported: destroy, restart, preserve)");
}

absl::Status ReadDisk(xmlNode* disk, const std::string& base_dir, DomainConfig* config) {
  const std::string type = xml::Attribute(disk, "type").value_or("file");
  if (type != "file") {
    return DomainError(Describe(disk, "type", type), "rehome supports only type=\"file\" disks");
  }
  const std::string device = xml::Attribute(disk, "device").value_or("disk");
  if (device != "disk") {
    return DomainError(Describe(disk, "device", device),
                       "rehome supports only device=\"disk\" disks");
  }
  DiskConfig result;
  ASSIGN_OR_RETURN(xmlNode * source, xml::SelectOne(disk, "source"));
  std::optional<std::string> file = source ? xml::Attribute(source, "file") : std::nullopt;
  if (!file || file->empty()) return DomainError("<disk>", "missing <source file=...>");
  result.source_file = ResolvePath(*file, base_dir);
  ASSIGN_OR_RETURN(xmlNode * target, xml::SelectOne(disk, "target"));
  std::optional<std::string> dev = target ? xml::Attribute(target, "dev") : std::nullopt;
  if (!dev || dev->empty()) return DomainError("<disk>", "missing <target dev=...>");
  result.target_dev = *dev;
  if (auto bus = xml::Attribute(target, "bus")) {
    if (*bus != "virtio") {
      return DomainError(Describe(target, "bus", *bus), "rehome supports only bus=\"virtio\"");
    }
  } else if (dev->rfind("vd", 0) != 0) {
    return DomainError(Describe(target, "dev", *dev),
                       "no bus given and the name does not imply virtio (vdX); set bus=\"virtio\"");
  }
  ASSIGN_OR_RETURN(xmlNode * driver, xml::SelectOne(disk, "driver"));
  if (driver != nullptr) {
    if (auto format = xml::Attribute(driver, "type"); format && *format != "raw") {
      return DomainError(Describe(driver, "type", *format), "rehome reads only raw images");
    }
    // libvirt's cache modes: none and directsync bypass the host page cache (O_DIRECT; every
    // guest FLUSH is still an fdatasync); default and writeback use it.
    if (auto cache = xml::Attribute(driver, "cache")) {
      if (*cache == "none" || *cache == "directsync") {
        result.direct = true;
      } else if (*cache != "default" && *cache != "writeback") {
        return DomainError(Describe(driver, "cache", *cache),
                           "supported cache modes: default, writeback, none, directsync");
      }
    }
  }
  ASSIGN_OR_RETURN(xmlNode * readonly, xml::SelectOne(disk, "readonly"));
  result.read_only = readonly != nullptr;
  for (const DiskConfig& other : config->disks) {
    if (other.target_dev == result.target_dev) {
      return DomainError(Describe(target, "dev", *dev), "target used by two disks");
    }
  }
  config->disks.push_back(std::move(result));
  return absl::OkStatus();
}

absl::Status ReadCharDevice(xmlNode* node, CharDeviceKind kind, const std::string& base_dir,
                            DomainConfig* config) {
  CharDeviceConfig result;
  result.kind = kind;
  const std::optional<std::string> type = xml::Attribute(node, "type");
  if (!type) return DomainError(Describe(node), "missing attribute type");
  bool known = false;
  for (CharBackend backend :
       {CharBackend::kPty, CharBackend::kFile, CharBackend::kUnix, CharBackend::kStdio}) {
    if (*type == CharBackendName(backend)) {
      result.backend = backend;
      known = true;
    }
  }
  if (!known) {
    return DomainError(Describe(node, "type", *type),
                       "rehome supports only type pty, file, unix or stdio");
  }
  ASSIGN_OR_RETURN(xmlNode * source, xml::SelectOne(node, "source"));
  if (source != nullptr) {
    result.path = ResolvePath(xml::Attribute(source, "path").value_or(""), base_dir);
  }
  if ((result.backend == CharBackend::kFile || result.backend == CharBackend::kUnix) &&
      result.path.empty()) {
    return DomainError(Describe(node, "type", *type), "needs <source path=...>");
  }
  if (result.backend == CharBackend::kStdio) result.path.clear();
  ASSIGN_OR_RETURN(xmlNode * target, xml::SelectOne(node, "target"));
  if (target != nullptr) result.target_type = xml::Attribute(target, "type").value_or("");
  config->char_devices.push_back(std::move(result));
  return absl::OkStatus();
}

absl::Status ReadDevices(xmlNode* root, const std::string& base_dir, DomainConfig* config) {
  ASSIGN_OR_RETURN(xmlNode * devices, xml::SelectOne(root, "devices"));
  if (devices == nullptr) return absl::OkStatus();
  for (xmlNode* child = devices->children; child != nullptr; child = child->next) {
    if (child->type != XML_ELEMENT_NODE) continue;
    const std::string name = reinterpret_cast<const char*>(child->name);
    switch (ClassifyDevice(child)) {
      case DeviceSupport::kNotApplicable:
        continue;
      case DeviceSupport::kNotEmulated:
        config->unsupported_devices.push_back(DescribeDevice(child));
        continue;
      case DeviceSupport::kEmulated:
        break;
    }
    if (name == "disk") {
      RETURN_IF_ERROR(ReadDisk(child, base_dir, config));
    } else if (name == "serial") {
      RETURN_IF_ERROR(ReadCharDevice(child, CharDeviceKind::kSerial, base_dir, config));
    } else if (name == "console") {
      RETURN_IF_ERROR(ReadCharDevice(child, CharDeviceKind::kConsole, base_dir, config));
    } else {
      return absl::InternalError(absl::StrCat("domain XML: <", name,
                                              "> is marked emulated "
                                              "in domain_devices.cc but not read here"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DomainConfig> ReadDomain(xmlNode* root, const std::string& base_dir) {
  DomainConfig config;
  const std::optional<std::string> type = xml::Attribute(root, "type");
  if (!type) return DomainError("<domain>", "missing attribute type (use type=\"kvm\")");
  if (*type != "kvm") {
    return DomainError(Describe(root, "type", *type), "rehome runs only type=\"kvm\" domains");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> name, OptionalText(root, "name"));
  if (!name || name->empty()) return DomainError("<domain>", "missing <name>");
  if (name->find('/') != std::string::npos) {
    return DomainError(absl::StrCat("<name>", *name, "</name>"), "must not contain '/'");
  }
  config.name = *name;
  ASSIGN_OR_RETURN(xmlNode * uuid, xml::SelectOne(root, "uuid"));
  if (uuid != nullptr) {
    ASSIGN_OR_RETURN(config.uuid, CanonicalUuid(uuid));
  }
  RETURN_IF_ERROR(ReadMemory(root, &config));
  RETURN_IF_ERROR(ReadVcpus(root, &config));
  RETURN_IF_ERROR(ReadOs(root, base_dir, &config));
  RETURN_IF_ERROR(ReadLifecycle(root, "on_poweroff", &config.on_poweroff));
  RETURN_IF_ERROR(ReadLifecycle(root, "on_reboot", &config.on_reboot));
  RETURN_IF_ERROR(ReadLifecycle(root, "on_crash", &config.on_crash));
  RETURN_IF_ERROR(ReadDevices(root, base_dir, &config));
  ASSIGN_OR_RETURN(xmlNode * metadata, xml::SelectOne(root, "metadata"));
  ASSIGN_OR_RETURN(config.recovery, ReadRecoveryPolicy(metadata));
  return config;
}

absl::StatusOr<DomainConfig> Parse(std::string_view text, bool validate_with_libvirt,
                                   const std::string& base_dir) {
  ASSIGN_OR_RETURN(xml::DocPtr doc, xml::ParseDocument(text));
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (root == nullptr || root->ns != nullptr ||
      !xmlStrEqual(root->name, reinterpret_cast<const xmlChar*>("domain"))) {
    return absl::InvalidArgumentError(
        "domain XML: the root element must be <domain> (in no namespace)");
  }
  if (validate_with_libvirt) {
    xml::DocPtr copy(xmlCopyDoc(doc.get(), 1));
    if (copy == nullptr) return absl::ResourceExhaustedError("libxml2: cannot copy document");
    AbsolutizeForLibvirt(xmlDocGetRootElement(copy.get()), base_dir);
    const xml::QuietXmlErrors quiet;  // libvirt parses it again with libxml2
    RETURN_IF_ERROR(ValidateDomainWithLibvirt(xml::DumpDocument(copy.get())));
  }
  return ReadDomain(root, base_dir);
}

}  // namespace

absl::StatusOr<uint64_t> ScaleMemory(uint64_t value, std::string_view unit) {
  const std::string u = absl::AsciiStrToLower(absl::string_view(unit.data(), unit.size()));
  uint64_t scale = 0;
  if (u.empty()) {
    scale = 1024;
  } else if (u == "b" || u == "byte" || u == "bytes") {
    scale = 1;
  } else {
    const std::string_view rest = std::string_view(u).substr(1);
    uint64_t base = 0;
    if (rest.empty() || rest == "ib") {
      base = 1024;
    } else if (rest == "b") {
      base = 1000;
    }
    const std::string_view prefixes = "kmgtpe";
    const size_t power = prefixes.find(u.front());
    if (base != 0 && power != std::string_view::npos) {
      scale = 1;
      for (size_t i = 0; i <= power; ++i) scale *= base;
    }
  }
  if (scale == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown unit \"", absl::string_view(unit.data(), unit.size()),
                     "\" (use b, KB, KiB, MB, MiB, GB, GiB, TB, TiB, PB, PiB, EB or EiB)"));
  }
  if (value > std::numeric_limits<uint64_t>::max() / scale) {
    return absl::InvalidArgumentError("memory size overflows 64 bits");
  }
  return value * scale;
}

std::string_view LifecycleActionName(LifecycleAction action) {
  switch (action) {
    case LifecycleAction::kRestart:
      return "restart";
    case LifecycleAction::kPreserve:
      return "preserve";
    default:
      return "destroy";
  }
}

std::string_view CharBackendName(CharBackend backend) {
  switch (backend) {
    case CharBackend::kPty:
      return "pty";
    case CharBackend::kFile:
      return "file";
    case CharBackend::kUnix:
      return "unix";
    case CharBackend::kStdio:
      return "stdio";
  }
  return "unknown";
}

absl::StatusOr<DomainConfig> ParseDomainXml(std::string_view xml, bool validate_with_libvirt) {
  absl::StatusOr<DomainConfig> config = Parse(xml, validate_with_libvirt, "");
  if (!config.ok()) return OneLineStatus(config.status());
  return config;
}

absl::StatusOr<DomainConfig> ParseDomainXmlFromFile(const std::string& path,
                                                    bool validate_with_libvirt) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularFile(path, O_RDONLY, "domain XML"));
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoStatus(absl::StrCat("reading domain XML ", path));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxDomainXmlBytes) {
      return absl::InvalidArgumentError(absl::StrCat("domain XML ", path, ": larger than 16 MiB"));
    }
  }
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  const std::string base_dir = error ? std::string() : absolute.parent_path().string();
  absl::StatusOr<DomainConfig> config = Parse(text, validate_with_libvirt, base_dir);
  if (!config.ok()) return OneLineStatus(config.status());
  return config;
}

}  // namespace rehome
