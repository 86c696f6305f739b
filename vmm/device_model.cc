// vmm/device_model.cc: DeviceModel.
#include "vmm/device_model.h"

#include <string>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "guest/abi/rehome_abi.h"
#include "vmm/devices/counter_report_port.h"
#include "vmm/devices/power_off_port.h"
#include "vmm/devices/pvpanic_port.h"
#include "vmm/devices/reset_port.h"
#include "vmm/state_codec.h"
#include "vmm/virtio/blk_device.h"
#include "vmm/virtio/console_device.h"

namespace rehome {
namespace {

constexpr uint32_t kMaxSectionBytes = 64u << 20;

std::string_view AsChars(const std::vector<uint8_t>& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

std::string VirtioMmioCmdlineEntry(int index) {
  return absl::StrFormat("virtio_mmio.device=512@0x%x:%u",
                         kVirtioMmioBase + index * kVirtioMmioStride, kVirtioFirstIrq + index);
}

VirtioIndices VirtioDeviceIndices(bool disk, bool console, bool net) {
  VirtioIndices indices;
  int next = 0;
  if (disk) indices.disk = next++;
  if (console) indices.console = next++;
  if (net) indices.net = next++;
  return indices;
}

std::string VirtioMmioCmdline(bool disk, bool console, bool net) {
  std::string out;
  const VirtioIndices indices = VirtioDeviceIndices(disk, console, net);
  for (int index : {indices.disk, indices.console, indices.net}) {
    if (index >= 0) out += (out.empty() ? "" : " ") + VirtioMmioCmdlineEntry(index);
  }
  return out;
}

void DeviceModel::SetDeferredPublication(bool deferred) {
  for (virtio::MmioTransport* t : {disk_.get(), console_.get(), net_.get()}) {
    if (t != nullptr) t->SetDeferredPublication(deferred);
  }
}

void DeviceModel::PublishUsed() {
  for (virtio::MmioTransport* t : {disk_.get(), console_.get(), net_.get()}) {
    if (t != nullptr) t->PublishUsed();
  }
}

bool DeviceModel::KickDisk() { return disk_ != nullptr && disk_->Kick(0); }

bool DeviceModel::KickConsole() {
  if (console_ == nullptr) return false;
  const bool rx = console_->Kick(0);
  const bool tx = console_->Kick(1);
  return rx || tx;
}

uint64_t DeviceModel::console_tx_bytes() const {
  if (console_ == nullptr) return 0;
  return static_cast<const virtio::ConsoleDevice&>(console_->device()).tx_bytes();
}

bool DeviceModel::KickNet() {
  if (net_ == nullptr) return false;
  const bool rx = net_->Kick(virtio::NetDevice::kReceiveQueue);
  const bool tx = net_->Kick(virtio::NetDevice::kTransmitQueue);
  return rx || tx;
}

bool DeviceModel::NetTransmitAvailable() const {
  return net_ != nullptr && net_->HasAvailable(virtio::NetDevice::kTransmitQueue);
}

bool DeviceModel::DiskRequestAvailable() const {
  return disk_ != nullptr && disk_->HasAvailable(0);
}

std::vector<virtio::AvailIndexAddress> DeviceModel::AvailIndexAddresses() const {
  std::vector<virtio::AvailIndexAddress> out;
  for (const virtio::MmioTransport* t : {disk_.get(), console_.get(), net_.get()}) {
    if (t != nullptr) t->AppendAvailIndexAddresses(&out);
  }
  return out;
}

uint64_t DeviceModel::net_rx_frames() const {
  if (net_ == nullptr) return 0;
  return static_cast<const virtio::NetDevice&>(net_->device()).rx_frames();
}

uint64_t DeviceModel::net_tx_frames() const {
  if (net_ == nullptr) return 0;
  return static_cast<const virtio::NetDevice&>(net_->device()).tx_frames();
}

size_t DeviceModel::QueueConsoleInput(std::string_view bytes) {
  if (console_ == nullptr) return 0;
  const size_t accepted = static_cast<virtio::ConsoleDevice&>(console_->device()).QueueInput(bytes);
  console_->Kick(0);
  return accepted;
}

absl::StatusOr<std::unique_ptr<DeviceModel>> DeviceModel::Create(DeviceModelConfig config,
                                                                 const GuestMemoryView& ram) {
  std::unique_ptr<DeviceModel> model(new DeviceModel());
  model->requests_ = std::make_shared<VmRequests>();
  model->serial_ =
      std::make_shared<Serial8250>(std::move(config.serial_output), std::move(config.serial_irq));
  model->debug_exit_ = std::make_shared<DebugExitPort>(model->requests_);
  model->pio_bench_ = std::make_shared<PioBenchPort>();
  Bus& bus = model->bus_;
  RETURN_IF_ERROR(
      bus.Register(BusSpace::kPio, abi::kCom1Port, Serial8250::kPortCount, model->serial_));
  RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kDebugExitPort, DebugExitPort::kPortCount,
                               model->debug_exit_));
  RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kResetPort, ResetPort::kPortCount,
                               std::make_shared<ResetPort>(model->requests_)));
  RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kPowerOffPort, PowerOffPort::kPortCount,
                               std::make_shared<PowerOffPort>(model->requests_)));
  RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kPvPanicPort, PvPanicPort::kPortCount,
                               std::make_shared<PvPanicPort>(model->requests_)));
  RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kPioBenchPort, PioBenchPort::kPortCount,
                               model->pio_bench_));
  if (config.oracle.has_value()) {
    ASSIGN_OR_RETURN(std::unique_ptr<CounterOracle> oracle, CounterOracle::Create(*config.oracle));
    model->oracle_ = std::move(oracle);
    if (config.progress) model->oracle_->SetProgressHook(config.progress);
    RETURN_IF_ERROR(bus.Register(BusSpace::kPio, abi::kCounterReportPort,
                                 CounterReportPort::kPortCount,
                                 std::make_shared<CounterReportPort>(ram, model->oracle_)));
  }
  if (config.disk.valid()) {
    ASSIGN_OR_RETURN(std::unique_ptr<virtio::BlkDevice> blk,
                     virtio::BlkDevice::Create(std::move(config.disk), config.disk_read_only,
                                               "rehome-disk0", config.disk_capture));
    auto irq = config.virtio_irq;
    model->disk_ = std::make_shared<virtio::MmioTransport>(
        std::move(blk), ram,
        [irq](bool level) {
          if (irq) irq(kVirtioFirstIrq, level);
        },
        config.log ? config.log : [](std::string_view) {});
    RETURN_IF_ERROR(bus.Register(BusSpace::kMmio, kVirtioMmioBase, virtio::MmioTransport::kMmioSize,
                                 model->disk_));
  }
  if (config.console) {
    const int index = model->disk_ != nullptr ? 1 : 0;
    auto irq = config.virtio_irq;
    auto sink = config.console_output;
    model->console_ = std::make_shared<virtio::MmioTransport>(
        std::make_unique<virtio::ConsoleDevice>([sink](std::string_view bytes) {
          if (sink) sink(bytes);
        }),
        ram,
        [irq, index](bool level) {
          if (irq) irq(kVirtioFirstIrq + index, level);
        },
        config.log ? config.log : [](std::string_view) {});
    RETURN_IF_ERROR(bus.Register(BusSpace::kMmio, kVirtioMmioBase + index * kVirtioMmioStride,
                                 virtio::MmioTransport::kMmioSize, model->console_));
  }
  if (config.net_backend != nullptr) {
    const int index =
        VirtioDeviceIndices(model->disk_ != nullptr, model->console_ != nullptr, true).net;
    auto irq = config.virtio_irq;
    model->net_ = std::make_shared<virtio::MmioTransport>(
        std::make_unique<virtio::NetDevice>(config.net_mac, config.net_backend), ram,
        [irq, index](bool level) {
          if (irq) irq(kVirtioFirstIrq + index, level);
        },
        config.log ? config.log : [](std::string_view) {});
    RETURN_IF_ERROR(bus.Register(BusSpace::kMmio, kVirtioMmioBase + index * kVirtioMmioStride,
                                 virtio::MmioTransport::kMmioSize, model->net_));
  }
  return model;
}

