// vmm/l1/l1_server.cc: the L1 hypervisor process's server (RunL1Server). It runs the device
// model, answers the exits L0 forwards, commits its state to the journal after every exit, and
// heartbeats. It starts as a standby; when L0 promotes it, it restores the last committed state and
// becomes active. The active L1 also serves the virtio data path without L0 (l1_data_path.h):
// QueueNotify ioeventfds, irqfds, the console transmit ring and the network frame rings.
// Completions, console bytes and frame positions are published only after the commit that holds
// them (docs/failover.md). It never opens /dev/kvm. Threads: the main loop (all exit and
// notification handling) and a heartbeat thread.
#include "vmm/l1/l1_server.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/death_notice.h"
#include "base/errno_status.h"
#include "base/periodic_tick.h"
#include "base/spin_wait.h"
#include "base/status_macros.h"
#include "kvm-l0/exit_channel.h"
#include "kvm-l0/guest_memory.h"
#include "state-extract/device_journal.h"
#include "vmm/device_model.h"
#include "vmm/l1/commit_record.h"
#include "vmm/l1/effect_capture.h"
#include "vmm/l1/l1_data_path.h"
#include "vmm/l1/l1_fault_probes.h"
#include "vmm/l1/l1_faults.h"
#include "vmm/l1/l1_sandbox.h"
#include "vmm/l1/l1_scheduling.h"

namespace rehome {
namespace {

// How often a standby rehearses a promotion (Rehearse) while the journal moves on.
constexpr int64_t kRehearsalNs = 10'000'000;
constexpr absl::Duration kRehearsalPeriod = absl::Nanoseconds(kRehearsalNs);
// The nice value of an L1 until it reports ready (Init).
constexpr int kStartNice = 5;
// A replica's effects for one item: past this, devices leave further requests for the next item.
constexpr uint64_t kItemEffectsBudget = 4u << 20;

class L1Server final {
 public:
  L1Server(L1Options options, GuestMemory ram, ExitChannel channel, DeviceJournal journal)
      : options_(std::move(options)),
        ram_(std::move(ram)),
        channel_(std::move(channel)),
        journal_(std::move(journal)),
        answered_(channel_.slot_count(), 0),
        scheduling_(options_.realtime, options_.sandbox.level != L1SandboxLevel::kOff,
                    options_.cpus),
        data_path_([this](std::string_view why) { Die(why); }) {
    commit_.last_answer.resize(channel_.slot_count());
  }

