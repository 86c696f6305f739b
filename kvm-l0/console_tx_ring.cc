// kvm-l0/console_tx_ring.cc: ConsoleTxRing.
#include "kvm-l0/console_tx_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

constexpr size_t kRingBytes = size_t{kConsoleTxRingDataOffset} + kConsoleTxRingCapacity;

}  // namespace

absl::StatusOr<ConsoleTxRing> ConsoleTxRing::Create() {
  ConsoleTxRing ring;
  ring.memfd_.Reset(memfd_create("rehome-console-tx", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!ring.memfd_.valid()) return LastErrnoStatus("memfd_create console ring");
  if (ftruncate(ring.memfd_.get(), static_cast<off_t>(kRingBytes)) != 0) {
    return LastErrnoStatus("ftruncate console ring");
  }
  // The size is fixed for both sides' lifetime: no shrink (SIGBUS) or growth by an L1.
  if (fcntl(ring.memfd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return LastErrnoStatus("sealing console ring");
  }
  ASSIGN_OR_RETURN(ring.mapping_, MappedRegion::Map(kRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                                                    ring.memfd_.get(), 0));
  auto* h = new (ring.mapping_.get()) ConsoleTxRingHeader{};
  h->magic = kConsoleTxRingMagic;
  h->version = kConsoleTxRingVersion;
  h->capacity = kConsoleTxRingCapacity;
  h->published.store(0, std::memory_order_release);
  h->consumed.store(0, std::memory_order_release);
  return ring;
}

absl::StatusOr<ConsoleTxRing> ConsoleTxRing::Attach(int memfd) {
  ConsoleTxRing ring;
  ring.memfd_.Reset(memfd);
  struct stat st {};
  if (fstat(memfd, &st) != 0) return LastErrnoStatus("fstat console ring");
  if (static_cast<uint64_t>(st.st_size) != kRingBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("console ring: size ", st.st_size, ", expected ", kRingBytes));
  }
  ASSIGN_OR_RETURN(ring.mapping_,
                   MappedRegion::Map(kRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0));
  const ConsoleTxRingHeader* h = ring.header();
  if (h->magic != kConsoleTxRingMagic || h->version != kConsoleTxRingVersion ||
      h->capacity != kConsoleTxRingCapacity) {
    return absl::InvalidArgumentError("console ring: bad magic, version or capacity");
  }
  return ring;
}

uint64_t ConsoleTxRing::FreeAt(uint64_t pos) const {
  const uint64_t used = pos - consumed();
  return used >= kConsoleTxRingCapacity ? 0 : kConsoleTxRingCapacity - used;
}

bool ConsoleTxRing::WriteAt(uint64_t pos, std::string_view bytes) {
  // L0 has taken bytes past `pos` only if an earlier L1 published more than it committed (a
  // lying L1; an honest one publishes committed bytes only): those positions are gone for good,
  // so skip them instead of waiting for space that can never come free.
  if (const uint64_t taken = consumed(); pos < taken) {
    const uint64_t skip = std::min<uint64_t>(taken - pos, bytes.size());
    bytes.remove_prefix(skip);
    pos += skip;
  }
  if (bytes.size() > FreeAt(pos)) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    const uint64_t at = (pos + done) % kConsoleTxRingCapacity;
    const size_t n = std::min<size_t>(bytes.size() - done, kConsoleTxRingCapacity - at);
    std::memcpy(data() + at, bytes.data() + done, n);
    done += n;
  }
  return true;
}

void ConsoleTxRing::Publish(uint64_t pos) {
  std::atomic<uint64_t>& published = header()->published;
  uint64_t current = published.load(std::memory_order_relaxed);
  // Release: the bytes before `pos` are visible to L0 before the position is.
  while (pos > current &&
         !published.compare_exchange_weak(current, pos, std::memory_order_release)) {
  }
}

absl::StatusOr<std::string> ConsoleTxRing::Take() {
  // L0's own count, never the shared one (an L1 may have scribbled on it); the shared one is
  // rewritten from it on every call, for the writer's free-space test.
  const uint64_t consumed_pos = taken_.load(std::memory_order_relaxed);
  header()->consumed.store(consumed_pos, std::memory_order_release);
  const uint64_t published_pos = published();
  if (published_pos < consumed_pos || published_pos - consumed_pos > kConsoleTxRingCapacity) {
    // Forget the impossible position (a later valid Publish moves on from `consumed`).
    uint64_t expected = published_pos;
    header()->published.compare_exchange_strong(expected, consumed_pos, std::memory_order_acq_rel);
    return absl::DataLossError(absl::StrCat("console ring: published position ", published_pos,
                                            " is impossible with ", consumed_pos, " consumed"));
  }
  std::string out(published_pos - consumed_pos, '\0');
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t at = (consumed_pos + done) % kConsoleTxRingCapacity;
    const size_t n = std::min<size_t>(out.size() - done, kConsoleTxRingCapacity - at);
    std::memcpy(out.data() + done, data() + at, n);
    done += n;
  }
  taken_.store(published_pos, std::memory_order_relaxed);
  header()->consumed.store(published_pos, std::memory_order_release);
  return out;
}

}  // namespace rehome

namespace rehome {

void ConsoleTxRing::RepairShared() {
  const uint64_t taken = taken_.load(std::memory_order_relaxed);
  header()->consumed.store(taken, std::memory_order_release);
  uint64_t published_pos = published();
  if (published_pos < taken || published_pos - taken > kConsoleTxRingCapacity) {
    header()->published.compare_exchange_strong(published_pos, taken, std::memory_order_acq_rel);
  }
}

}  // namespace rehome
