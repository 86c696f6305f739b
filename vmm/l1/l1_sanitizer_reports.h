// vmm/l1/l1_sanitizer_reports.h: keeps a sanitizer's reports reachable from a confined L1.
// A sanitizer opens its log file (`log_path=` in ASAN_OPTIONS or TSAN_OPTIONS) only when its
// first report comes, and a confined L1 can open nothing then (empty root, seccomp). In
// sanitizer builds this opens `<log_path>.l1.<pid>.<ns>` before confinement and hands the fd to the
// runtime (__sanitizer_set_report_fd); the file stays empty unless something is reported
// (`make test-tsan` fails on any non-empty report file). Without log_path, reports go to stderr
// as always. In other builds it does nothing.
// Thread-safety: call once, while the process has a single thread, before ApplyL1Sandbox.
#ifndef REHOME_VMM_L1_L1_SANITIZER_REPORTS_H_
#define REHOME_VMM_L1_L1_SANITIZER_REPORTS_H_

#include <string>
#include <string_view>

namespace rehome {

// The log_path value in a sanitizer options string ("a=1:log_path=/x/report:b=2"), or "".
std::string SanitizerLogPath(std::string_view options);

void KeepSanitizerReportsReachable();

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_SANITIZER_REPORTS_H_
