// vmm/virtio/mmio_transport.cc: virtio-mmio register model, feature negotiation, notification
// and interrupt handling, DEVICE_NEEDS_RESET, and the transport state record.
#include "vmm/virtio/mmio_transport.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "vmm/state_codec.h"

namespace rehome::virtio {
namespace {

constexpr uint8_t kStateVersion = 1;
constexpr uint32_t kMaxLastError = 4096;
constexpr uint32_t kMaxDeviceState = 1u << 20;

std::string DeviceName(uint32_t id) {
  switch (id) {
    case kDeviceIdBlock:
      return "virtio-mmio-blk";
    case kDeviceIdConsole:
      return "virtio-mmio-console";
    case kDeviceIdNet:
      return "virtio-mmio-net";
    default:
      return absl::StrCat("virtio-mmio-", id);
  }
}

uint64_t SetHalf(uint64_t v, bool high, uint32_t half) {
  return high ? (v & 0xffffffffull) | (uint64_t{half} << 32)
              : (v & ~0xffffffffull) | uint64_t{half};
}

}  // namespace

MmioTransport::MmioTransport(std::unique_ptr<VirtioDevice> device, const GuestMemoryView& mem,
                             IrqHook irq, LogSink log)
    : device_(std::move(device)),
      mem_(mem),
      irq_(std::move(irq)),
      log_(std::move(log)),
      name_(DeviceName(device_->device_id())) {
  absl::MutexLock lock(&mu_);
  queues_.resize(static_cast<size_t>(device_->queue_count()));
}

std::string MmioTransport::name() const { return name_; }

uint64_t MmioTransport::OfferedFeatures() const {
  const uint64_t not_offered =
      (uint64_t{1} << kFeatureIndirectDesc) | (uint64_t{1} << kFeatureEventIdx);
  return (device_->device_features() & ~not_offered) | (uint64_t{1} << kFeatureVersion1);
}

void MmioTransport::Read(uint64_t offset, std::span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  std::fill(data.begin(), data.end(), 0);  // (a zero-length span may have no data pointer)
  const size_t n = data.size();
  if (offset >= kConfigOffset) {
    if ((n == 1 || n == 2 || n == 4 || n == 8) && offset % n == 0 && offset + n <= kMmioSize) {
      device_->ReadConfig(offset - kConfigOffset, data);
    } else {
      LogIgnored(absl::StrCat("config read of ", n, " bytes at 0x", absl::Hex(offset)));
    }
    return;
  }
  if (n != 4 || offset % 4 != 0) {
    LogIgnored(absl::StrCat("register read of ", n, " bytes at 0x", absl::Hex(offset)));
    return;
  }
  const uint32_t v = ReadRegister(offset);
  std::memcpy(data.data(), &v, 4);
}

void MmioTransport::Write(uint64_t offset, std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  const size_t n = data.size();
  if (offset >= kConfigOffset) {
    if ((n == 1 || n == 2 || n == 4 || n == 8) && offset % n == 0 && offset + n <= kMmioSize) {
      device_->WriteConfig(offset - kConfigOffset, data);
    } else {
      LogIgnored(absl::StrCat("config write of ", n, " bytes at 0x", absl::Hex(offset)));
    }
    return;
  }
  if (n != 4 || offset % 4 != 0) {
    LogIgnored(absl::StrCat("register write of ", n, " bytes at 0x", absl::Hex(offset)));
    return;
  }
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  WriteRegister(offset, v);
}

Virtqueue* MmioTransport::SelectedQueue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  Virtqueue* q = SelectedQueue();
  const Virtqueue::State qs = q ? q->SaveState() : Virtqueue::State{};
  switch (offset) {
    case kRegMagic:
      return kMagic;
    case kRegVersion:
      return kVersion;
    case kRegDeviceId:
      return device_->device_id();
    case kRegVendorId:
      return kVendorId;
    case kRegDeviceFeatures:
      return device_features_sel_ < 2
                 ? static_cast<uint32_t>(OfferedFeatures() >> (32 * device_features_sel_))
                 : 0;
    case kRegQueueNumMax:
      return q ? Virtqueue::kMaxSize : 0;
    case kRegQueueNum:
      return qs.size;
    case kRegQueueReady:
      return qs.ready ? 1 : 0;
    case kRegInterruptStatus:
      return interrupt_status_;
    case kRegStatus:
      return status_;
    case kRegQueueDescLow:
      return static_cast<uint32_t>(qs.desc_gpa);
    case kRegQueueDescHigh:
      return static_cast<uint32_t>(qs.desc_gpa >> 32);
    case kRegQueueDriverLow:
      return static_cast<uint32_t>(qs.avail_gpa);
    case kRegQueueDriverHigh:
      return static_cast<uint32_t>(qs.avail_gpa >> 32);
    case kRegQueueDeviceLow:
      return static_cast<uint32_t>(qs.used_gpa);
    case kRegQueueDeviceHigh:
      return static_cast<uint32_t>(qs.used_gpa >> 32);
    case kRegConfigGeneration:
      return config_generation_;
    case kRegDeviceFeaturesSel:
    case kRegDriverFeatures:
    case kRegDriverFeaturesSel:
    case kRegQueueSel:
    case kRegQueueNotify:
    case kRegInterruptAck:
      return 0;  // write-only
    default:
      LogIgnored(absl::StrCat("read of unknown register 0x", absl::Hex(offset)));
      return 0;
  }
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  switch (offset) {
    case kRegDeviceFeaturesSel:
      device_features_sel_ = value;
      return;
    case kRegDriverFeatures:
      if (status_ & kStatusFeaturesOk) {
        LogIgnored("DriverFeatures written after FEATURES_OK");
      } else if (driver_features_sel_ < 2) {
        driver_features_ = SetHalf(driver_features_, driver_features_sel_ == 1, value);
      }
      return;
    case kRegDriverFeaturesSel:
      driver_features_sel_ = value;
      return;
    case kRegQueueSel:
      queue_sel_ = value;
      return;
    case kRegQueueNum: {
      Virtqueue* q = SelectedQueue();
      if (q == nullptr) {
        LogIgnored(absl::StrCat("QueueNum for nonexistent queue ", queue_sel_));
      } else if (value > Virtqueue::kMaxSize) {
        LogIgnored(absl::StrCat("QueueNum ", value, " > QueueNumMax for queue ", queue_sel_));
      } else if (!q->set_size(static_cast<uint16_t>(value)).ok()) {
        LogIgnored(absl::StrCat("QueueNum written while queue ", queue_sel_, " is ready"));
      }
      return;
    }
    case kRegQueueReady: {
      Virtqueue* q = SelectedQueue();
      if (q == nullptr) {
        LogIgnored(absl::StrCat("QueueReady for nonexistent queue ", queue_sel_));
      } else if (value == 0) {
        q->Disable();
      } else if (absl::Status s = q->Enable(mem_); !s.ok()) {
        EnterNeedsReset(absl::StrCat("queue ", queue_sel_, ": ", s.message()));
      }
      return;
    }
    case kRegQueueNotify:
      ProcessLocked(value, /*from_guest=*/true);
      return;
    case kRegInterruptAck:
      interrupt_status_ &= ~value;
      UpdateIrq(/*force=*/false);
      return;
    case kRegStatus:
      WriteStatus(value);
      return;
    case kRegQueueDescLow:
    case kRegQueueDescHigh:
    case kRegQueueDriverLow:
    case kRegQueueDriverHigh:
    case kRegQueueDeviceLow:
    case kRegQueueDeviceHigh:
      WriteQueueAddress(offset, value);
      return;
    default:
      LogIgnored(absl::StrCat("write of 0x", absl::Hex(value),
                              " to read-only or unknown register 0x", absl::Hex(offset)));
      return;
  }
}

