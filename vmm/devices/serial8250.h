// vmm/devices/serial8250.h: an 8250/16550-style UART (COM1 at 0x3f8, 8 ports). Transmit is
// instantaneous (LSR always reports THR empty and transmitter empty); output bytes go to a sink
// or a file descriptor. Input bytes queued with QueueInput() are returned through RBR, and LSR
// data-ready is set while any are queued. Implements IER, IIR (THR-empty and data-ready
// sources; FIFO bits when FCR enables the FIFO), LCR with the DLAB divisor latch, MCR with
// loopback, MSR, SCR. Interrupts are optional: the `irq` hook receives the line level whenever it
// changes (the test guest polls). Thread-safe: an absl::Mutex guards the registers; the sink
// and the irq hook are called with it held and must not call back into this device.
#ifndef REHOME_VMM_DEVICES_SERIAL8250_H_
#define REHOME_VMM_DEVICES_SERIAL8250_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "vmm/bus.h"

namespace rehome {

class Serial8250 final : public BusDevice {
 public:
  using OutputSink = std::function<void(std::string_view)>;
  using IrqHook = std::function<void(bool level)>;
  static constexpr uint64_t kPortCount = 8;
  static constexpr size_t kMaxQueuedInput = 4096;  // bytes beyond this are dropped

  // Registers and the untransmitted input: what a failover must carry.
  struct State {
    uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0, fcr = 0;
    uint8_t dll = 0x0c, dlm = 0;  // 9600 baud
    bool thre_pending = false;    // THR-empty interrupt not yet acknowledged
    std::string input;            // queued, not yet read by the guest
  };

  explicit Serial8250(OutputSink sink, IrqHook irq = nullptr);
  // Writes output to `fd` (owned); write errors are counted, never fatal.
  explicit Serial8250(UniqueFd fd, IrqHook irq = nullptr);
  Serial8250(const Serial8250&) = delete;
  Serial8250& operator=(const Serial8250&) = delete;

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;
  std::string name() const override { return "serial8250"; }

  // Queues bytes for the guest to read (e.g. from stdin). Returns how many were accepted.
  size_t QueueInput(std::string_view bytes);
  uint64_t dropped_input() const;
  uint64_t output_errors() const;

  State SaveState() const;
  // Fails with InvalidArgument if the input is longer than kMaxQueuedInput.
  absl::Status RestoreState(const State& state);
  static std::vector<uint8_t> EncodeState(const State& state);
  static absl::StatusOr<State> DecodeState(std::span<const uint8_t> bytes);

 private:
  uint8_t ReadRegister(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t offset, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateIrq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool dlab() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return (state_.lcr & 0x80) != 0; }

  OutputSink sink_;
  UniqueFd fd_;
  IrqHook irq_;
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_);  // state_.input is the live input queue
  bool irq_level_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_input_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t output_errors_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rehome

#endif  // REHOME_VMM_DEVICES_SERIAL8250_H_
