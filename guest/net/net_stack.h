// guest/net/net_stack.h: a minimal IPv4 host stack for the test guest, over the polled
// virtio-net driver: it answers ARP requests for its address and ICMP echo requests (ping), and
// serves UDP request/response protocols through UdpServe: each datagram to the served port is
// handed to a handler whose reply (if any) goes back to the sender's address, port and MAC.
// Replies are addressed from the request itself (no ARP cache, no routing); IPv4 fragments,
// IP options, bad checksums and frames for other addresses are dropped and counted. Everything
// is polled; the serving loop spins while traffic flows and yields the vCPU after 100 ms of
// silence: until the device's interrupt when the caller routed it here (Init's `wake_on_irq`;
// the loop acknowledges the line before it sleeps, and the timer tick still ends each halt),
// else until the next timer tick. Not thread-safe: one vCPU.
#ifndef REHOME_GUEST_NET_NET_STACK_H_
#define REHOME_GUEST_NET_NET_STACK_H_

#include <stdint.h>

#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_net.h"

namespace rehome::guest {

// One UDP datagram received on the served port.
struct UdpRequest {
  uint32_t src_ip;    // host byte order
  uint16_t src_port;  // host byte order
  const uint8_t* data;
  uint32_t len;
};

// Maximum UDP payload in one (unfragmented, option-less) frame: 1500 - 20 - 8.
inline constexpr uint32_t kUdpMaxPayload = 1472;

// Writes the reply to `req` into `reply` (at most `max` bytes) and returns its length; 0 sends
// nothing. Returns kUdpStop to end UdpServe without replying, or a length | kUdpStopAfterReply to
// send that reply and then end UdpServe.
inline constexpr uint32_t kUdpStop = 0xffffffffu;
inline constexpr uint32_t kUdpStopAfterReply = 0x80000000u;
using UdpHandler = uint32_t (*)(void* ctx, const UdpRequest& req, uint8_t* reply, uint32_t max);

struct NetStats {
  uint64_t frames = 0;     // received
  uint64_t arp = 0;        // ARP requests answered
  uint64_t icmp = 0;       // echo requests answered
  uint64_t udp = 0;        // datagrams to the served port handed to the handler
  uint64_t replies = 0;    // UDP replies sent
  uint64_t dropped = 0;    // malformed, fragmented, checksum errors
  uint64_t ignored = 0;    // well formed but not for us (other address, protocol or port)
  uint64_t irq_wakes = 0;  // idle halts the device's interrupt ended (not the timer tick)
};

class NetStack final {
 public:
  NetStack() = default;
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;

  // `ip` in host byte order (10.0.2.15 = 0x0a00020f). `wake_on_irq`: the device's interrupt is
  // routed to this vCPU's VEC_DEVICE (user/ioapic.h), so an idle loop can sleep until it comes.
  void Init(VirtioNet* nic, uint32_t ip, bool wake_on_irq = false);
  bool wakes_on_irq() const { return wake_on_irq_; }
  uint32_t ip() const { return ip_; }
  const NetStats& stats() const { return stats_; }

  // Serves UDP `port` until `handler` has been called `max_requests` times (0 = forever) or
  // returns kUdpStop, answering ARP and ping meanwhile. False (reason in `err`) when a frame
  // cannot be sent.
  bool UdpServe(uint16_t port, UdpHandler handler, void* ctx, uint64_t max_requests,
                LineWriter* err);

 private:
  enum class Verdict { kNone, kUdp, kStop, kError };
  // Handles one received frame; kUdp when it was a datagram for the handler.
  Verdict Handle(const uint8_t* frame, uint32_t len, LineWriter* err);
  bool HandleArp(const uint8_t* frame, uint32_t len, LineWriter* err);
  Verdict HandleIp(const uint8_t* frame, uint32_t len, LineWriter* err);
  // Sends an IPv4 packet whose payload (`payload_len` bytes) is already in tx_ + 34, addressed
  // back to the sender of `request` (an Ethernet + IPv4 frame).
  bool ReplyIp(const uint8_t* request, uint8_t protocol, uint32_t payload_len, LineWriter* err);

  VirtioNet* nic_ = nullptr;
  uint32_t ip_ = 0;
  bool wake_on_irq_ = false;
  uint16_t port_ = 0;
  UdpHandler handler_ = nullptr;
  void* ctx_ = nullptr;
  uint16_t ip_id_ = 0;
  NetStats stats_;
  uint8_t tx_[kNetFrameMax] = {};  // zero-initialised: the guest runs no constructors
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_NET_NET_STACK_H_
