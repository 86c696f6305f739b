// guest/workloads/echo_workload.cc: the `echo` workload (see io_workloads.h and
// docs/guest-abi.md): for seq = 1..steps, sends `REQ <seq> <payload>\n` on virtio-console port 0
// and requires the next received line to be exactly `RSP <seq> <payload reversed>\n`, so a lost,
// duplicated, reordered or corrupted byte fails the run. vCPU 0 only, CPL3.
#include "guest/kernel/serial.h"
#include "guest/virtio/virtio_console.h"
#include "guest/workloads/block_pattern.h"
#include "guest/workloads/io_workloads.h"

namespace rehome::guest {
namespace {

constexpr uint32_t kMaxPayload = 200;
constexpr uint32_t kMaxLine = 256;            // "RSP " + 20 digits + ' ' + 200 + '\n' fits
constexpr uint64_t kTimeoutTicks = 10 * 250;  // per transfer and per received byte: 10 s

VirtioConsole console;
char request[kMaxLine];
char expected[kMaxLine];
char received[kMaxLine + 1];

uint32_t AppendStr(char* buf, uint32_t n, const char* s) {
  while (*s != '\0') buf[n++] = *s++;
  return n;
}

uint32_t AppendDec(char* buf, uint32_t n, uint64_t v) {
  char tmp[20];
  uint32_t k = 0;
  do {
    tmp[k++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (k > 0) buf[n++] = tmp[--k];
  return n;
}

// Builds the request and the expected response for `seq`; returns their (equal) lengths.
uint32_t BuildLines(uint64_t seed, uint64_t seq) {
  const uint64_t state = blockpattern::Mix64(seed ^ blockpattern::Mix64(seq));
  const uint32_t len = 1 + static_cast<uint32_t>(state % kMaxPayload);
  uint32_t n = AppendDec(request, AppendStr(request, 0, "REQ "), seq);
  AppendDec(expected, AppendStr(expected, 0, "RSP "), seq);
  request[n] = expected[n] = ' ';
  ++n;
  for (uint32_t i = 0; i < len; ++i) {
    // Printable, no space: 0x21..0x7e.
    const char c = static_cast<char>(0x21 + blockpattern::Mix64(state + 1 + i) % 94);
    request[n + i] = c;
    expected[n + len - 1 - i] = c;
  }
  n += len;
  request[n] = expected[n] = '\n';
  return n + 1;
}

// Prints up to 150 bytes of `s` after `label` (newlines shown as '|').
void PrintTruncated(const char* label, const char* s, uint32_t n) {
  LineWriter w;
  w.Str("rehome-guest: echo ").Str(label).Str("=");
  char tmp[151];
  uint32_t k = 0;
  for (; k < n && k < 150; ++k) tmp[k] = s[k] == '\n' ? '|' : s[k];
  tmp[k] = '\0';
  w.Str(tmp).Flush();
}

}  // namespace

bool RunEcho(const VirtioDevices& devices, uint64_t seed, uint64_t steps) {
  LineWriter err;
  err.Str("rehome-guest: echo: ");
  VirtioMmio found;
  if (!FindVirtioDevice(devices.regions, devices.count, kVirtioIdConsole, &found)) {
    err.Str("no virtio-console device (needs a virtio_mmio.device= entry)").Flush();
    return false;
  }
  if (!console.Init(found.base(), &err)) {
    err.Flush();
    return false;
  }
  for (uint64_t seq = 1; steps == 0 || seq <= steps; ++seq) {
    const uint32_t len = BuildLines(seed, seq);
    if (!console.Write(request, len, kTimeoutTicks, &err)) {
      err.Str(" (sending seq=").Dec(seq).Str(")").Flush();
      return false;
    }
    uint32_t got = 0;
    char c = 0;
    while (c != '\n' && got <= kMaxLine) {
      if (!console.ReadByte(&c, kTimeoutTicks, &err)) {
        err.Str(" (waiting for seq=").Dec(seq).Str(" after ").Dec(got).Str(" bytes)").Flush();
        return false;
      }
      received[got++] = c;
    }
    uint32_t same = 0;
    while (same < len && same < got && received[same] == expected[same]) ++same;
    if (same != len || got != len) {
      LineWriter()
          .Str("rehome-guest: echo mismatch seq=")
          .Dec(seq)
          .Str(" offset=")
          .Dec(same)
          .Str(" got_len=")
          .Dec(got)
          .Str(" want_len=")
          .Dec(len)
          .Flush();
      PrintTruncated("want", expected, len);
      PrintTruncated("got", received, got);
      return false;
    }
  }
  LineWriter().Str("rehome-guest: echo done steps=").Dec(steps).Flush();
  return true;
}

}  // namespace rehome::guest