void MmioTransport::WriteQueueAddress(uint64_t offset, uint32_t value) {
  Virtqueue* q = SelectedQueue();
  if (q == nullptr) {
    LogIgnored(absl::StrCat("queue address for nonexistent queue ", queue_sel_));
    return;
  }
  const Virtqueue::State s = q->SaveState();
  const bool high = (offset & 4) != 0;
  absl::Status st;
  if (offset <= kRegQueueDescHigh) {
    st = q->set_desc_gpa(SetHalf(s.desc_gpa, high, value));
  } else if (offset <= kRegQueueDriverHigh) {
    st = q->set_avail_gpa(SetHalf(s.avail_gpa, high, value));
  } else {
    st = q->set_used_gpa(SetHalf(s.used_gpa, high, value));
  }
  if (!st.ok()) {
    LogIgnored(absl::StrCat("queue address written while queue ", queue_sel_, " is ready"));
  }
}

void MmioTransport::WriteStatus(uint32_t value) {
  value &= 0xff;
  if (value == 0) {
    ResetLocked();
    return;
  }
  if ((value & kStatusFeaturesOk) && !(status_ & kStatusFeaturesOk)) {
    const uint64_t extra = driver_features_ & ~OfferedFeatures();
    if (extra != 0) {
      LogIgnored(absl::StrCat("FEATURES_OK refused: driver accepted unoffered features 0x",
                              absl::Hex(extra)));
      value &= ~kStatusFeaturesOk;
    } else if (!(driver_features_ & (uint64_t{1} << kFeatureVersion1))) {
      LogIgnored("FEATURES_OK refused: the driver did not accept VIRTIO_F_VERSION_1 (legacy)");
      value &= ~kStatusFeaturesOk;
    }
  }
  if ((value & kStatusDriverOk) && !(value & kStatusFeaturesOk)) {
    LogIgnored("DRIVER_OK refused: FEATURES_OK is not set");
    value &= ~kStatusDriverOk;
  }
  status_ = (value & ~kStatusNeedsReset) | (status_ & kStatusNeedsReset);
}