ExitOutcome DeviceModel::Handle(KvmExit& exit) {
  ExitOutcome outcome = DispatchExit(exit, bus_, *requests_);
  if (oracle_ == nullptr) return outcome;
  if (outcome.action == ExitOutcome::kContinue && oracle_->violation_count() != 0) {
    outcome.action = ExitOutcome::kCheckFailed;
    outcome.reason = oracle_->violation().value_or("counter oracle violation");
  } else if (outcome.action == ExitOutcome::kGuestExit && outcome.exit_status == 0) {
    // The guest claims success: every vCPU's final report must have been verified.
    if (absl::Status complete = oracle_->CheckCompleteAtExit(); !complete.ok()) {
      outcome.action = ExitOutcome::kCheckFailed;
      outcome.reason = std::string(complete.message());
    }
  }
  return outcome;
}

std::vector<uint8_t> DeviceModel::SaveState() const {
  std::vector<uint8_t> bytes;
  SaveStateInto(&bytes);
  return bytes;
}

void DeviceModel::SaveStateInto(std::vector<uint8_t>* out) const {
  StateWriter writer(kDeviceModelStateVersion, std::move(*out));
  writer.Bytes(AsChars(Serial8250::EncodeState(serial_->SaveState())));
  writer.Bytes(AsChars(DebugExitPort::EncodeState(debug_exit_->SaveState())));
  writer.U64(pio_bench_->writes());
  writer.U8(oracle_ != nullptr ? 1 : 0);
  if (oracle_ != nullptr) {
    // The oracle's state (a whole hash chain per vCPU) changes only when a report is verified
    // or refused, and the split L1 commits after every exit: re-encode only on change.
    const uint64_t key[2] = {oracle_->verified_reports(), oracle_->violation_count()};
    if (!oracle_blob_valid_ || key[0] != oracle_key_[0] || key[1] != oracle_key_[1]) {
      oracle_blob_ = CounterOracle::EncodeState(oracle_->SaveState());
      oracle_key_[0] = key[0];
      oracle_key_[1] = key[1];
      oracle_blob_valid_ = true;
    }
    writer.Bytes(AsChars(oracle_blob_));
  }
  writer.U8(disk_ != nullptr ? 1 : 0);
  if (disk_ != nullptr) writer.Bytes(AsChars(disk_->SaveState()));
  writer.U8(console_ != nullptr ? 1 : 0);
  if (console_ != nullptr) writer.Bytes(AsChars(console_->SaveState()));
  writer.U8(net_ != nullptr ? 1 : 0);
  if (net_ != nullptr) writer.Bytes(AsChars(net_->SaveState()));
  *out = writer.Finish();
}

