// vmm/loader/file_bytes.cc: ReadFileBytes.
#include "vmm/loader/file_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/errno_status.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "base/unique_fd.h"

namespace rehome {

absl::StatusOr<std::vector<uint8_t>> ReadFileBytes(std::string_view path, std::string_view what,
                                                   uint64_t max_bytes) {
  const std::string who = absl::StrCat(std::string(what), " '", std::string(path), "'");
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegularFile(std::string(path), O_RDONLY, what));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus(who);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: file of %u bytes is too large (max %u)", who, st.st_size, max_bytes));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoStatus(who);
    if (n == 0) break;  // the file shrank: the caller parses what is there
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace rehome
