// vmm/devices/serial8250.cc: Serial8250 register model.
#include "vmm/devices/serial8250.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome {
namespace {

constexpr uint8_t kStateVersion = 1;

// Register offsets.
constexpr uint64_t kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;
constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThri = 0x02, kIirRdi = 0x04, kIirFifo = 0xc0;
constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02;
constexpr uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrDcd = 0x80;

}  // namespace

Serial8250::Serial8250(OutputSink sink, IrqHook irq)
    : sink_(std::move(sink)), irq_(std::move(irq)) {}

Serial8250::Serial8250(UniqueFd fd, IrqHook irq) : fd_(std::move(fd)), irq_(std::move(irq)) {}

void Serial8250::Read(uint64_t offset, std::span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < kPortCount ? ReadRegister(offset + i) : 0xff;
  }
  UpdateIrq();
}

void Serial8250::Write(uint64_t offset, std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset + i < kPortCount) WriteRegister(offset + i, data[i]);
  }
  UpdateIrq();
}

uint8_t Serial8250::ReadRegister(uint64_t offset) {
  State& s = state_;
  switch (offset) {
    case kRbrThr: {
      if (dlab()) return s.dll;
      if (s.input.empty()) return 0;
      const uint8_t byte = static_cast<uint8_t>(s.input.front());
      s.input.erase(0, 1);
      return byte;
    }
    case kIer:
      return dlab() ? s.dlm : s.ier;
    case kIirFcr: {
      uint8_t iir = kIirNone;
      if ((s.ier & kIerRdi) && !s.input.empty()) {
        iir = kIirRdi;
      } else if ((s.ier & kIerThri) && s.thre_pending) {
        iir = kIirThri;
        s.thre_pending = false;  // reading IIR acknowledges THR empty
      }
      return iir | ((s.fcr & kFcrEnable) ? kIirFifo : 0);
    }
    case kLcr:
      return s.lcr;
    case kMcr:
      return s.mcr;
    case kLsr:
      return kLsrThre | kLsrTemt | (s.input.empty() ? 0 : kLsrDr);
    case kMsr:
      if (s.mcr & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        const uint8_t m = s.mcr;
        return ((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4);
      }
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScr:
      return s.scr;
    default:
      return 0xff;
  }
}

void Serial8250::WriteRegister(uint64_t offset, uint8_t value) {
  State& s = state_;
  switch (offset) {
    case kRbrThr:
      if (dlab()) {
        s.dll = value;
        return;
      }
      if (s.mcr & kMcrLoop) {
        if (s.input.size() < kMaxQueuedInput) {
          s.input.push_back(static_cast<char>(value));
        } else {
          ++dropped_input_;
        }
      } else {
        Emit(value);
      }
      s.thre_pending = true;  // the byte left at once: THR is empty again
      return;
    case kIer:
      if (dlab()) {
        s.dlm = value;
        return;
      }
      if ((value & kIerThri) && !(s.ier & kIerThri)) s.thre_pending = true;
      s.ier = value & 0x0f;
      return;
    case kIirFcr:
      if (value & kFcrClearRx) s.input.clear();
      s.fcr = value & 0xc9;  // enable, DMA mode, trigger level; clear bits self-clear
      return;
    case kLcr:
      s.lcr = value;
      return;
    case kMcr:
      s.mcr = value & 0x1f;
      return;
    case kScr:
      s.scr = value;
      return;
    default:  // LSR and MSR are read-only
      return;
  }
}

void Serial8250::Emit(uint8_t byte) {
  const char c = static_cast<char>(byte);
  if (sink_) {
    sink_(std::string_view(&c, 1));
    return;
  }
  if (!fd_.valid()) return;
  while (true) {
    const ssize_t n = ::write(fd_.get(), &c, 1);
    if (n == 1) return;
    if (n < 0 && errno == EINTR) continue;
    ++output_errors_;
    return;
  }
}

void Serial8250::UpdateIrq() {
  const bool level = ((state_.ier & kIerRdi) && !state_.input.empty()) ||
                     ((state_.ier & kIerThri) && state_.thre_pending);
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_(level);
}

size_t Serial8250::QueueInput(std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  const size_t room = kMaxQueuedInput - state_.input.size();
  const size_t n = std::min(room, bytes.size());
  state_.input.append(bytes.substr(0, n));
  dropped_input_ += bytes.size() - n;
  UpdateIrq();
  return n;
}

uint64_t Serial8250::dropped_input() const {
  absl::MutexLock lock(&mu_);
  return dropped_input_;
}

uint64_t Serial8250::output_errors() const {
  absl::MutexLock lock(&mu_);
  return output_errors_;
}

Serial8250::State Serial8250::SaveState() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Status Serial8250::RestoreState(const State& state) {
  if (state.input.size() > kMaxQueuedInput) {
    return absl::InvalidArgumentError(absl::StrCat("serial8250 state: ", state.input.size(),
                                                   " bytes of queued input (max ", kMaxQueuedInput,
                                                   ")"));
  }
  absl::MutexLock lock(&mu_);
  state_ = state;
  UpdateIrq();
  return absl::OkStatus();
}

std::vector<uint8_t> Serial8250::EncodeState(const State& state) {
  StateWriter w(kStateVersion);
  w.U8(state.ier);
  w.U8(state.lcr);
  w.U8(state.mcr);
  w.U8(state.scr);
  w.U8(state.fcr);
  w.U8(state.dll);
  w.U8(state.dlm);
  w.U8(state.thre_pending ? 1 : 0);
  w.Bytes(state.input);
  return w.Finish();
}

absl::StatusOr<Serial8250::State> Serial8250::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "serial8250");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  s.ier = r.U8();
  s.lcr = r.U8();
  s.mcr = r.U8();
  s.scr = r.U8();
  s.fcr = r.U8();
  s.dll = r.U8();
  s.dlm = r.U8();
  s.thre_pending = r.Bool();
  s.input = r.Bytes(kMaxQueuedInput);
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome
