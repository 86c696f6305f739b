// recovery/effects_apply.cc: ApplyEffects.
#include "recovery/effects_apply.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace rehome {
namespace {

bool WriteFully(int fd, const uint8_t* p, size_t len, uint64_t offset) {
  while (len > 0) {
    const ssize_t n = pwrite(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

ApplyResult ApplyEffects(const Effects& effects, const VerifiedEffectsSink& sink,
                         uint64_t disk_bytes) {
  ApplyResult result;
  auto refuse = [&](const std::string& why) {
    if (result.refused++ == 0) result.first_refusal = why;
  };
  for (const Effect& e : effects.entries) {
    switch (e.type) {
      case EffectType::kRamWrite: {
        uint8_t* dst = sink.ram != nullptr ? sink.ram->HostAddress(e.addr, e.data.size()) : nullptr;
        if (dst == nullptr && !e.data.empty()) {
          refuse(absl::StrFormat("RAM write of %d bytes at 0x%x is outside guest RAM",
                                 e.data.size(), e.addr));
          continue;
        }
        if (!e.data.empty()) std::memcpy(dst, e.data.data(), e.data.size());
        break;
      }
      case EffectType::kDiskWrite:
        if (sink.disk_fd < 0 || e.addr > disk_bytes || e.data.size() > disk_bytes - e.addr) {
          refuse(absl::StrFormat("disk write of %d bytes at %d is outside the image", e.data.size(),
                                 e.addr));
          continue;
        }
        if (!WriteFully(sink.disk_fd, e.data.data(), e.data.size(), e.addr)) {
          result.disk_error = true;
        }
        break;
      case EffectType::kDiskFlush:
        if (sink.disk_fd < 0) {
          refuse("disk flush without a disk");
          continue;
        }
        if (fdatasync(sink.disk_fd) != 0) result.disk_error = true;
        break;
      case EffectType::kIrq:
        // The completions written above must be visible before the guest takes the interrupt.
        std::atomic_thread_fence(std::memory_order_release);
        if (!sink.raise_irq || e.addr > UINT32_MAX ||
            !sink.raise_irq(static_cast<uint32_t>(e.addr))) {
          refuse(absl::StrFormat("interrupt line %d has no irqfd", e.addr));
          continue;
        }
        break;
      case EffectType::kConsoleOut:
        if (sink.console_output) {
          sink.console_output(
              std::string_view(reinterpret_cast<const char*>(e.data.data()), e.data.size()));
        }
        break;
      case EffectType::kNetTx:
        // A frame after the completions above it (the guest reads them only after the irq).
        if (!sink.net_tx || !sink.net_tx(e.addr, e.data)) {
          refuse(absl::StrFormat("transmitted frame %d (%d bytes) is not the next one", e.addr,
                                 e.data.size()));
          continue;
        }
        break;
      case EffectType::kNetRxDone:
        if (!sink.net_rx_done || !sink.net_rx_done(e.addr)) {
          refuse(absl::StrFormat("receive position %d is impossible", e.addr));
          continue;
        }
        break;
      case EffectType::kAvailWatch:  // read by VerifiedSupervisor: nothing to do, counted applied
        break;
    }
    ++result.applied;
  }
  std::atomic_thread_fence(std::memory_order_release);
  return result;
}

}  // namespace rehome
