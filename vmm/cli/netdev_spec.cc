// vmm/cli/netdev_spec.cc: ParseNetdevSpec.
#include "vmm/cli/netdev_spec.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rehome {

absl::StatusOr<NetdevSpec> ParseNetdevSpec(std::string_view std_text) {
  const absl::string_view text(std_text.data(), std_text.size());
  auto error = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--netdev ", text, ": ", why, " (want tap,ifname=NAME[,mac=MAC])"));
  };
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.empty() || parts[0] != "tap") {
    return error(absl::StrCat("backend '", parts.empty() ? "" : parts[0],
                              "' is not supported (rehome supports tap)"));
  }
  NetdevSpec spec;
  bool have_ifname = false, have_mac = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const size_t eq = parts[i].find('=');
    if (eq == absl::string_view::npos) {
      return error(absl::StrCat("'", parts[i], "' is not key=value"));
    }
    const absl::string_view key = parts[i].substr(0, eq);
    const absl::string_view value = parts[i].substr(eq + 1);
    if (key == "ifname") {
      if (have_ifname) return error("ifname given twice");
      if (value.empty()) return error("empty ifname");
      spec.ifname = std::string(value);
      have_ifname = true;
    } else if (key == "mac") {
      if (have_mac) return error("mac given twice");
      absl::StatusOr<virtio::MacAddress> mac =
          virtio::ParseMac(std::string_view(value.data(), value.size()));
      if (!mac.ok()) return error(mac.status().message());
      spec.mac = *mac;
      have_mac = true;
    } else {
      return error(absl::StrCat("unknown key '", key, "'"));
    }
  }
  if (!have_ifname) return error("ifname is required");
  return spec;
}

}  // namespace rehome
