// vmm/loader/testing_linux.h: for tests only: Debian's cloud kernel and the small guest
// initramfs, made by the project's scripts (scripts/nested-host/fetch-kernel.sh and
// build-guest-initramfs.sh, found through $REHOME_SOURCE_DIR, which ctest sets). Each returns
// the path, or "" with the script's one-line reason in `why` (the caller skips the test).
// Header-only; not thread-safe (popen).
#ifndef REHOME_VMM_LOADER_TESTING_LINUX_H_
#define REHOME_VMM_LOADER_TESTING_LINUX_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace rehome::testing_linux {

// Runs `command`, which prints a path and exits 0, or a reason and exits 1.
inline std::string PathFromScript(const std::string& command, std::string* why) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    *why = "cannot run " + command;
    return "";
  }
  char line[512] = {0};
  const bool got = fgets(line, sizeof(line), p) != nullptr;
  const int rc = pclose(p);
  std::string out = got ? line : "";
  if (!out.empty() && out.back() == '\n') out.pop_back();
  if (rc != 0) {
    *why = out.empty() ? command + " failed" : out;
    return "";
  }
  return out;
}

inline std::string Scripts() {
  const char* dir = std::getenv("REHOME_SOURCE_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/scripts/nested-host/";
}

// $REHOME_LINUX_KERNEL, or the cached (downloaded once) cloud kernel.
inline std::string DebianKernel(std::string* why) {
  if (const char* env = std::getenv("REHOME_LINUX_KERNEL"); env != nullptr) return env;
  return PathFromScript(Scripts() + "fetch-kernel.sh", why);
}

inline std::string GuestInitramfs(const std::string& out, std::string* why) {
  return PathFromScript(Scripts() + "build-guest-initramfs.sh " + out, why);
}

}  // namespace rehome::testing_linux

#endif  // REHOME_VMM_LOADER_TESTING_LINUX_H_
