// guest/workloads/netecho_workload.cc: the `netecho` workload (see io_workloads.h and
// docs/guest-abi.md): vCPU 0 brings up the first virtio-net device and echoes every UDP datagram
// sent to its port back to the sender, `steps` times (0 = forever), answering ARP and ping
// meanwhile. The echo is a UdpServe handler: the request/response services build on the same
// call. CPL3.
#include "guest/kernel/serial.h"
#include "guest/net/net_stack.h"
#include "guest/user/ioapic.h"
#include "guest/virtio/virtio_net.h"
#include "guest/workloads/io_workloads.h"

namespace rehome::guest {
namespace {

VirtioNet nic;
NetStack stack;

uint32_t Echo(void*, const UdpRequest& req, uint8_t* reply, uint32_t max) {
  const uint32_t n = req.len < max ? req.len : max;
  for (uint32_t i = 0; i < n; ++i) reply[i] = req.data[i];
  return n;  // an empty datagram gets no reply
}

void PutIp(LineWriter* w, uint32_t ip) {
  for (int i = 3; i >= 0; --i) {
    w->Dec((ip >> (8 * i)) & 0xff);
    if (i != 0) w->Str(".");
  }
}

}  // namespace

bool BringUpNet(const VirtioDevices& devices, uint32_t ip, NetStack** out, LineWriter* err) {
  VirtioMmio found;
  if (!FindVirtioDevice(devices.regions, devices.count, kVirtioIdNet, &found)) {
    err->Str("no virtio-net device (needs a virtio_mmio.device= entry)");
    return false;
  }
  if (!nic.Init(found.base(), err)) return false;
  // Idle, the serving loop sleeps until the device's interrupt (else until the next tick).
  const bool wake_on_irq = RouteDeviceIrqHere(devices.rsdp_paddr, found.irq());
  stack.Init(&nic, ip, wake_on_irq);
  *out = &stack;
  LineWriter w;
  w.Str("rehome-guest: net device base=").Hex(found.base()).Str(" mac=");
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    const char octet[4] = {kHex[nic.mac()[i] >> 4], kHex[nic.mac()[i] & 15], i == 5 ? '\0' : ':',
                           '\0'};
    w.Str(octet);
  }
  w.Str(" ip=");
  PutIp(&w, ip);
  w.Str(" irq=");
  if (wake_on_irq) {
    w.Dec(found.irq());
  } else {
    w.Str("polled");
  }
  w.Flush();
  return true;
}

bool RunNetEcho(const VirtioDevices& devices, uint32_t ip, uint16_t port, uint64_t steps) {
  LineWriter err;
  err.Str("rehome-guest: netecho: ");
  NetStack* net = nullptr;
  if (!BringUpNet(devices, ip, &net, &err)) {
    err.Flush();
    return false;
  }
  LineWriter().Str("rehome-guest: netecho serving udp port=").Dec(port).Flush();
  if (!net->UdpServe(port, Echo, nullptr, steps, &err)) {
    err.Flush();
    return false;
  }
  const NetStats& s = net->stats();
  LineWriter()
      .Str("rehome-guest: netecho done steps=")
      .Dec(s.udp)
      .Str(" frames=")
      .Dec(s.frames)
      .Str(" arp=")
      .Dec(s.arp)
      .Str(" icmp=")
      .Dec(s.icmp)
      .Str(" dropped=")
      .Dec(s.dropped)
      .Str(" ignored=")
      .Dec(s.ignored)
      .Str(" irq_wakes=")
      .Dec(s.irq_wakes)
      .Flush();
  return true;
}

}  // namespace rehome::guest
