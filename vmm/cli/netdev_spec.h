// vmm/cli/netdev_spec.h: the `--netdev tap,ifname=NAME[,mac=MAC]` option of `rehome run` (and the
// same settings from a domain XML <interface type='ethernet'>): which existing tap backs the
// guest's virtio-net device and its MAC address. Pure functions; thread-safe.
#ifndef REHOME_VMM_CLI_NETDEV_SPEC_H_
#define REHOME_VMM_CLI_NETDEV_SPEC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vmm/virtio/net_device.h"

namespace rehome {

// QEMU's default MAC for a guest NIC (the locally administered 52:54:00 prefix).
inline constexpr virtio::MacAddress kDefaultGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

struct NetdevSpec {
  std::string ifname;                         // the tap (it must exist)
  virtio::MacAddress mac = kDefaultGuestMac;  // the guest's address (config space)
  friend bool operator==(const NetdevSpec&, const NetdevSpec&) = default;
};

// Parses the value of --netdev. InvalidArgument with a one-line message naming the problem
// (another backend, an unknown or repeated key, no ifname, a bad or multicast MAC).
absl::StatusOr<NetdevSpec> ParseNetdevSpec(std::string_view text);

}  // namespace rehome

#endif  // REHOME_VMM_CLI_NETDEV_SPEC_H_
