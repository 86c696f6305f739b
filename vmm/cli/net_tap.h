// vmm/cli/net_tap.h: the host side of virtio-net: a tap device that L0 opens and keeps (so it
// outlives every L1, as the console socket does), the two frame rings it shares with the device
// (kvm-l0/frame_ring.h), and a pump thread. The pump reads frames from the tap into the receive
// ring and kicks the device (split mode: an eventfd the active L1 polls; monolithic: a callback
// that processes the device's queues), and writes the transmit ring's published frames to the
// tap. Every position and length an L1 wrote is validated before use (CheckedPublished,
// CheckedConsumed, slot lengths); a frame from the tap longer than kFrameMaxBytes is dropped and
// counted. The tap must exist (libvirt's unmanaged ethernet interfaces: `ip tuntap add dev NAME
// mode tap`); Open never creates one.
// Thread-safety: DrainTx and stats may be called from any thread; Start/Stop from one.
#ifndef REHOME_VMM_CLI_NET_TAP_H_
#define REHOME_VMM_CLI_NET_TAP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "kvm-l0/frame_ring.h"

namespace rehome {

class NetTap final {
 public:
  struct Stats {
    uint64_t rx_frames = 0;     // read from the tap into the receive ring
    uint64_t rx_oversize = 0;   // read from the tap and dropped: longer than kFrameMaxBytes
    uint64_t tx_frames = 0;     // written to the tap
    uint64_t tx_errors = 0;     // a write to the tap failed (the frame is lost, as on a wire)
    uint64_t tx_malformed = 0;  // transmit slots with an impossible length (skipped)
    uint64_t ring_errors = 0;   // impossible positions an L1 published (ignored)
  };

  // Attaches to the existing tap `ifname` (IFF_TAP | IFF_NO_PI). One-line errors: NotFound (no
  // such interface), PermissionDenied (no right to attach), InvalidArgument (a bad name, not a
  // tap, or busy), Internal otherwise.
  static absl::StatusOr<std::unique_ptr<NetTap>> Open(const std::string& ifname);
  ~NetTap();  // Stop()
  NetTap(const NetTap&) = delete;
  NetTap& operator=(const NetTap&) = delete;

  FrameRing& rx_ring() { return rx_ring_; }
  FrameRing& tx_ring() { return tx_ring_; }
  int kick_fd() const { return kick_.get(); }  // L0 -> active L1 (split mode)
  int wake_fd() const { return wake_.get(); }  // active L1 -> L0: transmit frames published
  const std::string& ifname() const { return ifname_; }

  // Starts the pump. `kick` runs on the pump thread after it added received frames or freed
  // transmit slots of a full ring; null: write kick_fd() (split mode). `on_ring_error` runs on
  // the pump thread when the active L1 published an impossible position or slot (split mode:
  // fail it over); the position is ignored either way.
  // `rekick_waiting` (verified execution): while received frames wait undelivered, `kick` runs
  // again every millisecond (see Loop).
  void Start(std::function<void()> kick,
             std::function<void(const std::string&)> on_ring_error = nullptr,
             bool rekick_waiting = false);
  // Before Start: where the vCPU threads run (L1Supervisor::VcpuCpus); the pump thread keeps off
  // those CPUs when it wakes on one (base/cpu_avoidance.h). Unset: it runs where it is put.
  void AvoidCpusOf(std::function<uint32_t()> busy_cpus) { busy_cpus_ = std::move(busy_cpus); }
  void Stop();  // idempotent; joins the pump thread
  // Writes every published, not yet sent transmit frame to the tap, in order. True when it
  // freed slots of a full ring (the device may have stopped for room: kick it).
  bool DrainTx();
  Stats stats() const;

  // Verified execution (docs/failover.md): the transmit ring is unused; L0 applies the effects
  // its replicas agreed on. SendAgreed writes transmitted frame `pos` to the tap, refusing
  // (false) any position but the next one, so that every frame leaves once, in order.
  // AgreedConsumed frees the receive slots before `pos`, refusing a position behind the last
  // one or ahead of what was received. rx_produced(): frames received so far. Any thread.
  bool SendAgreed(uint64_t pos, std::span<const uint8_t> frame);
  bool AgreedConsumed(uint64_t pos);
  uint64_t rx_produced() const { return rx_ring_.published(); }

 private:
  NetTap(std::string ifname, UniqueFd tap, FrameRing rx, FrameRing tx, UniqueFd kick, UniqueFd wake,
         UniqueFd stop);
  void Loop();
  bool ReadTap();  // true when frames were added
  uint64_t RxFree();

  const std::string ifname_;
  const UniqueFd tap_;
  FrameRing rx_ring_;
  FrameRing tx_ring_;
  const UniqueFd kick_, wake_, stop_;
  std::function<void()> on_kick_;
  std::function<uint32_t()> busy_cpus_;
  std::function<void(const std::string&)> on_ring_error_;
  bool rekick_waiting_ = false;
  void RingError(const absl::Status& status);
  std::thread thread_;
  uint64_t rx_produced_ = 0;                 // pump thread: next receive position
  uint64_t rx_floor_ = 0;                    // pump thread: the last consumed position L0 accepted
  uint64_t rx_bad_consumed_ = ~uint64_t{0};  // pump thread: the last impossible one reported
  std::vector<uint8_t> rx_buffer_;
  mutable absl::Mutex tx_mu_;
  std::vector<uint8_t> tx_buffer_ ABSL_GUARDED_BY(tx_mu_);
  uint64_t tx_sent_ ABSL_GUARDED_BY(tx_mu_) = 0;      // transmit frames [0, tx_sent_) are done
  uint64_t agreed_sent_ ABSL_GUARDED_BY(tx_mu_) = 0;  // verified: frames [0, agreed_sent_) sent
  std::string tx_error_ ABSL_GUARDED_BY(tx_mu_);      // found by DrainTx, reported after it
  std::atomic<uint64_t> rx_frames_{0}, rx_oversize_{0}, tx_frames_{0}, tx_errors_{0},
      tx_malformed_{0}, ring_errors_{0};
};

}  // namespace rehome

#endif  // REHOME_VMM_CLI_NET_TAP_H_
