// recovery/proc_stats.cc: MainThreadRuntimeNs, ProcessState.
#include "recovery/proc_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rehome {
namespace {

std::optional<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buffer[512];
  const ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  return std::string(buffer, static_cast<size_t>(n));
}

}  // namespace

std::optional<uint64_t> MainThreadRuntimeNs(pid_t pid) {
  std::optional<std::string> text = ReadSmallFile("/proc/" + std::to_string(pid) + "/schedstat");
  if (!text.has_value()) return std::nullopt;
  char* end = nullptr;
  const unsigned long long ns = std::strtoull(text->c_str(), &end, 10);
  if (end == text->c_str()) return std::nullopt;
  return static_cast<uint64_t>(ns);
}

std::optional<char> ProcessState(pid_t pid) {
  std::optional<std::string> text = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.has_value()) return std::nullopt;
  // "PID (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos || paren + 2 >= text->size()) return std::nullopt;
  return (*text)[paren + 2];
}

}  // namespace rehome