void MmioTransport::ResetLocked() {
  status_ = 0;
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  driver_features_ = 0;
  queue_sel_ = 0;
  interrupt_status_ = 0;
  for (Virtqueue& q : queues_) q.Reset();
  device_->Reset();
  UpdateIrq(/*force=*/false);
}

bool MmioTransport::Kick(int queue) {
  absl::MutexLock lock(&mu_);
  if (queue < 0 || static_cast<size_t>(queue) >= queues_.size()) return false;
  const uint16_t before = queues_[queue].SaveState().last_avail_idx;
  const uint32_t status_before = status_;
  ProcessLocked(static_cast<uint32_t>(queue), /*from_guest=*/false);
  return queues_[queue].SaveState().last_avail_idx != before || status_ != status_before;
}

bool MmioTransport::HasAvailable(int queue) const {
  absl::MutexLock lock(&mu_);
  if ((status_ & kStatusNeedsReset) || !(status_ & kStatusDriverOk)) return false;
  if (queue < 0 || static_cast<size_t>(queue) >= queues_.size()) return false;
  return queues_[queue].HasAvailable(mem_);
}

void MmioTransport::AppendAvailIndexAddresses(std::vector<AvailIndexAddress>* out) const {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (queues_[i].ready()) {
      out->push_back(
          {queues_[i].avail_index_gpa(), device_->TakesBuffersUnprompted(static_cast<int>(i))});
    }
  }
}

void MmioTransport::SetDeferredPublication(bool deferred) {
  absl::MutexLock lock(&mu_);
  deferred_publication_ = deferred;
  for (Virtqueue& vq : queues_) vq.set_deferred_publication(deferred);
}

void MmioTransport::PublishUsed() {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (absl::Status s = queues_[i].PublishUsed(mem_); !s.ok()) {
      EnterNeedsReset(absl::StrCat("queue ", i, ": ", s.message()));
    }
  }
  UpdateIrq(/*force=*/false);
}

void MmioTransport::ProcessLocked(uint32_t queue, bool from_guest) {
  if (status_ & kStatusNeedsReset) return;
  if (!(status_ & kStatusDriverOk)) {
    if (from_guest) LogIgnored(absl::StrCat("QueueNotify ", queue, " before DRIVER_OK"));
    return;
  }
  if (queue >= queues_.size() || !queues_[queue].ready()) {
    if (from_guest) LogIgnored(absl::StrCat("QueueNotify for queue ", queue, " (not ready)"));
    return;
  }
  Virtqueue& vq = queues_[queue];
  const uint16_t used_before = vq.SaveState().used_idx;
  absl::StatusOr<bool> added = device_->ProcessQueue(static_cast<int>(queue), vq, mem_);
  const bool pushed = vq.SaveState().used_idx != used_before;
  if (added.ok() ? (*added || pushed) : pushed) interrupt_status_ |= kInterruptUsedBuffer;
  if (!added.ok()) {
    EnterNeedsReset(absl::StrCat("queue ", queue, ": ", added.status().message()));
  }
  // Deferred: the used-buffer interrupt goes with the publication of the used idx.
  if (!deferred_publication_) UpdateIrq(/*force=*/false);
}

void MmioTransport::EnterNeedsReset(std::string reason) {
  status_ |= kStatusNeedsReset;
  if (log_) log_(absl::StrCat(name_, ": device needs reset: ", reason));
  last_error_ = std::move(reason);
  if (status_ & kStatusDriverOk) interrupt_status_ |= kInterruptConfigChange;
  UpdateIrq(/*force=*/false);
}

void MmioTransport::UpdateIrq(bool force) {
  const bool level = interrupt_status_ != 0;
  if (level == irq_level_ && !force) return;
  irq_level_ = level;
  if (irq_) irq_(level);
}

void MmioTransport::LogIgnored(std::string_view what) {
  const uint64_t count = ++ignored_accesses_;
  if (!log_) return;
  if (count <= kLogFirstIgnored || std::has_single_bit(count)) {
    log_(absl::StrCat(name_, ": ignored ", std::string(what), " (", count, " ignored so far)"));
  }
}

uint32_t MmioTransport::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

