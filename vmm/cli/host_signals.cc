// vmm/cli/host_signals.cc: HostSignals.
#include "vmm/cli/host_signals.h"

#include <atomic>

namespace rehome {
namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP};

std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

void OnSignal(int signal_number) {
  int none = 0;
  g_received.compare_exchange_strong(none, signal_number, std::memory_order_relaxed);
}

}  // namespace

HostSignals::HostSignals() {
  g_received.store(0, std::memory_order_relaxed);
  struct sigaction action {};
  action.sa_handler = OnSignal;
  // SA_RESETHAND: the next one takes the default action (ends the process).
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &previous_[i]);
}

HostSignals::~HostSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous_[i], nullptr);
}

int HostSignals::received() const { return g_received.load(std::memory_order_relaxed); }

std::string_view HostSignals::Name(int signal_number) {
  switch (signal_number) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

}  // namespace rehome
