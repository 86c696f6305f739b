// vmm/l1/l1_sanitizer_reports.cc: see l1_sanitizer_reports.h.
#include "vmm/l1/l1_sanitizer_reports.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#include <sanitizer/common_interface_defs.h>
#define REHOME_SANITIZER_BUILD 1
#endif

namespace rehome {

std::string SanitizerLogPath(std::string_view options) {
  std::string path;
  // Options are separated by ':' (or spaces); the last log_path wins, as in the runtime.
  for (absl::string_view option :
       absl::StrSplit(absl::string_view(options.data(), options.size()), absl::ByAnyChar(": "))) {
    if (absl::ConsumePrefix(&option, "log_path=")) path = std::string(option);
  }
  return path;
}

void KeepSanitizerReportsReachable() {
#if defined(REHOME_SANITIZER_BUILD)
#if defined(__SANITIZE_THREAD__)
  const char* options = std::getenv("TSAN_OPTIONS");
#else
  const char* options = std::getenv("ASAN_OPTIONS");
#endif
  if (options == nullptr) return;
  const std::string path = SanitizerLogPath(options);
  if (path.empty() || path == "stderr" || path == "stdout") return;
  // In its own pid namespace every L1 is pid 1: the clock tells them apart.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const std::string file =
      absl::StrCat(path, ".l1.", getpid(), ".", now.tv_sec * 1'000'000'000LL + now.tv_nsec);
  const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) __sanitizer_set_report_fd(reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
#endif
}

}  // namespace rehome