  absl::Status Init() {
    // Until it is ready (see Run) an L1 has nothing urgent to do, whatever policy the spawning
    // thread had: below the vCPU threads (nice 5), so that a standby starting right after a
    // failover does not take their CPU while the guest's traffic catches up.
    const sched_param other{.sched_priority = 0};
    (void)sched_setscheduler(0, SCHED_OTHER, &other);
    (void)setpriority(PRIO_PROCESS, 0, kStartNice);
    DeviceModelConfig config;
    config.oracle = options_.oracle;
    if (config.oracle.has_value()) config.oracle->cpus = static_cast<uint32_t>(options_.cpus);
    config.serial_output = [this](std::string_view bytes) { output_.append(bytes); };
    if (options_.disk_fd >= 0) {
      config.disk = UniqueFd(options_.disk_fd);
      options_.disk_fd = -1;
      config.disk_read_only = options_.disk_read_only;
    }
    config.log = [](std::string_view line) { std::cerr << "rehome L1: " << line << "\n"; };
    config.console = options_.console;
    // Without the transmit ring the console's bytes travel in the exit's answer.
    config.console_output = [this](std::string_view bytes) { console_output_.append(bytes); };
    config.progress = [this] {
      channel_.header().work_progress.fetch_add(1, std::memory_order_relaxed);
    };
    // A replica's network device is no part of the data path: it reads the receive ring at the
    // item's limit and captures the rest (CapturingNetBackend, set up below).
    int replica_net_rx = -1;
    if (options_.verify && options_.net) {
      replica_net_rx = std::exchange(options_.net_rx_ring_fd, -1);
      options_.net = false;
    }
    RETURN_IF_ERROR(data_path_.Init(options_, &config));
    view_ = std::make_unique<RamView>(ram_);
    const GuestMemoryView* device_view = view_.get();
    if (options_.verify) {
      // A replica: every effect on the world is captured for L0 (effect_capture.h). Its guest
      // RAM is read-only: a stray store (a corrupted pointer) faults and fails this replica
      // instead of reaching the guest unverified.
      for (const GuestMemory::Region& r : ram_.regions()) {
        if (mprotect(r.host, r.size, PROT_READ) != 0) {
          return LastErrnoStatus("mprotect guest RAM read-only");
        }
      }
      ASSIGN_OR_RETURN(EffectsArea area, EffectsArea::Attach(options_.effects_fd));
      options_.effects_fd = -1;
      effects_.emplace(std::move(area));
      capture_ = std::make_unique<EffectCapture>(kItemEffectsBudget);
      capturing_view_ = std::make_unique<CapturingRamView>(*view_, *capture_);
      device_view = capturing_view_.get();
      config.disk_capture = capture_.get();
      EffectCapture* capture = capture_.get();
      config.virtio_irq = [capture](uint32_t irq, bool level) {
        if (level) capture->Irq(irq);
      };
      config.console_output = [capture](std::string_view bytes) { capture->ConsoleOut(bytes); };
      if (replica_net_rx >= 0) {
        ASSIGN_OR_RETURN(FrameRing rx, FrameRing::Attach(replica_net_rx));
        net_capture_ = std::make_shared<CapturingNetBackend>(std::move(rx), *capture_);
        config.net_backend = net_capture_;
        config.net_mac = options_.net_mac;
      }
    }
    ASSIGN_OR_RETURN(model_, DeviceModel::Create(std::move(config), *device_view));
    model_->SetDeferredPublication(true);
    return absl::OkStatus();
  }

