// vmm/virtio/console_device.cc: virtio-console port 0 receive/transmit and its state record.
#include "vmm/virtio/console_device.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome::virtio {
namespace {

constexpr uint8_t kStateVersion = 1;

}  // namespace

ConsoleDevice::ConsoleDevice(OutputSink tx) : tx_(std::move(tx)) {}

size_t ConsoleDevice::QueueInput(std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  const size_t n = std::min(kMaxPendingInput - state_.pending_input.size(), bytes.size());
  state_.pending_input.append(bytes.substr(0, n));
  state_.dropped_input += bytes.size() - n;
  return n;
}

size_t ConsoleDevice::pending_input() const {
  absl::MutexLock lock(&mu_);
  return state_.pending_input.size();
}

uint64_t ConsoleDevice::dropped_input() const {
  absl::MutexLock lock(&mu_);
  return state_.dropped_input;
}

uint64_t ConsoleDevice::rx_bytes() const {
  absl::MutexLock lock(&mu_);
  return state_.rx_bytes;
}

uint64_t ConsoleDevice::tx_bytes() const {
  absl::MutexLock lock(&mu_);
  return state_.tx_bytes;
}

void ConsoleDevice::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  // cols, rows, max_nr_ports and emerg_wr: no size or multiport feature, so all read as zero.
  std::fill(data.begin(), data.end(), 0);
}

void ConsoleDevice::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != kEmergWriteOffset || data.empty()) return;
  const char c = static_cast<char>(data[0]);
  {
    absl::MutexLock lock(&mu_);
    ++state_.tx_bytes;
  }
  if (tx_) tx_(std::string_view(&c, 1));
}

absl::StatusOr<bool> ConsoleDevice::ProcessQueue(int q, Virtqueue& vq, const GuestMemoryView& mem) {
  if (q == kReceiveQueue) return Receive(vq, mem);
  if (q == kTransmitQueue) return Transmit(vq, mem);
  return absl::InvalidArgumentError(absl::StrCat("virtio-console: no queue ", q));
}

absl::StatusOr<bool> ConsoleDevice::Receive(Virtqueue& vq, const GuestMemoryView& mem) {
  absl::MutexLock lock(&mu_);
  bool added = false;
  while (mem.HasRoomForWork()) {
    if (state_.pending_input.empty()) {
      // No input waits: the driver need not notify the buffers it re-posts (each notification
      // is an exit, or an L1 wake-up); the next host input processes this queue, which then
      // sees them. As virtio-net's receive queue.
      RETURN_IF_ERROR(vq.SetNotifications(mem, false));
      break;
    }
    ASSIGN_OR_RETURN(std::optional<Virtqueue::Chain> chain, vq.Pop(mem));
    if (!chain) {
      // Input waits and no buffer is posted: ask for a notification, then look once more (the
      // driver may have posted one meanwhile without notifying).
      RETURN_IF_ERROR(vq.SetNotifications(mem, true));
      ASSIGN_OR_RETURN(chain, vq.Pop(mem));
      if (!chain) break;  // the input waits for the guest's next buffer, which it notifies
    }
    if (chain->readable_len != 0) {
      return absl::InvalidArgumentError(absl::StrCat("virtio-console receive buffer (head ",
                                                     chain->head, ") has ", chain->readable_len,
                                                     " device-readable bytes"));
    }
    const size_t n = std::min<size_t>(chain->writable_len, state_.pending_input.size());
    RETURN_IF_ERROR(
        CopyToChain(mem, *chain, 0,
                    std::span<const uint8_t>(
                        reinterpret_cast<const uint8_t*>(state_.pending_input.data()), n)));
    RETURN_IF_ERROR(vq.PushUsed(mem, chain->head, static_cast<uint32_t>(n)));
    state_.pending_input.erase(0, n);
    state_.rx_bytes += n;
    added = true;
  }
  return added;
}

absl::StatusOr<bool> ConsoleDevice::Transmit(Virtqueue& vq, const GuestMemoryView& mem) {
  bool added = false;
  std::string chunk;
  while (mem.HasRoomForWork()) {
    ASSIGN_OR_RETURN(std::optional<Virtqueue::Chain> chain, vq.Pop(mem));
    if (!chain) return added;
    if (chain->writable_len != 0) {
      return absl::InvalidArgumentError(absl::StrCat("virtio-console transmit buffer (head ",
                                                     chain->head, ") has ", chain->writable_len,
                                                     " device-writable bytes"));
    }
    RETURN_IF_ERROR(ForEachSegment(
        mem, *chain, /*writable=*/false, 0, chain->readable_len, [&](std::span<uint8_t> seg) {
          for (size_t off = 0; off < seg.size(); off += kMaxSinkChunk) {
            const size_t n = std::min(kMaxSinkChunk, seg.size() - off);
            // Copy first: the guest may change its buffer meanwhile.
            chunk.assign(reinterpret_cast<const char*>(seg.data() + off), n);
            if (tx_) tx_(chunk);
          }
          return absl::OkStatus();
        }));
    {
      absl::MutexLock lock(&mu_);
      state_.tx_bytes += chain->readable_len;
    }
    RETURN_IF_ERROR(vq.PushUsed(mem, chain->head, 0));
    added = true;
  }
  return added;
}

std::vector<uint8_t> ConsoleDevice::SaveState() const {
  absl::MutexLock lock(&mu_);
  return EncodeState(state_);
}

absl::Status ConsoleDevice::RestoreState(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(State s, DecodeState(bytes));
  absl::MutexLock lock(&mu_);
  state_ = std::move(s);
  return absl::OkStatus();
}

std::vector<uint8_t> ConsoleDevice::EncodeState(const State& state) {
  StateWriter w(kStateVersion);
  w.Bytes(state.pending_input);
  w.U64(state.rx_bytes);
  w.U64(state.tx_bytes);
  w.U64(state.dropped_input);
  return w.Finish();
}

absl::StatusOr<ConsoleDevice::State> ConsoleDevice::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "virtio-console");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  s.pending_input = r.Bytes(kMaxPendingInput);
  s.rx_bytes = r.U64();
  s.tx_bytes = r.U64();
  s.dropped_input = r.U64();
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome::virtio
