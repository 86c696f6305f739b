// guest/user/cmdline.cc: command line parser (see cmdline.h). Runs at CPL3.
#include "guest/user/cmdline.h"

#include "guest/kernel/layout.h"

namespace rehome::guest {
namespace {

bool TokenEquals(const char* s, uint32_t n, const char* word) {
  uint32_t i = 0;
  for (; i < n; ++i) {
    if (word[i] != s[i]) return false;
  }
  return word[i] == '\0';
}

// Decimal or 0x-prefixed hexadecimal, no sign, no overflow.
bool ParseU64(const char* s, uint32_t n, uint64_t* out) {
  if (n == 0) return false;
  uint64_t base = 10;
  uint32_t i = 0;
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  uint64_t value = 0;
  for (; i < n; ++i) {
    const char c = s[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      digit = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return false;
    }
    if (value > (~0ull - digit) / base) return false;
    value = value * base + digit;
  }
  *out = value;
  return true;
}

// Dotted-quad IPv4 address: four decimal octets 0..255.
bool ParseIpv4(const char* s, uint32_t n, uint32_t* out) {
  uint32_t value = 0, octet = 0, digits = 0, dots = 0;
  for (uint32_t i = 0; i <= n; ++i) {
    if (i == n || s[i] == '.') {
      if (digits == 0 || octet > 255) return false;
      value = value << 8 | octet;
      octet = digits = 0;
      if (i < n && ++dots > 3) return false;
    } else if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
      octet = octet * 10 + static_cast<uint32_t>(s[i] - '0');
      ++digits;
    } else {
      return false;
    }
  }
  if (dots != 3) return false;
  *out = value;
  return true;
}

void AppendToken(LineWriter* w, const char* s, uint32_t n) {
  char tmp[64];
  uint32_t i = 0;
  for (; i < n && i < sizeof(tmp) - 1; ++i) tmp[i] = s[i];
  tmp[i] = '\0';
  w->Str(tmp);
}

}  // namespace

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kCounter:
      return "counter";
    case Workload::kPio:
      return "pio";
    case Workload::kFault:
      return "fault";
    case Workload::kBlk:
      return "blk";
    case Workload::kEcho:
      return "echo";
    case Workload::kNetEcho:
      return "netecho";
    case Workload::kSearch:
      return "search";
    case Workload::kOltp:
      return "oltp";
    case Workload::kVirtioBad:
      return "virtio-bad";
    case Workload::kReboot:
      return "reboot";
    case Workload::kPowerOff:
      return "poweroff";
    case Workload::kPanic:
      return "panic";
    case Workload::kIdle:
      break;
  }
  return "idle";
}

bool ParseCommandLine(const char* cmdline, GuestConfig* config, LineWriter* error) {
  const char* p = cmdline;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == '\n') ++p;
    const char* tok = p;
    while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n') ++p;
    const uint32_t len = static_cast<uint32_t>(p - tok);
    uint32_t eq = 0;
    while (eq < len && tok[eq] != '=') ++eq;
    if (len == 0 || eq == len) continue;  // empty or not key=value: not ours
    const char* key = tok;
    const char* val = tok + eq + 1;
    const uint32_t val_len = len - eq - 1;
    uint64_t number = 0;
    if (TokenEquals(key, eq, "workload")) {
      if (TokenEquals(val, val_len, "counter")) {
        config->workload = Workload::kCounter;
      } else if (TokenEquals(val, val_len, "idle")) {
        config->workload = Workload::kIdle;
      } else if (TokenEquals(val, val_len, "pio")) {
        config->workload = Workload::kPio;
      } else if (TokenEquals(val, val_len, "fault")) {
        config->workload = Workload::kFault;
      } else if (TokenEquals(val, val_len, "blk")) {
        config->workload = Workload::kBlk;
      } else if (TokenEquals(val, val_len, "echo")) {
        config->workload = Workload::kEcho;
      } else if (TokenEquals(val, val_len, "netecho")) {
        config->workload = Workload::kNetEcho;
      } else if (TokenEquals(val, val_len, "search")) {
        config->workload = Workload::kSearch;
      } else if (TokenEquals(val, val_len, "oltp")) {
        config->workload = Workload::kOltp;
      } else if (TokenEquals(val, val_len, "virtio-bad")) {
        config->workload = Workload::kVirtioBad;
      } else if (TokenEquals(val, val_len, "reboot")) {
        config->workload = Workload::kReboot;
      } else if (TokenEquals(val, val_len, "poweroff")) {
        config->workload = Workload::kPowerOff;
      } else if (TokenEquals(val, val_len, "panic")) {
        config->workload = Workload::kPanic;
      } else {
        error->Str("unknown workload '");
        AppendToken(error, val, val_len);
        error->Str("'");
        return false;
      }
      continue;
    }
    if (TokenEquals(key, eq, "virtio_mmio.device")) {
      if (config->virtio_count == kMaxVirtioDevices ||
          !ParseVirtioMmioDevice(val, val_len, &config->virtio[config->virtio_count])) {
        error->Str("bad '");
        AppendToken(error, tok, len);
        error->Str("' (want <size>@<base>:<irq>, 0x200+ bytes below 4 GiB, at most ");
        error->Dec(kMaxVirtioDevices).Str(")");
        return false;
      }
      ++config->virtio_count;
      continue;
    }
    if (TokenEquals(key, eq, "ip")) {
      if (!ParseIpv4(val, val_len, &config->ip)) {
        error->Str("malformed value in '");
        AppendToken(error, tok, len);
        error->Str("' (want an IPv4 address such as 10.0.2.15)");
        return false;
      }
      continue;
    }
    const bool is_seed = TokenEquals(key, eq, "seed");
    const bool is_steps = TokenEquals(key, eq, "steps");
    const bool is_every = TokenEquals(key, eq, "report_every");
    const bool is_cpus = TokenEquals(key, eq, "cpus");
    const bool is_port = TokenEquals(key, eq, "port");
    const bool is_cache = TokenEquals(key, eq, "cache_kib");
    const bool is_depth = TokenEquals(key, eq, "io_depth");
    if (!is_seed && !is_steps && !is_every && !is_cpus && !is_port && !is_cache && !is_depth) {
      continue;
    }
    if (!ParseU64(val, val_len, &number) || (is_cpus && (number == 0 || number > GUEST_MAX_CPUS)) ||
        (is_port && (number == 0 || number > 65535)) || (is_cache && number < 4) ||
        (is_depth && (number == 0 || number > kBlkMaxBatch))) {
      error->Str("malformed value in '");
      AppendToken(error, tok, len);
      error->Str("'");
      if (is_cpus) error->Str(" (cpus must be 1..").Dec(GUEST_MAX_CPUS).Str(")");
      if (is_port) error->Str(" (port must be 1..65535)");
      if (is_cache) error->Str(" (cache_kib must be at least 4)");
      if (is_depth) error->Str(" (io_depth must be 1..").Dec(kBlkMaxBatch).Str(")");
      return false;
    }
    if (is_port) {
      config->port = static_cast<uint16_t>(number);
      config->port_given = true;
    }
    if (is_cache) config->cache_kib = number;
    if (is_depth) config->io_depth = static_cast<uint32_t>(number);
    if (is_seed) config->seed = number;
    if (is_steps) config->steps = number;
    if (is_every) config->report_every = number;
    if (is_cpus) config->cpus = static_cast<uint32_t>(number);
  }
  return true;
}

}  // namespace rehome::guest