  int Run() {
    // Start-up (Init, and the first rehearsal: a cold restore full of page faults) runs at low
    // priority (Init): a new standby starts right after a failover, and at SCHED_FIFO its
    // start-up would keep the new active L1 and L0's network pump (the same priority does not
    // preempt) off a CPU for milliseconds while the guest's traffic waits. SCHED_FIFO while
    // asleep (l1_scheduling.h) from the moment it reports ready.
    PublishPostedRanges();
    // This (the exit) thread's death marks the header's notice word before the kernel tears
    // the process down: L0 fails over without waiting for that (docs/exit-channel.md). Without
    // it (refused: never seen), L0 learns of a crash from the pidfd, as before.
    (void)ClaimDeathNotice(&channel_.header().exit_thread_notice);
    Rehearse();  // a new standby is warm before it reports ready
    scheduling_.Start();
    std::thread heartbeat([this] { Heartbeat(); });
    heartbeat.detach();  // dies with the process
    channel_.header().l1_state.store(static_cast<uint32_t>(L1State::kStandby),
                                     std::memory_order_release);
    channel_.SignalAck();  // "ready" (L0 also polls l1_state)
    for (;;) {
      // A standby leaves the devices' notifications to the active L1.
      pollfd fds[1 + L1DataPath::kMaxFds] = {{channel_.request_eventfd(), POLLIN, 0}};
      L1DataPath::Device devices[L1DataPath::kMaxFds];
      const int device_fds = data_path_.PollFds(active_, fds + 1, devices);
      // An active L1 that just answered a vCPU's exit spins briefly for the next one: in an
      // exit-heavy phase it arrives within tens of microseconds, and a sleep plus a wake-up
      // would cost about as much as the exit itself. (Not after notifications or console input:
      // the spin would only take a CPU from the guest and the console peer.) L0 signals the
      // request eventfd only while this L1 says it sleeps, so an exit found by spinning costs
      // no system call on either side when no device notification can be pending either.
      // Nor when the vCPU thread it answered runs on this CPU: it could not post the next exit
      // while this L1 (real-time) spins there. Rather move to another CPU, if there is one.
      // Not a replica (verified execution): the vCPU thread sleeps until every replica has
      // answered, so it takes no turns with one; replicas moved away from it would all crowd
      // onto the other CPUs and execute each item one after the other.
      int cpu = sched_getcpu();
      if (active_ && answered_vcpu_exit_ && !effects_.has_value() &&
          last_vcpu_cpu_ == static_cast<uint32_t>(cpu) && scheduling_.MoveAwayFrom(cpu)) {
        cpu = sched_getcpu();
      }
      // Stored only when it changed: L0 reads this line on every exit, and a store would take
      // it out of L0's cache each time.
      if (channel_.header().l1_cpu.load(std::memory_order_relaxed) !=
          static_cast<uint32_t>(cpu + 1)) {
        channel_.header().l1_cpu.store(static_cast<uint32_t>(cpu + 1), std::memory_order_relaxed);
      }
      const bool may_spin =
          active_ && answered_vcpu_exit_ && last_vcpu_cpu_ != static_cast<uint32_t>(cpu);
      if (may_spin) scheduling_.BeforeSpin();
      bool work = may_spin && SpinForWork();
      answered_vcpu_exit_ = false;
      const bool said_sleeping = !work;
      if (said_sleeping) {
        // Its wake-up must not land on a vCPU thread's CPU (base/cpu_avoidance.h). Except a
        // replica whose last item was a vCPU's exit: that vCPU thread sleeps in L0 until every
        // replica answered, and replicas all kept off its CPU would execute one after the
        // other; after an item no vCPU waits for (a queue notification L0 took, host input),
        // the guest runs on, and a replica woken on its CPU would first have to preempt it.
        if (active_ && effects_.has_value() && last_item_was_vcpu_exit_) {
          (void)scheduling_.AllowEveryCpu();
        } else if (active_) {
          (void)OffTheVcpusCpus();
        }
        channel_.SetL1Sleeping(scheduling_.BeforeSleep());
        work = RequestPending();  // published before L0 could see the flag
      }
      // A standby wakes every kRehearsalPeriod to rehearse (see Rehearse), on the shared grid
      // of periodic wake-ups (base/periodic_tick.h).
      const timespec sleep = work ? timespec{} : TimeToNextTick(active_ ? 100000000 : kRehearsalNs);
      if (!work || device_fds > 0) ppoll(fds, 1 + device_fds, &sleep, nullptr);
      if (said_sleeping) {  // not per exit found by spinning
        channel_.SetL1Sleeping(kL1Awake);
        scheduling_.AfterWake();
      }
      if ((fds[0].revents & POLLIN) != 0) ExitChannel::Drain(channel_.request_eventfd());
      ExitChannelHeader& h = channel_.header();
      if (h.quit_request.load(std::memory_order_acquire) != 0) return 0;
      TakeFault();
      if (!active_) {
        const uint64_t promote = h.promote_request.load(std::memory_order_acquire);
        if (promote != 0) {
          if (absl::Status s = Promote(promote); !s.ok()) Die(std::string(s.message()));
        } else {
          Rehearse();
        }
        continue;
      }
      HandlePending();
      bool kicked[3] = {};  // by device: both of the network device's fds lead to one kick
      for (int i = 0; i < device_fds; ++i) {
        if ((fds[1 + i].revents & POLLIN) == 0) continue;
        L1DataPath::Drain(fds[1 + i].fd);
        kicked[static_cast<int>(devices[i])] = true;
      }
      bool gave_guest_work = false;  // completions or frames the guest acts on next
      for (int d = 0; d < 3; ++d) {
        if (!kicked[d]) continue;
        const bool changed = HandleDeviceNotification(static_cast<L1DataPath::Device>(d));
        gave_guest_work |= changed && d != static_cast<int>(L1DataPath::Device::kConsole);
      }
      if (gave_guest_work) AwaitGuestFollowUp();
    }
  }

 private:
  class RamView final : public GuestMemoryView {
   public:
    explicit RamView(const GuestMemory& ram) : ram_(ram) {}
    uint8_t* HostAddress(uint64_t gpa, uint64_t len) const override {
      return ram_.HostAddress(gpa, len);
    }