absl::Status DeviceModel::RestoreState(std::span<const uint8_t> bytes) {
  StateReader reader(bytes, "device model");
  RETURN_IF_ERROR(reader.ExpectVersion(kDeviceModelStateVersion));
  // Views into `bytes`, not copies: the oracle's section alone is 32 KiB per vCPU.
  const std::span<const uint8_t> serial_bytes = reader.View(kMaxSectionBytes);
  const std::span<const uint8_t> debug_bytes = reader.View(kMaxSectionBytes);
  const uint64_t pio_writes = reader.U64();
  const bool has_oracle = reader.Bool();
  std::span<const uint8_t> oracle_bytes;
  if (has_oracle) oracle_bytes = reader.View(kMaxSectionBytes);
  const bool has_disk = reader.Bool();
  std::span<const uint8_t> disk_bytes;
  if (has_disk) disk_bytes = reader.View(kMaxSectionBytes);
  const bool has_console = reader.Bool();
  std::span<const uint8_t> console_bytes;
  if (has_console) console_bytes = reader.View(kMaxSectionBytes);
  const bool has_net = reader.Bool();
  std::span<const uint8_t> net_bytes;
  if (has_net) net_bytes = reader.View(kMaxSectionBytes);
  RETURN_IF_ERROR(reader.Finish());
  if (has_net != (net_ != nullptr)) {
    return absl::InvalidArgumentError("device model state: network device presence does not match");
  }
  if (has_console != (console_ != nullptr)) {
    return absl::InvalidArgumentError("device model state: console presence does not match");
  }
  if (has_disk != (disk_ != nullptr)) {
    return absl::InvalidArgumentError("device model state: disk presence does not match");
  }
  if (has_oracle != (oracle_ != nullptr)) {
    return absl::InvalidArgumentError("device model state: oracle presence does not match");
  }
  // Decode everything before changing anything, so a bad blob leaves the model as it was.
  ASSIGN_OR_RETURN(Serial8250::State serial, Serial8250::DecodeState(serial_bytes));
  ASSIGN_OR_RETURN(DebugExitPort::State debug, DebugExitPort::DecodeState(debug_bytes));
  std::optional<CounterOracle::State> oracle;
  if (has_oracle) {
    ASSIGN_OR_RETURN(oracle, CounterOracle::DecodeState(oracle_bytes));
  }
  if (has_disk) RETURN_IF_ERROR(disk_->RestoreState(disk_bytes));  // all or nothing
  if (has_console) RETURN_IF_ERROR(console_->RestoreState(console_bytes));
  if (has_net) RETURN_IF_ERROR(net_->RestoreState(net_bytes));
  oracle_blob_valid_ = false;
  if (oracle.has_value()) RETURN_IF_ERROR(oracle_->RestoreState(*oracle));
  RETURN_IF_ERROR(serial_->RestoreState(serial));
  debug_exit_->RestoreState(debug);
  pio_bench_->RestoreWrites(pio_writes);
  requests_->Clear();
  return absl::OkStatus();
}

}  // namespace rehome
