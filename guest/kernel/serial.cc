// guest/kernel/serial.cc: COM1 8250 polled output (see serial.h). Each byte waits for THRE in
// the line status register (bounded, so a missing UART cannot hang the guest).
#include "guest/kernel/serial.h"

#include "guest/abi/rehome_abi.h"
#include "guest/kernel/io.h"

namespace rehome::guest {
namespace {

constexpr uint16_t kCom1 = abi::kCom1Port;
constexpr uint8_t kLsrThre = 0x20;

int serial_lock = 0;

void PutRaw(char c) {
  for (int i = 0; i < 100000 && !(InB(kCom1 + 5) & kLsrThre); ++i) {
  }
  OutB(kCom1, static_cast<uint8_t>(c));
}

void WriteBytes(const char* s, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) PutRaw(s[i]);
}

}  // namespace

void SerialInit() {
  OutB(kCom1 + 1, 0x00);  // IER: no interrupts
  OutB(kCom1 + 3, 0x80);  // LCR: DLAB
  OutB(kCom1 + 0, 0x01);  // divisor 1: 115200 baud
  OutB(kCom1 + 1, 0x00);
  OutB(kCom1 + 3, 0x03);  // LCR: 8N1
}

void LineWriter::Put(char c) {
  if (len_ < sizeof(buf_) - 1) buf_[len_++] = c;
}

LineWriter& LineWriter::Str(const char* s) {
  while (*s) Put(*s++);
  return *this;
}

LineWriter& LineWriter::Dec(uint64_t value) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) Put(tmp[--n]);
  return *this;
}

LineWriter& LineWriter::Hex(uint64_t value) {
  Put('0');
  Put('x');
  int shift = 60;
  while (shift > 0 && ((value >> shift) & 0xf) == 0) shift -= 4;
  for (; shift >= 0; shift -= 4) Put("0123456789abcdef"[(value >> shift) & 0xf]);
  return *this;
}

LineWriter& LineWriter::Hex64(uint64_t value) {
  for (int shift = 60; shift >= 0; shift -= 4) Put("0123456789abcdef"[(value >> shift) & 0xf]);
  return *this;
}

void LineWriter::Flush() {
  while (__atomic_exchange_n(&serial_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    asm volatile("pause");
  }
  FlushUnlocked();
  __atomic_store_n(&serial_lock, 0, __ATOMIC_RELEASE);
}

void LineWriter::FlushUnlocked() {
  buf_[len_++] = '\n';
  WriteBytes(buf_, len_);
  len_ = 0;
}

}  // namespace rehome::guest