   private:
    const GuestMemory& ram_;
  };

  void Heartbeat() {
    const int64_t period_ns = static_cast<int64_t>(options_.heartbeat_ms) * 1000000;
    while (!hung_.load(std::memory_order_relaxed)) {
      if (L0Gone(options_.lifeline_fd, options_.parent_pid)) _exit(0);
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      channel_.header().heartbeat_ns.store(
          static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec, std::memory_order_relaxed);
      channel_.header().heartbeat.fetch_add(1, std::memory_order_release);
      const timespec left = TimeToNextTick(period_ns);  // on the shared grid (periodic_tick.h)
      (void)nanosleep(&left, nullptr);
    }
  }

  // Reports a failure of this L1 in the channel header, then dies (L0 sees the pidfd).
  [[noreturn]] void Die(std::string_view why) {
    ExitChannelHeader& h = channel_.header();
    const size_t n = std::min<size_t>(why.size(), kExitReasonMax);
    std::memcpy(h.failure, why.data(), n);
    h.failure_len.store(static_cast<uint32_t>(std::max<size_t>(n, 1)), std::memory_order_release);
    h.l1_state.store(static_cast<uint32_t>(L1State::kFailed), std::memory_order_release);
    std::cerr << "rehome L1: " << why << "\n";
    KillL1Now();  // (not abort: its SIGABRT would be ignored in a pid namespace of its own)
  }

  // Asleep in a system call for good (ppoll without fds or timeout: allowed by the sandbox,
  // where pause is not).
  [[noreturn]] static void BlockForever() {
    for (;;) ppoll(nullptr, 0, nullptr, nullptr);
  }

  void TakeFault() {
    // Read before the exchange: an unconditional read-modify-write would take the header line
    // (which L0 reads on every exit: l1_sleeping, l1_cpu) out of L0's cache once per loop.
    if (channel_.header().fault_request.load(std::memory_order_relaxed) == 0) return;
    const uint32_t request = channel_.header().fault_request.exchange(0, std::memory_order_acq_rel);
    const auto fault = static_cast<L1Fault>(request & 0xff);
    fault_skip_ = request >> 8;  // exits to handle before the fault applies
    switch (fault) {
      case L1Fault::kNone:
        return;
      case L1Fault::kAssert:
        Die("assertion failed: injected by fault request");
      case L1Fault::kHang:
        hung_.store(true);
        BlockForever();
      case L1Fault::kBlock:
        BlockForever();  // the heartbeat thread beats on
      case L1Fault::kExitThreadExits:
        for (;;) syscall(SYS_exit, 0);  // this thread only; the heartbeat thread beats on
      default:
        if (IsTakenFaultProbe(fault)) {  // tests of the sandbox and of L0 (l1_fault_probes.h)
          RunTakenFaultProbe(
              fault, {&channel_, &journal_, data_path_.console_ring(), options_.parent_pid});
          return;
        }
        pending_fault_ = fault;
    }
  }

  // A standby runs the restore half of Promote now and then (the journal has moved on and
  // kRehearsalPeriod has passed), without taking over: the code, heap and journal pages a
  // promotion touches are then mapped and warm when a failover needs them. Cold, they cost a
  // promotion 0.25-0.4 ms here (page faults of tens of microseconds each). Restoring is idempotent
  // and has no effect outside this process; a read torn by a concurrent commit fails its checksum
  // and is skipped.
  void Rehearse() {
    const uint64_t commits = journal_.commits();
    const absl::Time now = absl::Now();
    // (Half a period: the wake-ups come on the period's grid, with some jitter.)
    if (commits == rehearsed_commits_ || now - rehearsed_at_ < kRehearsalPeriod / 2) return;
    rehearsed_commits_ = commits;
    rehearsed_at_ = now;
    absl::StatusOr<std::string> committed = journal_.ReadCommitted();
    if (!committed.ok()) return;
    absl::StatusOr<CommitRecord> record = DecodeCommitRecord(*committed);
    if (record.ok()) (void)model_->RestoreState(record->device_state);
  }

