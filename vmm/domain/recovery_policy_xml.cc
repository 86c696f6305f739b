// vmm/domain/recovery_policy_xml.cc: <rehome:recovery> reader (see header and
// docs/domain-xml.md).
#include "vmm/domain/recovery_policy_xml.h"

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/domain/domain_xml.h"
#include "vmm/domain/xml_util.h"

namespace rehome {
namespace {

using Attributes = std::map<std::string, std::string>;

// "recovery policy: <prefix:element name="value">: problem".
absl::Status AttrError(const xmlNode* node, const std::string& name, const std::string& value,
                       const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("recovery policy: <", xml::QualifiedName(node),
                                                 " ", name, "=\"", xml::OneLine(value, 80),
                                                 "\">: ", problem));
}

absl::Status ElementError(const xmlNode* node, const std::string& problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("recovery policy: <", xml::QualifiedName(node), ">: ", problem));
}

// Attributes of `node` in no namespace or in ours (other namespaces are ignored); any name
// outside `allowed` is an error.
absl::StatusOr<Attributes> ReadAttributes(const xmlNode* node,
                                          const std::set<std::string>& allowed) {
  Attributes result;
  for (const xmlAttr* attr = node->properties; attr != nullptr; attr = attr->next) {
    const bool ours =
        attr->ns == nullptr ||
        (attr->ns->href != nullptr &&
         std::string_view(reinterpret_cast<const char*>(attr->ns->href)) == kRehomeDomainNamespace);
    if (!ours) continue;
    const std::string name = reinterpret_cast<const char*>(attr->name);
    xmlChar* raw = xmlNodeListGetString(node->doc, attr->children, 1);
    const std::string value = raw != nullptr ? reinterpret_cast<const char*>(raw) : "";
    xmlFree(raw);
    if (allowed.count(name) == 0) return AttrError(node, name, value, "unknown attribute");
    if (!result.emplace(name, value).second) {
      return AttrError(node, name, value, "attribute given twice");
    }
  }
  return result;
}

// Reads the decimal integer attribute `name` into `out` if present (leaves `out` otherwise).
absl::Status ReadInt(const xmlNode* node, const Attributes& attrs, const std::string& name,
                     int* out) {
  auto it = attrs.find(name);
  if (it == attrs.end()) return absl::OkStatus();
  const std::string& text = it->second;
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return AttrError(node, name, text, "not an integer");
  }
  int64_t value = 0;
  if (digits.size() > 18 || !absl::SimpleAtoi(absl::string_view(text), &value) ||
      value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
    return AttrError(node, name, text, "out of range");
  }
  *out = static_cast<int>(value);
  return absl::OkStatus();
}

