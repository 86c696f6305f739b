// guest/net/net_stack.cc: ARP, IPv4, ICMP echo and UDP for the test guest (see net_stack.h).
// All multi-byte header fields are big-endian (network order). CPL3.
#include "guest/net/net_stack.h"

#include "guest/user/syscall.h"

namespace rehome::guest {
namespace {

constexpr uint32_t kEthHeader = 14;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint32_t kArpBytes = 28;
constexpr uint32_t kIpHeader = 20;  // replies carry no options
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
constexpr uint32_t kUdpHeader = 8;
constexpr uint64_t kTxTimeoutTicks = 10 * 250;  // 10 s
constexpr uint64_t kIdleTicks = 25;             // 100 ms without a frame: stop spinning
constexpr uint32_t kIdleCheckSpins = 1u << 16;  // polls between two looks at the clock

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void Copy(uint8_t* dst, const uint8_t* src, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) dst[i] = src[i];
}

// The Internet checksum's running sum (RFC 1071) over `n` bytes, added to `sum`.
uint32_t SumBytes(const uint8_t* p, uint32_t n, uint32_t sum) {
  for (; n > 1; p += 2, n -= 2) sum += Get16(p);
  if (n == 1) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
uint32_t PseudoHeaderSum(uint32_t src, uint32_t dst, uint8_t protocol, uint32_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + protocol + len;
}

}  // namespace

void NetStack::Init(VirtioNet* nic, uint32_t ip, bool wake_on_irq) {
  nic_ = nic;
  ip_ = ip;
  wake_on_irq_ = wake_on_irq;
  stats_ = NetStats{};
}

bool NetStack::UdpServe(uint16_t port, UdpHandler handler, void* ctx, uint64_t max_requests,
                        LineWriter* err) {
  port_ = port;
  handler_ = handler;
  ctx_ = ctx;
  uint64_t served = 0;
  uint64_t last_frame = SysGetTicks();
  bool seen = false;    // a frame since the clock was last read
  bool ack_due = true;  // the device's line may be up: acknowledge before sleeping on it
  for (uint32_t spins = 0;;) {
    uint32_t len = 0;
    const uint8_t* frame = nic_->Receive(&len);
    if (frame == nullptr) {
      if (++spins < kIdleCheckSpins) continue;
      spins = 0;
      const uint64_t now = SysGetTicks();
      if (seen) last_frame = now;
      seen = false;
      if (now - last_frame <= kIdleTicks) continue;
      // Quiet: sleep until the next interrupt. With the device's interrupt routed here, first
      // drop its line (a frame that lands after the acknowledgement raises it again: an edge,
      // which ends the halt or makes the yield return at once), then look at the ring again.
      if (wake_on_irq_ && ack_due) {
        nic_->AckUsedBufferInterrupt();
        ack_due = false;
        spins = kIdleCheckSpins - 1;  // one more look at the ring, then the clock, then sleep
        continue;
      }
      const uint64_t woke = SysYield();
      if (woke == kYieldDeviceWoke) ++stats_.irq_wakes;
      if (woke != kYieldOther) ack_due = true;
      continue;
    }
    seen = true;
    ack_due = true;
    ++stats_.frames;
    const Verdict v = Handle(frame, len, err);
    nic_->Release();
    if (v == Verdict::kError) return false;
    if (v == Verdict::kStop) break;
    if (v == Verdict::kUdp && max_requests != 0 && ++served >= max_requests) break;
  }
  return nic_->Flush(kTxTimeoutTicks, err);  // the last replies leave before the caller exits
}

NetStack::Verdict NetStack::Handle(const uint8_t* frame, uint32_t len, LineWriter* err) {
  if (len < kEthHeader) {
    ++stats_.dropped;
    return Verdict::kNone;
  }
  const uint16_t type = Get16(frame + 12);
  if (type == kEtherArp) return HandleArp(frame, len, err) ? Verdict::kNone : Verdict::kError;
  if (type == kEtherIpv4) return HandleIp(frame, len, err);
  ++stats_.ignored;  // IPv6 (router solicitations, ...), VLANs, ...
  return Verdict::kNone;
}

bool NetStack::HandleArp(const uint8_t* frame, uint32_t len, LineWriter* err) {
  const uint8_t* a = frame + kEthHeader;
  if (len < kEthHeader + kArpBytes || Get16(a) != 1 || Get16(a + 2) != kEtherIpv4 || a[4] != 6 ||
      a[5] != 4) {
    ++stats_.dropped;
    return true;
  }
  if (Get16(a + 6) != 1 || Get32(a + 24) != ip_) {  // not a request for our address
    ++stats_.ignored;
    return true;
  }
  ++stats_.arp;
  uint8_t* r = tx_ + kEthHeader;
  Copy(tx_, a + 8, 6);  // to the requester
  Copy(tx_ + 6, nic_->mac(), 6);
  Put16(tx_ + 12, kEtherArp);
  Put16(r, 1);
  Put16(r + 2, kEtherIpv4);
  r[4] = 6;
  r[5] = 4;
  Put16(r + 6, 2);  // reply
  Copy(r + 8, nic_->mac(), 6);
  Put32(r + 14, ip_);
  Copy(r + 18, a + 8, 10);  // target: the requester's MAC and IP
  return nic_->Send(tx_, kEthHeader + kArpBytes, kTxTimeoutTicks, err);
}

NetStack::Verdict NetStack::HandleIp(const uint8_t* frame, uint32_t len, LineWriter* err) {
  const uint8_t* ip = frame + kEthHeader;
  const uint32_t avail = len - kEthHeader;
  if (avail < kIpHeader || (ip[0] >> 4) != 4) {
    ++stats_.dropped;
    return Verdict::kNone;
  }
  const uint32_t ihl = (ip[0] & 0xfu) * 4;
  const uint32_t total = Get16(ip + 2);
  if (ihl < kIpHeader || total < ihl || total > avail || Fold(SumBytes(ip, ihl, 0)) != 0 ||
      (Get16(ip + 6) & 0x3fff) != 0) {  // bad length or checksum, or a fragment (MF, offset)
    ++stats_.dropped;
    return Verdict::kNone;
  }
  if (Get32(ip + 16) != ip_) {
    ++stats_.ignored;
    return Verdict::kNone;
  }
  const uint8_t* l4 = ip + ihl;
  const uint32_t l4_len = total - ihl;
  uint8_t* out = tx_ + kEthHeader + kIpHeader;
  if (ip[9] == kProtoIcmp) {
    if (l4_len < 8 || Fold(SumBytes(l4, l4_len, 0)) != 0 ||
        l4_len > kNetFrameMax - kEthHeader - kIpHeader) {
      ++stats_.dropped;
      return Verdict::kNone;
    }
    if (l4[0] != 8) {  // only echo requests are answered
      ++stats_.ignored;
      return Verdict::kNone;
    }
    ++stats_.icmp;
    Copy(out, l4, l4_len);
    out[0] = 0;  // echo reply, same code, identifier, sequence and data
    Put16(out + 2, 0);
    Put16(out + 2, Fold(SumBytes(out, l4_len, 0)));
    return ReplyIp(frame, kProtoIcmp, l4_len, err) ? Verdict::kNone : Verdict::kError;
  }
  if (ip[9] != kProtoUdp) {
    ++stats_.ignored;
    return Verdict::kNone;
  }
  const uint32_t udp_len = l4_len >= kUdpHeader ? Get16(l4 + 4) : 0;
  const uint32_t src = Get32(ip + 12);
  if (udp_len < kUdpHeader || udp_len > l4_len ||
      (Get16(l4 + 6) != 0 &&
       Fold(SumBytes(l4, udp_len, PseudoHeaderSum(src, ip_, kProtoUdp, udp_len))) != 0)) {
    ++stats_.dropped;
    return Verdict::kNone;
  }
  if (Get16(l4 + 2) != port_) {
    ++stats_.ignored;
    return Verdict::kNone;
  }
  ++stats_.udp;
  const UdpRequest req{src, Get16(l4), l4 + kUdpHeader, udp_len - kUdpHeader};
  uint32_t n = handler_(ctx_, req, out + kUdpHeader, kUdpMaxPayload);
  if (n == kUdpStop) return Verdict::kStop;
  const bool stop_after = (n & kUdpStopAfterReply) != 0;
  n &= ~kUdpStopAfterReply;
  if (n == 0) return stop_after ? Verdict::kStop : Verdict::kUdp;
  const uint32_t reply_len = kUdpHeader + (n < kUdpMaxPayload ? n : kUdpMaxPayload);
  Put16(out, port_);
  Put16(out + 2, req.src_port);
  Put16(out + 4, static_cast<uint16_t>(reply_len));
  Put16(out + 6, 0);
  uint16_t sum = Fold(SumBytes(out, reply_len, PseudoHeaderSum(ip_, src, kProtoUdp, reply_len)));
  Put16(out + 6, sum == 0 ? 0xffff : sum);
  ++stats_.replies;
  if (!ReplyIp(frame, kProtoUdp, reply_len, err)) return Verdict::kError;
  return stop_after ? Verdict::kStop : Verdict::kUdp;
}

bool NetStack::ReplyIp(const uint8_t* request, uint8_t protocol, uint32_t payload_len,
                       LineWriter* err) {
  Copy(tx_, request + 6, 6);  // back to the sender's MAC
  Copy(tx_ + 6, nic_->mac(), 6);
  Put16(tx_ + 12, kEtherIpv4);
  uint8_t* ip = tx_ + kEthHeader;
  ip[0] = 0x45;
  ip[1] = 0;
  Put16(ip + 2, static_cast<uint16_t>(kIpHeader + payload_len));
  Put16(ip + 4, ++ip_id_);
  Put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;
  ip[9] = protocol;
  Put16(ip + 10, 0);
  Put32(ip + 12, ip_);
  Copy(ip + 16, request + kEthHeader + 12, 4);  // to the sender's address
  Put16(ip + 10, Fold(SumBytes(ip, kIpHeader, 0)));
  return nic_->Send(tx_, kEthHeader + kIpHeader + payload_len, kTxTimeoutTicks, err);
}

}  // namespace rehome::guest