  absl::Status Promote(uint64_t generation) {
    absl::StatusOr<std::string> committed = journal_.ReadCommitted();
    if (committed.ok()) {
      ASSIGN_OR_RETURN(CommitRecord record, DecodeCommitRecord(*committed));
      if (record.last_answer.size() != channel_.slot_count()) {
        return absl::InvalidArgumentError("commit record has the wrong vCPU count");
      }
      RETURN_IF_ERROR(model_->RestoreState(record.device_state));
      commit_.last_answer = std::move(record.last_answer);
      exits_handled_ = record.exits_handled;
    } else if (!absl::IsNotFound(committed.status())) {
      return committed.status();
    }
    generation_ = generation;
    active_ = true;
    // The committed completions, console bytes and frame positions may not have been published
    // when the previous active died (committed, then killed): publish them (idempotent). A
    // notification it consumed but never committed is not lost: process whatever the guest has
    // made available (and the frames L0 added) since the committed positions, as if notified.
    // A replica's effects are applied by L0, never published here.
    data_path_.Promoted(*model_);
    if (!options_.verify) {
      data_path_.Publish(*model_);
      for (L1DataPath::Device device : data_path_.devices()) HandleDeviceNotification(device);
    }
    ExitChannelHeader& h = channel_.header();
    h.l1_state.store(static_cast<uint32_t>(L1State::kActive), std::memory_order_release);
    h.promote_ack.store(generation, std::memory_order_release);
    channel_.SignalAck();
    return absl::OkStatus();
  }

  // True when an exit request (or a fault, quit or promote request) is pending.
  bool RequestPending() const {
    for (uint32_t v = 0; v < channel_.slot_count(); ++v) {
      if (channel_.slot(v).request_seq.load(std::memory_order_acquire) > answered_[v]) {
        return true;
      }
    }
    const ExitChannelHeader& h = channel_.header();
    return h.fault_request.load(std::memory_order_relaxed) != 0 ||
           h.quit_request.load(std::memory_order_relaxed) != 0 ||
           (!active_ && h.promote_request.load(std::memory_order_relaxed) != 0);
  }

  // True as soon as RequestPending; false after kIdleSpin without. The window must outlast the
  // guest's KVM round trip between two exits, or every exit of an exit-heavy phase pays an
  // eventfd wake-up: 50 us did when an exit cost 26 us; on a host where it costs ~70 us, 50 us
  // made split mode's handling 10 us per exit, 150 us 1.35 us (benchmarks.md section 14).
  bool SpinForWork() {
    constexpr absl::Duration kIdleSpin = absl::Microseconds(150);
    return SpinUntil([&] { return RequestPending(); }, kIdleSpin);
  }

  // A QueueNotify that KVM delivered on a device's ioeventfd (the guest did not exit), or L0's
  // kick of the network device (frames arrived, transmit room): process the device's queues,
  // commit, then publish: the completions (used idx, irqfd), the console bytes (transmit ring),
  // the frame positions. A failure before the commit leaves nothing the guest or L0 can see; the
  // next active L1 processes the same chains again from the committed ring positions and
  // rewrites the same bytes and frames at the same ring positions (Promote).
  // True when the device's state changed (and was committed and published).
  bool HandleDeviceNotification(L1DataPath::Device device) {
    if (!L1DataPath::Kick(*model_, device)) return false;
    if (pending_fault_ == L1Fault::kDieBeforeCommit) KillL1Now();
    Commit();
    if (pending_fault_ == L1Fault::kDieAfterCommit) KillL1Now();
    data_path_.Publish(*model_);
    // "garbage" here: what the commit holds is published correctly, then an impossible frame
    // position (L0 refuses it and fails this L1 over; the successor republishes).
    if (pending_fault_ == L1Fault::kGarbageAnswer && data_path_.PublishGarbage()) {
      pending_fault_ = L1Fault::kNone;
    }
    return true;
  }