uint32_t MmioTransport::interrupt_status() const {
  absl::MutexLock lock(&mu_);
  return interrupt_status_;
}

bool MmioTransport::irq_level() const {
  absl::MutexLock lock(&mu_);
  return irq_level_;
}

std::string MmioTransport::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

uint64_t MmioTransport::ignored_accesses() const {
  absl::MutexLock lock(&mu_);
  return ignored_accesses_;
}

std::vector<uint8_t> MmioTransport::SaveState() const {
  absl::MutexLock lock(&mu_);
  State s;
  s.device_id = device_->device_id();
  s.status = status_;
  s.device_features_sel = device_features_sel_;
  s.driver_features_sel = driver_features_sel_;
  s.driver_features = driver_features_;
  s.queue_sel = queue_sel_;
  s.interrupt_status = interrupt_status_;
  s.config_generation = config_generation_;
  s.last_error = last_error_.substr(0, kMaxLastError);
  for (const Virtqueue& q : queues_) s.queues.push_back(q.SaveState());
  s.device_state = device_->SaveState();
  return EncodeState(s);
}

absl::Status MmioTransport::RestoreState(std::span<const uint8_t> bytes) {
  ASSIGN_OR_RETURN(State s, DecodeState(bytes));
  absl::MutexLock lock(&mu_);
  if (s.device_id != device_->device_id()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " state: device id ", s.device_id,
                                                   " does not match ", device_->device_id()));
  }
  if (s.queues.size() != queues_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " state: ", s.queues.size(),
                                                   " queues, the device has ", queues_.size()));
  }
  if (s.status > 0xff || (s.interrupt_status & ~uint32_t{3}) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name_, " state: bad status 0x",
                                                   absl::Hex(s.status), " or interrupt status 0x",
                                                   absl::Hex(s.interrupt_status)));
  }
  std::vector<Virtqueue> restored(queues_.size());
  for (size_t i = 0; i < restored.size(); ++i) {
    if (absl::Status st = restored[i].RestoreState(s.queues[i], mem_); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(name_, " state: queue ", i, ": ", st.message()));
    }
  }
  RETURN_IF_ERROR(device_->RestoreState(s.device_state));
  for (Virtqueue& vq : restored) vq.set_deferred_publication(deferred_publication_);
  queues_ = std::move(restored);
  status_ = s.status;
  device_features_sel_ = s.device_features_sel;
  driver_features_sel_ = s.driver_features_sel;
  driver_features_ = s.driver_features;
  queue_sel_ = s.queue_sel;
  interrupt_status_ = s.interrupt_status;
  config_generation_ = s.config_generation;
  last_error_ = std::move(s.last_error);
  UpdateIrq(/*force=*/true);
  return absl::OkStatus();
}

std::vector<uint8_t> MmioTransport::EncodeState(const State& s) {
  StateWriter w(kStateVersion);
  w.U32(s.device_id);
  w.U32(s.status);
  w.U32(s.device_features_sel);
  w.U32(s.driver_features_sel);
  w.U64(s.driver_features);
  w.U32(s.queue_sel);
  w.U32(s.interrupt_status);
  w.U32(s.config_generation);
  w.Bytes(s.last_error);
  w.U32(static_cast<uint32_t>(s.queues.size()));
  for (const Virtqueue::State& q : s.queues) Virtqueue::EncodeState(q, w);
  w.Bytes(std::string_view(reinterpret_cast<const char*>(s.device_state.data()),
                           s.device_state.size()));
  return w.Finish();
}

absl::StatusOr<MmioTransport::State> MmioTransport::DecodeState(std::span<const uint8_t> bytes) {
  StateReader r(bytes, "virtio-mmio");
  RETURN_IF_ERROR(r.ExpectVersion(kStateVersion));
  State s;
  s.device_id = r.U32();
  s.status = r.U32();
  s.device_features_sel = r.U32();
  s.driver_features_sel = r.U32();
  s.driver_features = r.U64();
  s.queue_sel = r.U32();
  s.interrupt_status = r.U32();
  s.config_generation = r.U32();
  s.last_error = r.Bytes(kMaxLastError);
  const uint32_t count = r.U32();
  constexpr uint32_t kMaxQueues = 64;
  if (count > kMaxQueues) {
    r.Fail(absl::StrCat(count, " queues (max ", kMaxQueues, ")"));
  } else {
    for (uint32_t i = 0; i < count; ++i) s.queues.push_back(Virtqueue::DecodeState(r));
  }
  const std::string device = r.Bytes(kMaxDeviceState);
  s.device_state.assign(device.begin(), device.end());
  RETURN_IF_ERROR(r.Finish());
  return s;
}

}  // namespace rehome::virtio
