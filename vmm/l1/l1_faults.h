// vmm/l1/l1_faults.h: what the L1 does with one exit request (ExecuteExit: the device model's
// answer, with the console bytes it produced) and the faults an L1 injects into itself on
// request (docs/exit-channel.md, `L1Fault`): when an armed fault applies, a well-formed but
// wrong answer, a wrong but restorable device state. Thread-safety: the L1's main thread only.
#ifndef REHOME_VMM_L1_L1_FAULTS_H_
#define REHOME_VMM_L1_L1_FAULTS_H_

#include <cstdint>
#include <string>

#include "kvm-l0/exit_channel.h"
#include "vmm/device_model.h"
#include "vmm/l1/commit_record.h"

namespace rehome {

// Executes `req` (sequence number `seq`) in `model`. COM1 bytes the exit produced are taken from
// `serial_output` and virtio-console bytes from `console_output` (the model's sinks append to
// them; the caller clears them first). A request L0 could not have sent is answered kFatal.
CommittedAnswer ExecuteExit(DeviceModel& model, const ExitRequest& req, uint64_t seq,
                            std::string& serial_output, std::string& console_output);

// The fault armed for the exit `req` now starting: *pending once *skip exits have passed (a
// wrong-read-data fault waits for a read); it is then consumed. kNone otherwise.
L1Fault TakeArmedFault(L1Fault* pending, uint32_t* skip, const ExitRequest& req);

// Makes a well-formed answer wrong: kFailAnswer (a check failure that ends the VM),
// kWrongReadData (bit 0 of the first data byte of a read). Other faults: unchanged.
void ApplyAnswerFault(L1Fault fault, CommittedAnswer* answer);

// A wrong but well-formed device state (kWrongState): one bit of the saved state flipped, from
// the end of the encoding (the devices with the most state) backwards, at the first position
// where the result still restores.
void CorruptDeviceState(DeviceModel& model);

}  // namespace rehome

#endif  // REHOME_VMM_L1_L1_FAULTS_H_