  // The guest just got frames or disk completions, and its next request (a reply frame, the
  // next disk request of a transaction: a log write, its FLUSH) typically follows within
  // microseconds: spin briefly on the transmit queue's and the disk queue's available indexes
  // in guest RAM and take it at once, rather than sleep until its ioeventfd wakes this L1 again
  // (a wake-up of tens of microseconds on a busy host); again after each one taken, so a chain
  // frame -> disk -> disk -> reply costs one wake-up. At normal priority, as every spin of this
  // L1, and never on a vCPU thread's CPU; it stops early for an exit or a request, and the
  // ioeventfd the guest signalled anyway only finds the queue processed.
  void AwaitGuestFollowUp() {
    constexpr absl::Duration kFollowUpSpin = absl::Microseconds(50);
    constexpr int kMaxFollowUps = 64;  // then back to the main loop, whatever the guest does
    for (int i = 0; i < kMaxFollowUps; ++i) {
      if (!OffTheVcpusCpus()) return;
      scheduling_.BeforeSpin();
      bool net = false, disk = false;
      const bool found = SpinUntil(
          [&] {
            net = model_->NetTransmitAvailable();
            disk = model_->DiskRequestAvailable();
            return net || disk || RequestPending();
          },
          kFollowUpSpin);
      if (!found || (!net && !disk)) return;  // nothing, or an exit first: the main loop
      bool changed = false;
      if (disk) changed |= HandleDeviceNotification(L1DataPath::Device::kDisk);
      if (net) changed |= HandleDeviceNotification(L1DataPath::Device::kNet);
      if (!changed) return;
    }
  }

  // Whether this thread runs on a CPU where, by L0's hint (vcpu_cpus), no vCPU thread runs;
  // when it does not, it moves to the others if it may (at most once per 10 ms). Spinning beside
  // the vCPU thread would keep the guest from posting what the spin waits for.
  bool OffTheVcpusCpus() {
    const uint32_t vcpu_cpus = channel_.header().vcpu_cpus.load(std::memory_order_relaxed);
    int cpu = sched_getcpu();
    auto beside = [&] { return cpu >= 0 && cpu < 32 && (vcpu_cpus & (1u << cpu)) != 0; };
    if (!beside()) return true;
    if (!scheduling_.MoveAwayFrom(cpu)) return false;
    cpu = sched_getcpu();
    return !beside();
  }

  // Tells L0 which writes it may post: the device model's posted-write ranges (at most
  // kMaxPostedRanges; with more, none, so that L0 never posts a write this L1 must answer).
  void PublishPostedRanges() {
    const std::vector<PostedWriteRange> ranges = model_->PostedWriteRanges();
    ExitChannelHeader& h = channel_.header();
    if (ranges.size() > kMaxPostedRanges) return;
    for (size_t i = 0; i < ranges.size(); ++i) {
      h.posted_ranges[i] = PostedRange{
          ranges[i].space == BusSpace::kPio ? PostedRange::kPio : PostedRange::kMmio,
          static_cast<uint32_t>(std::min<uint64_t>(ranges[i].len, UINT32_MAX)), ranges[i].base};
    }
    h.posted_range_count.store(static_cast<uint32_t>(ranges.size()), std::memory_order_release);
  }

  // Handles every pending request in exit order (sequence numbers). Exits are ordered across
  // vCPUs because of posted writes: a vCPU whose write was posted runs on, and a later exit of
  // another vCPU that depends on it (through guest memory) must not be handled before it. Hence
  // the second scan: it starts after the first one saw the later exit published, so it sees
  // every request published before that one too.
  void HandlePending() {
    std::vector<std::pair<uint64_t, uint32_t>> pending;  // (seq, vcpu)
    for (int scan = 0; scan < 2; ++scan) {
      pending.clear();
      for (uint32_t v = 0; v < channel_.slot_count(); ++v) {
        const uint64_t seq = channel_.slot(v).request_seq.load(std::memory_order_acquire);
        if (seq != 0 && seq > answered_[v]) pending.emplace_back(seq, v);
      }
      if (pending.empty()) return;
    }
    std::sort(pending.begin(), pending.end());
    for (const auto& [seq, v] : pending) {
      if (v < static_cast<uint32_t>(options_.cpus)) {
        answered_vcpu_exit_ = true;
        last_vcpu_cpu_ = channel_.slot(v).request.host_cpu;  // read before answering
      }
      last_item_was_vcpu_exit_ = v < static_cast<uint32_t>(options_.cpus);
      Handle(v);
    }
  }

