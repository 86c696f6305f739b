// base/regular_file.cc: OpenRegularFile.
#include "base/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace rehome {

const char* FileTypeName(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

absl::StatusOr<UniqueFd> OpenRegularFile(const std::string& path, int flags,
                                         std::string_view what) {
  const std::string name = absl::StrCat(std::string(what), " '", path, "'");
  auto refuse = [&](mode_t mode) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": is ", FileTypeName(mode), ", not a regular file"));
  };
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer (nor O_NOCTTY make a
  // terminal ours). It is cleared again below for the regular file this must be.
  UniqueFd fd(open(path.c_str(), flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    if (errno == EISDIR) return refuse(S_IFDIR);
    if (errno == ENXIO) return refuse(S_IFIFO);  // a FIFO opened for writing without a reader
    return LastErrnoStatus(name);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return LastErrnoStatus(name);
  if (!S_ISREG(st.st_mode)) return refuse(st.st_mode);
  const int status_flags = fcntl(fd.get(), F_GETFL);
  if (status_flags < 0 || fcntl(fd.get(), F_SETFL, status_flags & ~O_NONBLOCK) != 0) {
    return LastErrnoStatus(name);
  }
  return fd;
}

}  // namespace rehome