absl::Status ReadRecoveryElement(const xmlNode* recovery, RecoveryPolicy* policy) {
  ASSIGN_OR_RETURN(Attributes attrs, ReadAttributes(recovery, {"version", "mode", "standbys"}));
  auto version = attrs.find("version");
  if (version == attrs.end()) return ElementError(recovery, "missing attribute version");
  if (version->second != std::to_string(kRecoveryPolicyVersion)) {
    return AttrError(recovery, "version", version->second,
                     absl::StrCat("unsupported version (this build reads version ",
                                  kRecoveryPolicyVersion, ")"));
  }
  if (auto mode = attrs.find("mode"); mode != attrs.end()) {
    auto parsed = ParseRecoveryMode(mode->second);
    if (!parsed.ok()) {
      return AttrError(recovery, "mode", mode->second, "must be failover, restart or none");
    }
    policy->mode = *parsed;
  }
  RETURN_IF_ERROR(ReadInt(recovery, attrs, "standbys", &policy->standbys));

  std::set<std::string> seen;
  for (const xmlNode* child = recovery->children; child != nullptr; child = child->next) {
    if (child->type != XML_ELEMENT_NODE) continue;
    if (!xml::InNamespace(child, kRehomeDomainNamespace)) continue;  // someone else's
    const std::string name = reinterpret_cast<const char*>(child->name);
    if (name != "heartbeat" && name != "hang" && name != "limit" && name != "l1" &&
        name != "l1-sandbox" && name != "verify" && name != "nested") {
      return ElementError(child, "unknown element");
    }
    if (!seen.insert(name).second) return ElementError(child, "appears more than once");
    if (name == "heartbeat") {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"period-ms"}));
      RETURN_IF_ERROR(ReadInt(child, a, "period-ms", &policy->heartbeat_period_ms));
    } else if (name == "verify") {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"mode"}));
      if (auto it = a.find("mode"); it != a.end()) {
        absl::StatusOr<VerifyMode> mode = ParseVerifyMode(it->second);
        if (!mode.ok()) return AttrError(child, "mode", it->second, "must be none, dual or triple");
        policy->verify = *mode;
      }
    } else if (name == "l1") {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"binary", "standby-binary"}));
      for (const auto& [attr, value] : a) {
        if (value.empty()) return AttrError(child, attr, value, "must name a file");
      }
      if (auto it = a.find("binary"); it != a.end()) policy->l1_binary = it->second;
      if (auto it = a.find("standby-binary"); it != a.end()) {
        policy->standby_l1_binary = it->second;
      }
    } else if (name == "nested") {
      ASSIGN_OR_RETURN(Attributes a,
                       ReadAttributes(child, {"l1-kernel", "l1-initrd", "l1-memory-mib"}));
      for (const char* attr : {"l1-kernel", "l1-initrd"}) {
        auto it = a.find(attr);
        if (it == a.end()) return ElementError(child, absl::StrCat("missing attribute ", attr));
        if (it->second.empty()) return AttrError(child, attr, it->second, "must name a file");
      }
      policy->nested_l1_kernel = a["l1-kernel"];
      policy->nested_l1_initrd = a["l1-initrd"];
      RETURN_IF_ERROR(ReadInt(child, a, "l1-memory-mib", &policy->nested_l1_memory_mib));
    } else if (name == "hang") {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"timeout-ms"}));
      RETURN_IF_ERROR(ReadInt(child, a, "timeout-ms", &policy->hang_timeout_ms));
    } else if (name == "l1-sandbox") {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"level"}));
      auto level = a.find("level");
      if (level == a.end()) return ElementError(child, "missing attribute level");
      absl::StatusOr<L1SandboxLevel> parsed = ParseL1SandboxLevel(level->second);
      if (!parsed.ok()) {
        return AttrError(child, "level", level->second, "must be strict, best-effort or off");
      }
      policy->l1_sandbox = *parsed;
    } else {
      ASSIGN_OR_RETURN(Attributes a, ReadAttributes(child, {"failovers", "window-s"}));
      RETURN_IF_ERROR(ReadInt(child, a, "failovers", &policy->max_failovers));
      RETURN_IF_ERROR(ReadInt(child, a, "window-s", &policy->failover_window_s));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RecoveryPolicy> ReadRecoveryPolicy(const xmlNode* metadata) {
  RecoveryPolicy policy;
  if (metadata == nullptr) return policy;
  const xmlNode* found = nullptr;
  for (const xmlNode* child = metadata->children; child != nullptr; child = child->next) {
    if (!xml::InNamespace(child, kRehomeDomainNamespace)) continue;
    if (!xmlStrEqual(child->name, reinterpret_cast<const xmlChar*>("recovery"))) {
      return ElementError(child, "unknown element (expected recovery)");
    }
    if (found != nullptr) return ElementError(child, "appears more than once");
    found = child;
  }
  if (found == nullptr) return policy;
  RETURN_IF_ERROR(ReadRecoveryElement(found, &policy));
  RETURN_IF_ERROR(policy.Validate());
  return policy;
}

}  // namespace rehome
