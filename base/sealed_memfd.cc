// base/sealed_memfd.cc: CreateSealedMemfd, MapSharedOfSize.
#include "base/sealed_memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"

namespace rehome {

absl::StatusOr<UniqueFd> CreateSealedMemfd(const char* name, uint64_t size) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("memfd_create ", name));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
    return LastErrnoStatus(absl::StrCat("ftruncate ", name));
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
    return LastErrnoStatus(absl::StrCat("sealing ", name));
  }
  return fd;
}

absl::StatusOr<MappedRegion> MapSharedOfSize(int fd, uint64_t size, std::string_view what,
                                             int extra_flags) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return LastErrnoStatus(absl::StrCat("fstat ", std::string(what)));
  if (static_cast<uint64_t>(st.st_size) != size) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), ": size ", st.st_size, ", expected ", size));
  }
  return MappedRegion::Map(size, PROT_READ | PROT_WRITE, MAP_SHARED | extra_flags, fd, 0);
}

}  // namespace rehome
