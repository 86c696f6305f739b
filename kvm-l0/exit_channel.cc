// kvm-l0/exit_channel.cc: ExitChannel.
#include "kvm-l0/exit_channel.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errno_status.h"
#include "base/status_macros.h"

namespace rehome {
namespace {

absl::StatusOr<UniqueFd> NewEventFd() {
  UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return LastErrnoStatus("eventfd");
  return fd;
}

// The header's layout is a format (docs/exit-channel.md): fields only ever get added at its end.
static_assert(offsetof(ExitChannelHeader, heartbeat_ns) == 456 &&
              offsetof(ExitChannelHeader, exit_thread_notice) == 464 &&
              offsetof(ExitChannelHeader, vcpu_cpus) == 468 && sizeof(ExitChannelHeader) == 512);

size_t HeaderSize() { return (sizeof(ExitChannelHeader) + 4095) / 4096 * 4096; }

uLong CrcOf(uLong crc, const void* data, size_t len) {
  return crc32(crc, static_cast<const Bytef*>(data), static_cast<uInt>(len));
}

}  // namespace

uint32_t ResponseCrc(const ExitResponse& r) {
  // seq .. reason_len are contiguous: one pass over them is the same CRC as one per field.
  static_assert(offsetof(ExitResponse, seq) == 0 && offsetof(ExitResponse, crc) == 32 &&
                offsetof(ExitResponse, reason_len) == 28);
  uLong crc = CrcOf(crc32(0, nullptr, 0), &r.seq, offsetof(ExitResponse, crc));
  if (r.data_len != 0) crc = CrcOf(crc, r.data, std::min<uint32_t>(r.data_len, kExitDataMax));
  if (r.output_len != 0) {
    crc = CrcOf(crc, r.output, std::min<uint32_t>(r.output_len, kExitOutputMax));
  }
  if (r.reason_len != 0) {
    crc = CrcOf(crc, r.reason, std::min<uint32_t>(r.reason_len, kExitReasonMax));
  }
  return static_cast<uint32_t>(crc);
}

absl::Status ValidateResponse(const ExitRequest& request, const ExitResponse& response) {
  if (response.seq != request.seq) {
    return absl::InvalidArgumentError(absl::StrCat("response for exit ", response.seq,
                                                   " while exit ", request.seq, " is in flight"));
  }
  if (response.action > ExitResponse::kLastAction) {
    return absl::InvalidArgumentError(absl::StrCat("unknown action ", response.action));
  }
  if (response.output_stream > 1) return absl::InvalidArgumentError("unknown output stream");
  if (response.output_len > kExitOutputMax || response.reason_len > kExitReasonMax ||
      response.data_len > kExitDataMax) {
    return absl::InvalidArgumentError("response lengths out of range");
  }
  const uint32_t expected_data = request.is_write || request.kind == ExitRequest::kConsoleInput ||
                                         request.kind == ExitRequest::kDeviceKick
                                     ? 0
                                     : request.size * request.count;
  if (response.action == ExitResponse::kContinue && response.data_len != expected_data) {
    return absl::InvalidArgumentError(absl::StrCat("response carries ", response.data_len,
                                                   " data bytes, the exit needs ", expected_data));
  }
  if (response.crc != ResponseCrc(response)) {
    return absl::InvalidArgumentError("response checksum mismatch");
  }
  return absl::OkStatus();
}

std::vector<PostedRange> ReadPostedRanges(const ExitChannelHeader& header) {
  // The L1 may still scribble on its header: read each field once, into L0's memory.
  const uint32_t count = header.posted_range_count.load(std::memory_order_acquire);
  if (count == 0 || count > kMaxPostedRanges) return {};
  std::vector<PostedRange> ranges(count);
  std::memcpy(ranges.data(), header.posted_ranges, count * sizeof(PostedRange));
  for (const PostedRange& r : ranges) {
    const uint64_t limit = r.space == PostedRange::kPio ? 0x10000 : ~0ull;
    if ((r.space != PostedRange::kPio && r.space != PostedRange::kMmio) || r.length == 0 ||
        r.base > limit || r.length > limit - r.base) {
      return {};
    }
  }
  return ranges;
}

bool InPostedRange(const std::vector<PostedRange>& ranges, uint32_t kind, uint64_t addr,
                   uint64_t size) {
  uint32_t space = 0;
  if (kind == ExitRequest::kPio) space = PostedRange::kPio;
  if (kind == ExitRequest::kMmio) space = PostedRange::kMmio;
  for (const PostedRange& r : ranges) {
    if (r.space == space && addr >= r.base && size <= r.length &&
        addr - r.base <= r.length - size) {
      return true;
    }
  }
  return false;
}

size_t ExitChannel::SizeFor(uint32_t slots) {
  return HeaderSize() + static_cast<size_t>(slots) * sizeof(ExitSlot);
}

absl::Status ExitChannel::Map(size_t size, bool initialise) {
  ASSIGN_OR_RETURN(mapping_,
                   MappedRegion::Map(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                     memfd_.get(), 0));  // no page faults on the first exits
  if (initialise) {
    header_ = new (mapping_.get()) ExitChannelHeader{};
    header_->magic = kExitChannelMagic;
    header_->version = kExitChannelVersion;
    header_->slot_count = slot_count_;
    header_->l1_sleeping.store(1, std::memory_order_relaxed);  // until the L1 says otherwise
    slots_ = reinterpret_cast<ExitSlot*>(mapping_.bytes() + HeaderSize());
    for (uint32_t i = 0; i < slot_count_; ++i) new (&slots_[i]) ExitSlot{};
  } else {
    header_ = reinterpret_cast<ExitChannelHeader*>(mapping_.get());
    slots_ = reinterpret_cast<ExitSlot*>(mapping_.bytes() + HeaderSize());
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitChannel> ExitChannel::Create(uint32_t slots) {
  if (slots == 0 || slots > kMaxChannelSlots) {
    return absl::InvalidArgumentError(absl::StrCat("exit channel: bad slot count ", slots));
  }
  ExitChannel channel;
  channel.slot_count_ = slots;
  channel.memfd_.Reset(memfd_create("rehome-exit-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!channel.memfd_.valid()) return LastErrnoStatus("memfd_create exit channel");
  const size_t size = SizeFor(slots);
  if (ftruncate(channel.memfd_.get(), static_cast<off_t>(size)) != 0) {
    return LastErrnoStatus("ftruncate exit channel");
  }
  // The L1 holds this fd: it must not shrink the memfd under L0's mapping (SIGBUS in L0).
  if (fcntl(channel.memfd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return LastErrnoStatus("sealing exit channel");
  }
  ASSIGN_OR_RETURN(channel.request_efd_, NewEventFd());
  ASSIGN_OR_RETURN(channel.ack_efd_, NewEventFd());
  for (uint32_t i = 0; i < slots; ++i) {
    ASSIGN_OR_RETURN(UniqueFd fd, NewEventFd());
    channel.response_efds_.push_back(std::move(fd));
  }
  RETURN_IF_ERROR(channel.Map(size, /*initialise=*/true));
  return channel;
}

absl::StatusOr<ExitChannel> ExitChannel::Attach(int memfd, int request_eventfd, int ack_eventfd,
                                                std::vector<int> response_eventfds) {
  ExitChannel channel;
  channel.memfd_.Reset(memfd);
  channel.request_efd_.Reset(request_eventfd);
  channel.ack_efd_.Reset(ack_eventfd);
  for (int fd : response_eventfds) channel.response_efds_.emplace_back(fd);
  struct stat st {};
  if (fstat(memfd, &st) != 0) return LastErrnoStatus("fstat exit channel");
  if (static_cast<size_t>(st.st_size) < HeaderSize()) {
    return absl::InvalidArgumentError("exit channel: memfd too small");
  }
  channel.slot_count_ = static_cast<uint32_t>(response_eventfds.size());
  if (static_cast<size_t>(st.st_size) != SizeFor(channel.slot_count_)) {
    return absl::InvalidArgumentError("exit channel: size does not match the slot count");
  }
  RETURN_IF_ERROR(channel.Map(static_cast<size_t>(st.st_size), /*initialise=*/false));
  if (channel.header_->magic != kExitChannelMagic ||
      channel.header_->version != kExitChannelVersion ||
      channel.header_->slot_count != channel.slot_count_) {
    return absl::InvalidArgumentError("exit channel: bad magic, version or slot count");
  }
  return channel;
}

void ExitChannel::SignalRequest() const {
  const uint64_t one = 1;
  (void)!write(request_efd_.get(), &one, sizeof(one));
}

void ExitChannel::SignalResponse(uint32_t slot) const {
  const uint64_t one = 1;
  (void)!write(response_efds_[slot].get(), &one, sizeof(one));
}

void ExitChannel::SignalAck() const {
  const uint64_t one = 1;
  (void)!write(ack_efd_.get(), &one, sizeof(one));
}

void ExitChannel::WakeL1IfSleeping() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeL1IfSeenSleeping();
}

void ExitChannel::WakeL1IfSeenSleeping() const {
  const uint32_t state = header_->l1_sleeping.load(std::memory_order_relaxed);
  if (state == kL1Awake) return;
  if (state == kL1AsleepRaiseMe && l1_thread_ > 0) {
    const sched_param fifo{.sched_priority = 1};
    (void)sched_setscheduler(l1_thread_, SCHED_FIFO, &fifo);  // before the wake-up it speeds
  }
  SignalRequest();
}

void ExitChannel::WakeL1ForControl() const {
  if (header_->l1_sleeping.load(std::memory_order_relaxed) == kL1AsleepRaiseMe && l1_thread_ > 0) {
    const sched_param fifo{.sched_priority = 1};
    (void)sched_setscheduler(l1_thread_, SCHED_FIFO, &fifo);
  }
  SignalRequest();
}

void ExitChannel::WakeL0IfSleeping(uint32_t slot) const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (slots_[slot].l0_sleeping.load(std::memory_order_relaxed) != 0) SignalResponse(slot);
}

void ExitChannel::SetL1Sleeping(uint32_t state) const {
  header_->l1_sleeping.store(state, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void ExitChannel::SetL0Sleeping(uint32_t slot, bool sleeping) const {
  slots_[slot].l0_sleeping.store(sleeping ? 1 : 0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void ExitChannel::Drain(int eventfd) {
  uint64_t value = 0;
  (void)!read(eventfd, &value, sizeof(value));
}

std::string ExitChannel::ReportedFailure() const {
  const uint32_t len = header_->failure_len.load(std::memory_order_acquire);
  if (len == 0) return "";
  char copy[kExitReasonMax];  // read the L1's bytes once
  const uint32_t n = std::min<uint32_t>(len, kExitReasonMax);
  std::memcpy(copy, header_->failure, n);
  return PrintableL1Text(std::string_view(copy, n));
}

std::string PrintableL1Text(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::string SandboxLayerNames(uint32_t layers) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {kLayerSeccomp, "seccomp"},
      {kLayerNoNewPrivs, "no_new_privs"},
      {kLayerNoCapabilities, "capabilities dropped"},
      {kLayerUnprivilegedId, "unprivileged uid/gid"},
      {kLayerUserNamespace, "user namespace"},
      {kLayerMountNamespace, "mount namespace"},
      {kLayerEmptyRoot, "empty root"},
      {kLayerPidNamespace, "pid namespace"},
      {kLayerNetNamespace, "net namespace"},
      {kLayerIpcNamespace, "ipc namespace"},
      {kLayerUtsNamespace, "uts namespace"},
      {kLayerRlimits, "rlimits"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((layers & bit) != 0) absl::StrAppend(&out, out.empty() ? "" : ", ", name);
  }
  return out.empty() ? "none" : out;
}

}  // namespace rehome