  void Handle(uint32_t v) {
    ExitSlot& slot = channel_.slot(v);
    ExitRequest& req = slot.request;  // L0 does not touch it until we answer
    const uint64_t seq = slot.request_seq.load(std::memory_order_acquire);
    CommittedAnswer answer;
    L1Fault fault = L1Fault::kNone;
    if (seq == commit_.last_answer[v].seq) {
      // Committed before a failover: answer it again, never redo it.
      answer = commit_.last_answer[v];
      if (options_.verify) WriteEffects(seq, /*executed=*/false);
    } else {
      fault = TakeDueFault(req);
      if (capture_ != nullptr) capture_->Clear();
      if (net_capture_ != nullptr)
        net_capture_->SetRxLimit(req.net_rx_limit, model_->net_rx_frames());
      if (capturing_view_ != nullptr)
        capturing_view_->SetAvailSnapshot(req.avail_snapshot, req.avail_snapshot_count);
      answer = Execute(req, seq);
      ApplyAnswerFault(fault, &answer);
      if (fault == L1Fault::kWrongState) CorruptState();
      if (fault == L1Fault::kDieBeforeCommit) KillL1Now();
      // A replica's completions and interrupts are captured with the item's other effects.
      if (options_.verify) model_->PublishUsed();
      commit_.last_answer[v] = answer;
      ++exits_handled_;
      Commit();
      if (options_.verify) WriteEffects(seq, /*executed=*/true);
      if (fault == L1Fault::kDieAfterCommit) KillL1Now();
      // What this exit produced (completions, bytes, frames), now committed.
      if (!options_.verify) data_path_.Publish(*model_);
    }
    answer.ToResponse(&slot.response);
    if (fault == L1Fault::kGarbageAnswer) {
      slot.response.data_len = 0xffffffffu;
      slot.response.crc ^= 0x5a5a5a5a;
    }
    if (IsAnswerScribble(fault)) ScribbleAnswer(fault, &slot.response);  // l1_fault_probes.h
    answered_[v] = seq;
    slot.response_seq.store(seq, std::memory_order_release);
    channel_.WakeL0IfSleeping(v);
  }

  CommittedAnswer Execute(const ExitRequest& req, uint64_t seq) {
    return ExecuteExit(*model_, req, seq, output_, console_output_);
  }

  // The fault armed for the exit `req` now starting (l1_faults.h); it is consumed.
  L1Fault TakeDueFault(const ExitRequest& req) {
    return TakeArmedFault(&pending_fault_, &fault_skip_, req);
  }
  void CorruptState() { CorruptDeviceState(*model_); }

  // A replica: publishes the effects captured for item `seq` (none when it was answered from the
  // journal), with the digest of the state just committed, for L0 to compare and apply.
  void WriteEffects(uint64_t seq, bool executed) {
    effects_bytes_.clear();
    uint32_t flags = 0;
    if (executed) {
      capture_->EncodeInto(&effects_bytes_);
      if (!capture_->HasRoom()) flags |= kEffectsMore;  // more queued work: L0 asks again
    }
    // Where the guest's available indices live now: L0 snapshots them into the next item.
    for (const virtio::AvailIndexAddress& a : model_->AvailIndexAddresses()) {
      const uint8_t unprompted = a.unprompted ? 1 : 0;
      AppendEffect(&effects_bytes_, EffectType::kAvailWatch, a.gpa, {&unprompted, 1});
    }
    if (absl::Status s = effects_->Write(seq, flags, state_crc_, effects_bytes_); !s.ok()) {
      Die(std::string(s.message()));
    }
  }

