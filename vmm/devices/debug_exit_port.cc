// vmm/devices/debug_exit_port.cc: DebugExitPort.
#include "vmm/devices/debug_exit_port.h"

#include <algorithm>
#include <utility>

#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome {
namespace {
constexpr uint8_t kStateVersion = 1;
}  // namespace

DebugExitPort::DebugExitPort(std::shared_ptr<VmRequests> requests)
    : requests_(std::move(requests)) {}

void DebugExitPort::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xff);
}

void DebugExitPort::Write(uint64_t offset, std::span<const uint8_t> data) {
  // Like isa-debug-exit, any write ends the VM; the value is the bytes written, little-endian,
  // placed at their offset within the 32-bit register.
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && offset + i < kPortCount; ++i) {
    value |= static_cast<uint32_t>(data[i]) << (8 * (offset + i));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!state_.written) state_ = State{true, value};
  }
  if (requests_ != nullptr) requests_->RequestExit(value);
}

DebugExitPort::State DebugExitPort::SaveState() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void DebugExitPort::RestoreState(const State& state) {
  absl::MutexLock lock(&mu_);
  state_ = state;
}

std::vector<uint8_t> DebugExitPort::EncodeState(const State& state) {
  StateWriter w(kStateVersion);
  w.U8(state.written ? 1 : 0);
  w.U32(state.value);
  return w.Finish();
}

absl::StatusOr<DebugExitPort::State> DebugExitPort::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "debug-exit");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  s.written = r.Bool();
  s.value = r.U32();
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome
