// vmm/virtio/net_device.cc: virtio-net receive/transmit over a NetBackend and its state record.
#include "vmm/virtio/net_device.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome::virtio {
namespace {

constexpr uint8_t kStateVersion = 1;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<MacAddress> ParseMac(std::string_view text) {
  MacAddress mac{};
  bool ok = text.size() == 17;
  for (size_t i = 0; ok && i < 6; ++i) {
    const int hi = HexDigit(text[3 * i]);
    const int lo = HexDigit(text[3 * i + 1]);
    ok = hi >= 0 && lo >= 0 && (i == 5 || text[3 * i + 2] == ':');
    mac[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad MAC address '", std::string(text),
                     "' (want six hexadecimal octets such as 52:54:00:12:34:56)"));
  }
  if ((mac[0] & 1) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MAC address '", std::string(text), "' is a multicast address (bit 0 of the first octet)"));
  }
  return mac;
}

std::string FormatMac(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                         mac[5]);
}

NetDevice::NetDevice(MacAddress mac, std::shared_ptr<NetBackend> backend)
    : mac_(mac), backend_(std::move(backend)), frame_(kFrameMax) {}

void NetDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  // mac[6] at offset 0; status and the rest are not offered and read as zero.
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    data[i] = at < mac_.size() ? mac_[at] : 0;
  }
}

absl::StatusOr<bool> NetDevice::ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) {
  if (q == kReceiveQueue) return Receive(vq, mem);
  if (q == kTransmitQueue) return Transmit(vq, mem);
  return absl::InvalidArgumentError(absl::StrCat("virtio-net: no queue ", q));
}

absl::StatusOr<bool> NetDevice::Receive(Virtqueue& vq, const GuestMemoryView& mem) {
  bool added = false;
  for (;;) {
    const uint64_t pos = rx_frames_.load(std::memory_order_relaxed);
    // The frame first: a buffer is taken from the guest only for a frame that is there.
    const std::optional<size_t> len = backend_->ReadRx(pos, frame_);
    if (!len.has_value()) {
      // No frame waits: the driver need not notify the buffers it re-posts; the host's next
      // frame processes this queue, which then sees them.
      RETURN_IF_ERROR(vq.SetNotifications(mem, false));
      break;
    }
    if (*len == 0) {  // unusable: skipped, counted, never delivered
      rx_skipped_.fetch_add(1, std::memory_order_relaxed);
      rx_frames_.store(pos + 1, std::memory_order_relaxed);
      backend_->RxDone(pos + 1);
      continue;
    }
    ASSIGN_OR_RETURN(std::optional<Virtqueue::Chain> chain, vq.Pop(mem));
    if (!chain) {
      // A frame waits and no buffer is posted: ask for a notification, then look once more (the
      // driver may have posted one meanwhile without notifying).
      RETURN_IF_ERROR(vq.SetNotifications(mem, true));
      ASSIGN_OR_RETURN(chain, vq.Pop(mem));
      if (!chain) break;  // the frame waits for the guest's next buffer, which it notifies
    }
    if (chain->readable_len != 0) {
      return absl::InvalidArgumentError(absl::StrCat("virtio-net receive buffer (head ",
                                                     chain->head, ") has ", chain->readable_len,
                                                     " device-readable bytes"));
    }
    if (chain->writable_len < kHeaderBytes + *len) {
      return absl::InvalidArgumentError(absl::StrCat(
          "virtio-net receive buffer (head ", chain->head, ") of ", chain->writable_len,
          " bytes cannot hold a ", *len, "-byte frame and the ", kHeaderBytes,
          "-byte header (post buffers of at least ", kHeaderBytes + kFrameMax, " bytes)"));
    }
    uint8_t header[kHeaderBytes] = {};
    header[10] = 1;  // num_buffers (le16) = 1
    RETURN_IF_ERROR(CopyToChain(mem, *chain, 0, header));
    RETURN_IF_ERROR(
        CopyToChain(mem, *chain, kHeaderBytes, std::span<const uint8_t>(frame_.data(), *len)));
    RETURN_IF_ERROR(vq.PushUsed(mem, chain->head, static_cast<uint32_t>(kHeaderBytes + *len)));
    rx_frames_.store(pos + 1, std::memory_order_relaxed);
    rx_bytes_.fetch_add(*len, std::memory_order_relaxed);
    backend_->RxDone(pos + 1);
    added = true;
  }
  return added;
}

absl::StatusOr<bool> NetDevice::Transmit(Virtqueue& vq, const GuestMemoryView& mem) {
  bool added = false;
  for (;;) {
    const uint64_t pos = tx_frames_.load(std::memory_order_relaxed);
    // Room first: a chain is taken from the guest only when its frame can be handed on. The
    // backend calls for processing again once it made room.
    if (!backend_->TxRoom(pos)) break;
    ASSIGN_OR_RETURN(std::optional<Virtqueue::Chain> chain, vq.Pop(mem));
    if (!chain) break;
    if (chain->writable_len != 0) {
      return absl::InvalidArgumentError(absl::StrCat("virtio-net transmit buffer (head ",
                                                     chain->head, ") has ", chain->writable_len,
                                                     " device-writable bytes"));
    }
    if (chain->readable_len < kHeaderBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "virtio-net transmit buffer (head ", chain->head, ") of ", chain->readable_len,
          " bytes is shorter than the ", kHeaderBytes, "-byte header"));
    }
    const uint32_t len = chain->readable_len - kHeaderBytes;
    if (len > kFrameMax) {
      return absl::InvalidArgumentError(absl::StrCat("virtio-net transmit buffer (head ",
                                                     chain->head, ") holds a ", len,
                                                     "-byte frame (at most ", kFrameMax, ")"));
    }
    if (len < kEthernetHeader) {
      tx_dropped_.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Copied first: the guest may change its buffer meanwhile.
      const std::span<uint8_t> frame(frame_.data(), len);
      RETURN_IF_ERROR(CopyFromChain(mem, *chain, kHeaderBytes, frame));
      backend_->WriteTx(pos, frame);
      tx_frames_.store(pos + 1, std::memory_order_relaxed);
      tx_bytes_.fetch_add(len, std::memory_order_relaxed);
    }
    RETURN_IF_ERROR(vq.PushUsed(mem, chain->head, 0));
    added = true;
  }
  return added;
}

NetDevice::State NetDevice::state() const {
  State s;
  s.mac = mac_;
  s.rx_frames = rx_frames_.load(std::memory_order_relaxed);
  s.tx_frames = tx_frames_.load(std::memory_order_relaxed);
  s.rx_bytes = rx_bytes_.load(std::memory_order_relaxed);
  s.tx_bytes = tx_bytes_.load(std::memory_order_relaxed);
  s.rx_skipped = rx_skipped_.load(std::memory_order_relaxed);
  s.tx_dropped = tx_dropped_.load(std::memory_order_relaxed);
  return s;
}

std::vector<uint8_t> NetDevice::SaveState() const { return EncodeState(state()); }

absl::Status NetDevice::RestoreState(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(State s, DecodeState(bytes));
  if (s.mac != mac_) {
    return absl::InvalidArgumentError("virtio-net state: taken with another MAC address");
  }
  rx_frames_.store(s.rx_frames, std::memory_order_relaxed);
  tx_frames_.store(s.tx_frames, std::memory_order_relaxed);
  rx_bytes_.store(s.rx_bytes, std::memory_order_relaxed);
  tx_bytes_.store(s.tx_bytes, std::memory_order_relaxed);
  rx_skipped_.store(s.rx_skipped, std::memory_order_relaxed);
  tx_dropped_.store(s.tx_dropped, std::memory_order_relaxed);
  return absl::OkStatus();
}

std::vector<uint8_t> NetDevice::EncodeState(const State& state) {
  StateWriter w(kStateVersion);
  w.Bytes(std::string_view(reinterpret_cast<const char*>(state.mac.data()), state.mac.size()));
  w.U64(state.rx_frames);
  w.U64(state.tx_frames);
  w.U64(state.rx_bytes);
  w.U64(state.tx_bytes);
  w.U64(state.rx_skipped);
  w.U64(state.tx_dropped);
  return w.Finish();
}

absl::StatusOr<NetDevice::State> NetDevice::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "virtio-net");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  const std::string mac = r.Bytes(6);
  if (mac.size() == 6) {
    std::memcpy(s.mac.data(), mac.data(), 6);
  } else {
    r.Fail("the MAC address is not 6 bytes");
  }
  s.rx_frames = r.U64();
  s.tx_frames = r.U64();
  s.rx_bytes = r.U64();
  s.tx_bytes = r.U64();
  s.rx_skipped = r.U64();
  s.tx_dropped = r.U64();
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome::virtio