  // Commits the state after an exit. commit_ (whose last_answer is the L1's record of its
  // answers) and payload_ keep their buffers from one commit to the next: this runs after every
  // exit, and allocating the record anew cost a noticeable part of the exit's round trip.
  void Commit() {
    commit_.l1_generation = generation_;
    commit_.exits_handled = exits_handled_;
    if (const CounterOracle* oracle = model_->oracle(); oracle != nullptr) {
      commit_.verified_reports = oracle->verified_reports();
      commit_.oracle_violations = oracle->violation_count();
    }
    commit_.pio_bench_writes = model_->pio_bench_writes();
    model_->SaveStateInto(&commit_.device_state);
    if (options_.verify) commit_.l1_generation = 0;  // replicas' records must compare equal
    EncodeCommitRecordInto(commit_, &payload_);
    if (absl::Status s = journal_.Commit(payload_); !s.ok()) Die(std::string(s.message()));
    if (options_.verify) {
      state_crc_ = static_cast<uint32_t>(
          crc32(crc32(0L, Z_NULL, 0), payload_.data(), static_cast<uInt>(payload_.size())));
    }
  }

  L1Options options_;
  GuestMemory ram_;
  ExitChannel channel_;
  DeviceJournal journal_;
  std::unique_ptr<RamView> view_;
  std::unique_ptr<DeviceModel> model_;
  std::string output_;          // COM1 bytes of the exit being handled
  std::string console_output_;  // virtio-console bytes of the exit being handled
  std::vector<uint64_t> answered_;
  CommitRecord commit_;           // what the last commit held (last_answer: by vCPU)
  std::vector<uint8_t> payload_;  // its encoding
  uint64_t exits_handled_ = 0;
  bool answered_vcpu_exit_ = false;  // in the last loop iteration (see Run)
  // The last request handled came from a vCPU's slot, not the host slot (kept across wake-ups
  // without work: where a replica sleeps depends on it, see Run).
  bool last_item_was_vcpu_exit_ = false;
  L1Scheduling scheduling_;
  uint64_t rehearsed_commits_ = 0;  // journal commit count at the last Rehearse
  absl::Time rehearsed_at_ = absl::InfinitePast();
  uint32_t last_vcpu_cpu_ = ~0u;  // host CPU of the vCPU thread answered last (a hint)
  uint64_t generation_ = 0;
  L1DataPath data_path_;
  bool active_ = false;
  L1Fault pending_fault_ = L1Fault::kNone;
  uint32_t fault_skip_ = 0;  // exits to handle before pending_fault_ applies
  // Verified execution (a replica): the capture, the effects area, the encoded effects and the
  // CRC of the last committed record.
  std::unique_ptr<EffectCapture> capture_;
  std::unique_ptr<CapturingRamView> capturing_view_;
  std::shared_ptr<CapturingNetBackend> net_capture_;
  std::optional<EffectsArea> effects_;
  std::vector<uint8_t> effects_bytes_;
  uint32_t state_crc_ = 0;
  std::atomic<bool> hung_{false};
};

static_assert(static_cast<uint32_t>(ExitOutcome::kGuestExit) == ExitResponse::kGuestExit &&
              static_cast<uint32_t>(ExitOutcome::kReset) == ExitResponse::kReset &&
              static_cast<uint32_t>(ExitOutcome::kShutdown) == ExitResponse::kShutdown &&
              static_cast<uint32_t>(ExitOutcome::kGuestCrash) == ExitResponse::kGuestCrash &&
              static_cast<uint32_t>(ExitOutcome::kFatal) == ExitResponse::kFatal &&
              static_cast<uint32_t>(ExitOutcome::kCheckFailed) == ExitResponse::kCheckFailed);

}  // namespace

int RunL1Server(L1Options options, GuestMemory ram, ExitChannel channel, DeviceJournal journal) {
  L1Server server(std::move(options), std::move(ram), std::move(channel), std::move(journal));
  if (absl::Status s = server.Init(); !s.ok()) {
    std::cerr << "rehome __l1: " << s.message() << "\n";
    return 70;
  }
  return server.Run();
}

}  // namespace rehome
