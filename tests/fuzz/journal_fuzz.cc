// tests/fuzz/journal_fuzz.cc: libFuzzer target for reading the commit journal
// (state-extract/device_journal.h), the commit record in it (vmm/l1/commit_record.h) and the
// device model state inside that (vmm/device_model.h): what L0 and a promoted standby L1 read
// from the journal an active L1 wrote, and a compromised L1 may have forged.
//
// Input: the device model's shape (disk, console, counter oracle and its vCPU count), then
// either a payload the harness commits properly (a forging L1 computes the journal's CRC too)
// or raw bytes scribbled over the journal memfd at fuzzed offsets. Then: ReadCommitted ->
// DecodeCommitRecord -> each answer's response form -> DeviceModel::RestoreState. Checked: no
// memory error or UB; a record that decodes re-encodes to the same bytes; a restored device
// model saves a state that restores again.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kvm-l0/exit_channel.h"
#include "state-extract/device_journal.h"
#include "tests/fuzz/fuzz_util.h"
#include "vmm/device_model.h"
#include "vmm/guest_memory_view.h"
#include "vmm/l1/commit_record.h"

namespace {

using rehome::fuzz::Check;

using rehome::DeviceJournal;

constexpr uint64_t kCapacity = 256 << 10;

rehome::UniqueFd DiskImage() {
  rehome::UniqueFd fd(memfd_create("fuzz-disk", MFD_CLOEXEC));
  Check(fd.valid() && ftruncate(fd.get(), 64 * 512) == 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static std::vector<uint8_t>* ram = new std::vector<uint8_t>(64 << 10);
  rehome::FlatGuestMemoryView mem(*ram);

  rehome::DeviceModelConfig config;
  if (in.ConsumeBool()) config.disk = DiskImage();
  config.console = in.ConsumeBool();
  if (in.ConsumeBool()) {
    rehome::CounterOracle::Config oracle;
    oracle.cpus = in.ConsumeIntegralInRange(1u, 4u);
    config.oracle = oracle;
  }
  absl::StatusOr<std::unique_ptr<rehome::DeviceModel>> model =
      rehome::DeviceModel::Create(std::move(config), mem);
  Check(model.ok());

  absl::StatusOr<DeviceJournal> journal = DeviceJournal::Create(kCapacity);
  Check(journal.ok());
  if (in.ConsumeBool()) {
    const std::vector<uint8_t> payload = in.ConsumeRemainingBytes<uint8_t>();
    Check(journal->Commit(payload).ok() == (payload.size() <= kCapacity));
  } else {
    const bool commit_after = in.ConsumeBool();
    const size_t bytes = static_cast<size_t>(lseek(journal->memfd(), 0, SEEK_END));
    void* shared = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, journal->memfd(), 0);
    Check(shared != MAP_FAILED);
    while (in.remaining_bytes() > 0) {
      const size_t at = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(0, 127)
                                         : in.ConsumeIntegralInRange<size_t>(0, bytes - 1);
      const std::vector<uint8_t> chunk =
          in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, bytes - at));
      if (!chunk.empty())
        std::memcpy(static_cast<uint8_t*>(shared) + at, chunk.data(), chunk.size());
    }
    munmap(shared, bytes);
    // The next active L1 commits over whatever its predecessor left in the header.
    if (commit_after) Check(journal->Commit(std::vector<uint8_t>{1, 2, 3}).ok());
  }

  absl::StatusOr<std::string> committed = journal->ReadCommitted();
  if (!committed.ok()) return 0;
  Check(committed->size() <= kCapacity);
  absl::StatusOr<rehome::CommitRecord> record = rehome::DecodeCommitRecord(*committed);
  if (!record.ok()) return 0;
  const std::vector<uint8_t> again = rehome::EncodeCommitRecord(*record);
  Check(std::string(again.begin(), again.end()) == *committed);
  for (const rehome::CommittedAnswer& answer : record->last_answer) {
    auto response = std::make_unique<rehome::ExitResponse>();
    answer.ToResponse(response.get());
    Check(response->crc == rehome::ResponseCrc(*response));
  }
  if ((*model)->RestoreState(record->device_state).ok()) {
    const std::vector<uint8_t> saved = (*model)->SaveState();
    Check((*model)->RestoreState(saved).ok());
  }
  return 0;
}
