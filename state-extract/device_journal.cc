// state-extract/device_journal.cc: DeviceJournal.
#include "state-extract/device_journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr size_t kBufferHeader = 16;  // length u32, crc u32, commit number u64

uint32_t Crc(uint64_t commit, const uint8_t* payload, uint32_t len) {
  uLong crc = crc32(0, nullptr, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(&commit), sizeof(commit));
  // zlib's crc32() with a null buffer restarts the CRC: an empty payload (a null span) would
  // get a different CRC from the one its reader computes.
  if (len != 0) crc = crc32(crc, payload, len);
  return static_cast<uint32_t>(crc);
}

}  // namespace

uint8_t* DeviceJournal::Buffer(uint32_t index) const {
  return mapping_.bytes() + sizeof(Header) + index * (kBufferHeader + capacity_);
}

std::span<uint8_t> DeviceJournal::RawBuffer(int index) const {
  return {Buffer(static_cast<uint32_t>(index)), kBufferHeader + capacity_};
}

absl::StatusOr<DeviceJournal> DeviceJournal::Create(uint64_t capacity) {
  if (capacity == 0 || capacity > (1ull << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("journal capacity ", capacity));
  }
  DeviceJournal journal;
  journal.memfd_.Reset(memfd_create("rehome-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!journal.memfd_.valid()) return LastErrnoStatus("memfd_create journal");
  const size_t size = sizeof(Header) + 2 * (kBufferHeader + capacity);
  if (ftruncate(journal.memfd_.get(), static_cast<off_t>(size)) != 0) {
    return LastErrnoStatus("ftruncate journal");
  }
  // Every L1 holds this fd: none may shrink it under L0's mapping (SIGBUS in L0) or grow it.
  if (fcntl(journal.memfd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return LastErrnoStatus("sealing journal");
  }
  // Populated: a failover reads it, and a page fault costs tens of microseconds on some hosts.
  ASSIGN_OR_RETURN(journal.mapping_,
                   MappedRegion::Map(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                     journal.memfd_.get(), 0));
  journal.header_ = new (journal.mapping_.get()) Header{};
  journal.header_->magic = kJournalMagic;
  journal.header_->version = kJournalVersion;
  journal.header_->capacity = capacity;
  journal.capacity_ = capacity;
  return journal;
}

absl::StatusOr<DeviceJournal> DeviceJournal::Attach(int memfd) {
  struct stat st {};
  if (fstat(memfd, &st) != 0) {
    const absl::Status status = LastErrnoStatus("fstat journal");
    close(memfd);
    return status;
  }
  return AttachAt(memfd, 0, static_cast<uint64_t>(st.st_size));
}

uint64_t DeviceJournal::SizeFor(uint64_t capacity) {
  return sizeof(Header) + 2 * (kBufferHeader + capacity);
}

uint64_t DeviceJournal::CapacityFor(uint64_t bytes) {
  return bytes < SizeFor(0) ? 0 : (bytes - sizeof(Header)) / 2 - kBufferHeader;
}

absl::StatusOr<DeviceJournal> DeviceJournal::AttachAt(int fd, uint64_t offset, uint64_t size) {
  DeviceJournal journal;
  journal.memfd_.Reset(fd);
  if (size < sizeof(Header)) return absl::InvalidArgumentError("journal: region too small");
  ASSIGN_OR_RETURN(journal.mapping_,
                   MappedRegion::Map(static_cast<size_t>(size), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, fd,
                                     static_cast<off_t>(offset)));  // as in Create
  journal.header_ = reinterpret_cast<Header*>(journal.mapping_.get());
  const uint64_t capacity = journal.header_->capacity;
  if (journal.header_->magic != kJournalMagic || journal.header_->version != kJournalVersion ||
      capacity == 0 || capacity > (1ull << 30) || SizeFor(capacity) > size) {
    return absl::InvalidArgumentError("journal: bad magic, version or size");
  }
  journal.capacity_ = capacity;
  return journal;
}

absl::Status DeviceJournal::Commit(std::span<const uint8_t> payload) {
  if (payload.size() > capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("journal: commit of ", payload.size(), " bytes exceeds capacity ", capacity_));
  }
  // The header is writable by every L1: a forged index must not send this write elsewhere.
  const uint32_t next = header_->current.load(std::memory_order_relaxed) == 0 ? 1 : 0;
  const uint64_t commit = header_->commits.load(std::memory_order_relaxed) + 1;
  uint8_t* buffer = Buffer(next);
  const uint32_t len = static_cast<uint32_t>(payload.size());
  const uint32_t crc = Crc(commit, payload.data(), len);
  std::memcpy(buffer, &len, 4);
  std::memcpy(buffer + 4, &crc, 4);
  std::memcpy(buffer + 8, &commit, 8);
  if (len != 0) std::memcpy(buffer + kBufferHeader, payload.data(), len);
  header_->current.store(next, std::memory_order_release);
  header_->commits.store(commit, std::memory_order_release);
  return absl::OkStatus();
}

std::optional<std::string> DeviceJournal::FindPayload(uint32_t payload_crc) const {
  for (uint32_t index = 0; index < 2; ++index) {
    const uint8_t* buffer = Buffer(index);
    uint32_t len = 0;
    std::memcpy(&len, buffer, 4);
    if (len > capacity_) continue;
    std::string payload(reinterpret_cast<const char*>(buffer + kBufferHeader), len);
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(payload.data()),
                            static_cast<uInt>(payload.size()));
    if (static_cast<uint32_t>(crc) == payload_crc) return payload;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> DeviceJournal::ReadCommitted() const {
  // An L1 may write the journal while this reads it (the active L1 commits; a hostile one
  // scribbles): every field is read once, the length is bounded by this side's own capacity,
  // and the checksum is computed over the private copy that is returned, never over the shared
  // bytes a second time.
  const uint64_t commits = header_->commits.load(std::memory_order_acquire);
  if (commits == 0) return absl::NotFoundError("journal: nothing committed yet");
  const uint32_t current = header_->current.load(std::memory_order_acquire);
  if (current > 1) return absl::DataLossError("journal: bad current index");
  const uint8_t* buffer = Buffer(current);
  uint32_t len = 0, crc = 0;
  uint64_t commit = 0;
  std::memcpy(&len, buffer, 4);
  std::memcpy(&crc, buffer + 4, 4);
  std::memcpy(&commit, buffer + 8, 8);
  if (len > capacity_) return absl::DataLossError("journal: bad payload length");
  std::string payload(reinterpret_cast<const char*>(buffer + kBufferHeader), len);
  if (Crc(commit, reinterpret_cast<const uint8_t*>(payload.data()), len) != crc) {
    return absl::DataLossError(absl::StrCat("journal: commit ", commit, " fails its checksum"));
  }
  return payload;
}

}  // namespace rehome
