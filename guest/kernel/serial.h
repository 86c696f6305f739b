// guest/kernel/serial.h: polled 8250 output on COM1 and a small line builder, usable at CPL0 and
// at CPL3 (IOPL=3). LineWriter::Flush() writes a whole line under a spinlock so lines from
// different vCPUs do not interleave; the CPL0 exception path uses FlushUnlocked(). Thread-safe
// through that lock; a LineWriter itself belongs to one vCPU.
#ifndef REHOME_GUEST_KERNEL_SERIAL_H_
#define REHOME_GUEST_KERNEL_SERIAL_H_

#include <stdint.h>

namespace rehome::guest {

// Programs COM1 for 115200 8N1 with interrupts off. Called once by the BSP at boot.
void SerialInit();

class LineWriter final {
 public:
  LineWriter() = default;
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  LineWriter& Str(const char* s);
  LineWriter& Dec(uint64_t value);
  LineWriter& Hex(uint64_t value);    // 0x-prefixed
  LineWriter& Hex64(uint64_t value);  // 16 digits, no prefix
  // Appends '\n' and writes the line to COM1, then empties the buffer.
  void Flush();
  void FlushUnlocked();

 private:
  void Put(char c);

  char buf_[200];
  uint32_t len_ = 0;
};

}  // namespace rehome::guest

#endif  // REHOME_GUEST_KERNEL_SERIAL_H_
