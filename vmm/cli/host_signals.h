// vmm/cli/host_signals.h: SIGTERM, SIGINT and SIGHUP as a request to end `rehome run` cleanly,
// as QEMU does: the run loop sees the signal, stops the guest, emits the QMP event SHUTDOWN
// {"guest": false, "reason": "host-signal"}, lets the monitor's clients receive it, removes the
// QMP socket and exits with 128 + the signal number (QEMU exits 0; rehome keeps 0 for a guest
// that succeeded). A second such signal while stopping ends the process at once (the default
// action), so a stuck stop can still be interrupted.
//
// Thread-safety: one HostSignals at a time, created and destroyed by one thread; received() may
// be called from any thread. The handler only stores the signal number (async-signal-safe).
#ifndef REHOME_VMM_CLI_HOST_SIGNALS_H_
#define REHOME_VMM_CLI_HOST_SIGNALS_H_

#include <signal.h>

#include <string_view>

namespace rehome {

class HostSignals final {
 public:
  // Installs the handler (SA_RESTART, so that other threads' system calls mostly carry on).
  HostSignals();
  // Restores the previous dispositions.
  ~HostSignals();
  HostSignals(const HostSignals&) = delete;
  HostSignals& operator=(const HostSignals&) = delete;

  // The first signal received since construction, or 0.
  int received() const;
  // "SIGTERM", "SIGINT", "SIGHUP".
  static std::string_view Name(int signal_number);
  // The exit status `rehome run` ends with after `signal_number`: 128 + the number.
  static int ExitCode(int signal_number) { return 128 + signal_number; }

 private:
  struct sigaction previous_[3];
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_HOST_SIGNALS_H_
