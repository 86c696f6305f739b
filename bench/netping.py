#!/usr/bin/env python3
"""Service interruption as a client on the network sees it (NiLiHype's NetBench, for rehome).

The tool makes a network namespace (root) with a tap (10.0.2.1/24), starts the test guest's
`netecho` workload on a virtio-net device on that tap (rehome split or monolithic, or the same
guest under QEMU microvm), and sends one UDP datagram every --interval-ms (sequence number and
send time) to the guest (10.0.2.15:7), which echoes it. Every echo is recorded with the kernel's
receive timestamp (SO_TIMESTAMPNS), so Python's scheduling does not enter the round trip. It
reports, per run: datagrams sent, echoed, lost, duplicated and reordered; the round trip's
mean, p50, p99 and max; and for each failover rehome reports over QMP (__org.rehome_FAILOVER_*
events: cause, rehome's own phase timings), the service interruption: the longest gap between
consecutive echoes around it. Faults: --kill-active-every-ms (rehome's SIGKILL timer),
--hang-every-ms (QMP inject-fault hang = SIGSTOP, so detection time is included),
--switchover-every-ms. --modes split,monolithic,qemu,verify-dual,verify-triple alternates the
configurations run by run (--reps rounds) for side-by-side figures (verify-*: split mode with
`--verify dual|triple`, every frame compared before it leaves); faults apply to split and
verify-* (switchovers: split only). --plot draws the round-trip time over the run with the
failovers marked (PNG, matplotlib). --datagrams writes every datagram's send and echo time with
the failovers (JSON), to look at what happened around one. The datagram loop is bounded in count (--count) and time.
Nothing leaves the machine. Exit status: 0; 1 when a run failed (a `bench: ...` line says why)
or, with --check, when a datagram was lost or duplicated
or a requested fault produced no failover; 2 bad usage; 77 when the host forbids namespaces or
taps (not root, no /dev/net/tun).
"""
import argparse
import ctypes
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

GUEST_IP, HOST_IP, PORT, TAP, MAC = "10.0.2.15", "10.0.2.1", 7, "rhnp0", "52:54:00:12:34:56"
CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35  # Linux; SCM_TIMESTAMPNS has the same value
WARMUP_BASE = 1 << 62  # sequence numbers of the warm-up datagrams
PAYLOAD = struct.Struct("<QQ16x")  # seq, send time (ns, CLOCK_REALTIME), padding


def skip(message):
    print(f"netping: skipped: {message}", file=sys.stderr)
    sys.exit(77)


def ip(*args):
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        skip(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def enter_netns(tap=TAP):
    """Moves this process into a new network namespace with the tap `tap` up (children inherit
    it). Exits 77 (skipped) where the host forbids it."""
    if os.geteuid() != 0:
        skip("needs root (network namespace and tap)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        skip(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
    ip("link", "set", "lo", "up")
    ip("tuntap", "add", "dev", tap, "mode", "tap")
    ip("addr", "add", f"{HOST_IP}/24", "dev", tap)
    ip("link", "set", tap, "up")


def failovers_from_events(events):
    """Failovers from QMP events [(time, name, data)]: FAILOVER_STARTED (its cause) paired with
    the next FAILOVER_COMPLETED; under verified execution a replica's failure is L1_FAILED (its
    cause) then FAILOVER_COMPLETED. Each: time, cause, detected (s, or None), rehome_total_us,
    phases_us."""
    failovers, pending = [], None
    for t, name, data in events:
        if name == "__org.rehome_FAILOVER_STARTED":
            pending = (t, data.get("cause", "?"))
        elif name == "__org.rehome_L1_FAILED" and pending is None:
            pending = (t, data.get("cause", "?"))  # a replica (or a standby: no COMPLETED)
        elif name == "__org.rehome_FAILOVER_COMPLETED" and pending is not None:
            detected = data.get("detected-at-us")
            failovers.append({"time": pending[0], "cause": pending[1],
                              "detected": detected / 1e6 if detected is not None else None,
                              "rehome_total_us": data.get("downtime-us"),
                              "phases_us": data.get("phases", {})})
            pending = None
    return failovers


def faulty(mode):
    """Whether the fault options apply to `mode` (rehome split, with or without --verify)."""
    return mode == "split" or mode.startswith("verify-")


REALTIME = [False]  # --realtime
REALTIME_SENDER = [False]  # --realtime-sender


def realtime_thread(sender=False):
    """With --realtime, SCHED_FIFO for the calling thread when permitted: sends on time on a busy
    host. Off by default: a real-time client preempts the vCPU thread (which spins in the
    guest) and so perturbs what it measures (measured: monolithic p50 1.2 ms with it, 0.11 ms
    without), and the kernel's receive timestamps already keep the client's own scheduling
    out of the round trip."""
    if not (REALTIME[0] or (sender and REALTIME_SENDER[0])):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        pass


class Qmp:
    """A minimal QMP client that records every event with its timestamp (seconds, float)."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    b.fail(f"QMP socket {path} did not appear")
                time.sleep(0.02)
        self.file = self.sock.makefile("rwb")
        self.events, self.replies = [], []
        self.lock = threading.Condition()
        json.loads(self.file.readline())  # greeting
        threading.Thread(target=self._reader, daemon=True).start()
        self.command("qmp_capabilities")

    def _reader(self):
        for line in self.file:
            msg = json.loads(line)
            with self.lock:
                if "event" in msg:
                    ts = msg["timestamp"]
                    self.events.append((ts["seconds"] + ts["microseconds"] / 1e6, msg["event"],
                                        msg.get("data", {})))
                else:
                    self.replies.append(msg)
                    self.lock.notify_all()

    def command(self, name, arguments=None, timeout=10):
        msg = {"execute": name}
        if arguments is not None:
            msg["arguments"] = arguments
        with self.lock:
            before = len(self.replies)
            self.file.write(json.dumps(msg).encode() + b"\n")
            self.file.flush()
            if not self.lock.wait_for(lambda: len(self.replies) > before, timeout):
                b.fail(f"QMP {name}: no reply")
            return self.replies[before]


class Pinger:
    """One datagram every `interval` seconds, `count` of them; echoes with kernel timestamps."""

    def __init__(self, interval, count):
        self.interval, self.count = interval, count
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect((GUEST_IP, PORT))
        self.sent = {}      # seq -> send time (ns)
        self.echoes = []    # (seq, kernel receive time ns), in arrival order
        self.done_sending = threading.Event()

    def _recv(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        data, anc, _, _ = self.sock.recvmsg(64, socket.CMSG_SPACE(16))
        ts = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                ts = sec * 1_000_000_000 + nsec
        if ts is None:
            ts = time.clock_gettime_ns(time.CLOCK_REALTIME)
        if len(data) != PAYLOAD.size:
            return (-1, ts)
        return (PAYLOAD.unpack(data)[0], ts)

    def warm_up(self, deadline):
        """Until the guest answers (ARP resolved, netecho serving)."""
        seq = WARMUP_BASE
        while time.time() < deadline:
            self.sock.send(PAYLOAD.pack(seq, 0))
            got = self._recv(0.1)
            if got is not None and got[0] >= WARMUP_BASE:
                while self._recv(0.2) is not None:
                    pass  # late warm-up echoes
                return
            seq += 1
        b.fail("the guest never answered the warm-up datagrams")

    def _send_loop(self):
        realtime_thread(sender=True)
        start = time.monotonic()
        for seq in range(self.count):
            delay = start + seq * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.clock_gettime_ns(time.CLOCK_REALTIME)
            self.sock.send(PAYLOAD.pack(seq, now))
            self.sent[seq] = now
        self.done_sending.set()

    def run(self, drain_s):
        sender = threading.Thread(target=self._send_loop)
        realtime_thread()
        sender.start()
        limit = time.monotonic() + self.count * self.interval * 2 + 30  # the loop is bounded
        drain_until = None
        while time.monotonic() < limit:
            got = self._recv(0.05)
            if got is not None:
                self.echoes.append(got)
            if self.done_sending.is_set():
                if drain_until is None:
                    drain_until = time.monotonic() + drain_s
                if time.monotonic() > drain_until or self._all_back():
                    break
        sender.join()

    def _all_back(self):
        return len({s for s, _ in self.echoes if 0 <= s < self.count}) == self.count


def percentile(values, p):
    return b.percentile(values, p) if values else None


def analyze(pinger, events, interval_ms, hang_timeout_ms):
    first = {}
    duplicated = reordered = foreign = 0
    highest = -1
    for seq, ts in pinger.echoes:
        if seq >= WARMUP_BASE:
            continue
        if seq not in pinger.sent:
            foreign += 1
            continue
        if seq in first:
            duplicated += 1
            continue
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        first[seq] = ts
    rtt_us = [(first[s] - pinger.sent[s]) / 1000 for s in sorted(first)]
    arrivals = sorted(first.values())
    gaps = [(arrivals[i - 1], arrivals[i]) for i in range(1, len(arrivals))]
    failovers = failovers_from_events(events)
    for f in failovers:
        kind = "hang" if f["cause"].startswith("hang") else \
            "switchover" if f["cause"].startswith("switchover") else "crash"
        f["kind"] = kind
        if f["detected"] is not None:
            # rehome says when it detected the failure (a switchover: when it began): the
            # outage the client saw is the gap between echoes that spans that instant.
            t_ns = f["detected"] * 1e9
            window = [(a, z) for a, z in gaps if a <= t_ns < z]
        else:
            # Older rehome: the events come once the guest runs again, after the outage began
            # (a hang: at least the hang timeout before): the longest gap near them.
            before = (hang_timeout_ms + 100 if kind == "hang" else 30) * 1e6
            t_ns = f["time"] * 1e9
            window = [(a, z) for a, z in gaps if z >= t_ns - before and a <= t_ns + 5e6]
        f["interruption_ms"] = None
        if window:
            a, z = max(window, key=lambda g: g[1] - g[0])
            f["interruption_ms"] = (z - a) / 1e6
            # Where the gap lies around the event (negative: before it), for diagnosis.
            f["gap_from_event_ms"] = [(a - t_ns) / 1e6, (z - t_ns) / 1e6]
            # The client's own part: the longest pause between two of its sends in that gap
            # (about the interval when it kept its schedule; longer when it did not get a CPU).
            inside = sorted(s for s in pinger.sent.values() if a - interval_ms * 1e6 <= s <= z)
            f["send_gap_ms"] = max((inside[i] - inside[i - 1] for i in range(1, len(inside))),
                                   default=0) / 1e6
    # The same gaps away from every failover: what the host's own noise looks like.
    near = [((f["detected"] or f["time"]) * 1e9 -
             ((hang_timeout_ms + 100 if f["kind"] == "hang" else 30) * 1e6),
             f["time"] * 1e9 + 5e6) for f in failovers]
    quiet = [(z - a) / 1e6 for a, z in gaps if not any(z >= lo and a <= hi for lo, hi in near)]
    return {
        "quiet_gap_p99_ms": percentile(quiet, 99),
        "quiet_gap_max_ms": max(quiet, default=None),
        "sent": len(pinger.sent),
        "echoed": len(first),
        "lost": len(pinger.sent) - len(first),
        "duplicated": duplicated,
        "reordered": reordered,
        "foreign": foreign,
        "rtt_us": rtt_us,
        "rtt_mean_us": sum(rtt_us) / len(rtt_us) if rtt_us else None,
        "rtt_p50_us": percentile(rtt_us, 50),
        "rtt_p99_us": percentile(rtt_us, 99),
        "rtt_max_us": max(rtt_us) if rtt_us else None,
        "max_gap_ms": max(((z - a) / 1e6 for a, z in gaps), default=None),
        "failovers": failovers,
        "first_send_ns": min(pinger.sent.values()) if pinger.sent else 0,
        "sends": pinger.sent,
        "arrivals": first,
    }


def start_service_vm(mode, args, work, cmdline, ready_line, disk=None, disk_read_only=False,
                     start_timeout_s=60):
    """Starts the test guest with `cmdline` on the tap (rehome `mode`: split, monolithic,
    verify-*; or qemu: microvm), optionally with a virtio-blk `disk`, with rehome's faults as
    `args` asks, and waits until its console shows `ready_line`. Returns (process, Qmp or None,
    stderr log file, console path). Shared with bench/service_bench.py."""
    serial = os.path.join(work, f"{mode}.console")
    if mode == "qemu":
        if b.QEMU is None:
            b.fail("--modes qemu: qemu-system-x86_64 is not installed")
        drive = []
        if disk is not None:
            drive = ["-drive", f"id=d0,file={disk},format=raw,if=none,cache=writeback"
                     + (",readonly=on" if disk_read_only else ""),
                     "-device", "virtio-blk-device,drive=d0"]
        # kernel-irqchip=on: the I/O APIC in KVM, as rehome has it. microvm's default (split: the
        # I/O APIC in QEMU) left most of the idle guest's wake-ups to the next timer tick here.
        cmd = [b.QEMU, "-M", "microvm,acpi=off,kernel-irqchip=on", "-enable-kvm", "-cpu", "qemu64", "-m",
               f"{args.memory}M", "-smp", "1", "-nographic", "-nodefaults", "-no-reboot",
               "-serial", f"file:{serial}", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
               "-global", "virtio-mmio.force-legacy=false", "-kernel", b.GUEST, *drive,
               "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off",
               "-device", f"virtio-net-device,netdev=n0,mac={MAC}",
               "-append", f"{cmdline} cpus=1"]
        qmp_path = None
    else:
        qmp_path = os.path.join(work, "qmp.sock")
        if os.path.exists(qmp_path):
            os.unlink(qmp_path)
        extra = []
        if disk is not None:
            extra += ["--disk", disk, *(["--disk-read-only"] if disk_read_only else [])]
        extra += ["--netdev", f"tap,ifname={TAP},mac={MAC}", "--serial-file", serial,
                  "--qmp", qmp_path, "--hang-timeout-ms", str(args.hang_timeout_ms),
                  "--max-failovers", "1000000"]
        faults = [("--kill-active-every-ms", args.kill_active_every_ms)]
        if mode == "split":  # (verified execution has no planned switchover: all are active)
            faults.append(("--switchover-every-ms", args.switchover_every_ms))
        if faulty(mode):
            for flag, value in faults:
                if value:
                    extra += [flag, str(value)]
        if mode.startswith("verify-"):
            extra += ["--verify", mode[len("verify-"):]]
        cmd = b.rehome_cmd(cmdline, memory_mib=args.memory,
                           mode="monolithic" if mode == "monolithic" else "split", extra=extra)
    log = open(os.path.join(work, f"{mode}.stderr"), "w")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + start_timeout_s
    while True:
        text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
        if ready_line in text:
            break
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            b.fail(f"{mode}: the guest did not start serving: {text[-600:]} "
                   f"{open(log.name).read()[-1000:]}")
        time.sleep(0.02)
    qmp = Qmp(qmp_path, deadline) if qmp_path else None
    return proc, qmp, log, serial


def start_vm(mode, args, work):
    proc, qmp, log, _ = start_service_vm(mode, args, work, "workload=netecho steps=0",
                                         "netecho serving")
    return proc, qmp, log


def stop_vm(proc, qmp):
    if qmp is not None:
        qmp.command("quit")
    else:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_run(mode, args, work):
    proc, qmp, log = start_vm(mode, args, work)
    pinger = Pinger(args.interval_ms / 1000, args.count)
    pinger.warm_up(time.time() + 30)
    stop_hangs = threading.Event()

    def hang_loop():  # QMP fault injection: SIGSTOP the active L1
        while not stop_hangs.wait(args.hang_every_ms / 1000):
            qmp.command("__org.rehome_inject-fault", {"target": "active", "kind": "hang"})

    hanger = None
    if faulty(mode) and args.hang_every_ms:
        hanger = threading.Thread(target=hang_loop, daemon=True)
        hanger.start()
    pinger.run(drain_s=max(2.0, 3 * args.hang_timeout_ms / 1000))
    stop_hangs.set()
    if hanger:
        hanger.join()
    events = list(qmp.events) if qmp else []
    stop_vm(proc, qmp)
    log.close()
    result = analyze(pinger, events, args.interval_ms, args.hang_timeout_ms)
    result["mode"] = mode
    return result


def fmt_us(v):
    return "-" if v is None else f"{v:.0f}"


def fmt_ms(v):
    return "-" if v is None else f"{v:.2f}"


def summarize(r):
    f = r["failovers"]
    line = (f"| {r['mode']} | {r['sent']} | {r['echoed']} | {r['lost']} | {r['duplicated']} | "
            f"{r['reordered']} | {fmt_us(r['rtt_mean_us'])} | {fmt_us(r['rtt_p50_us'])} | "
            f"{fmt_us(r['rtt_p99_us'])} | {fmt_us(r['rtt_max_us'])} | "
            f"{fmt_ms(r['quiet_gap_p99_ms'])} / {fmt_ms(r['quiet_gap_max_ms'])} | {len(f)} |")
    for kind in ("crash", "hang", "switchover"):
        gaps = [x["interruption_ms"] for x in f if x["kind"] == kind and x["interruption_ms"]]
        totals = [x["rehome_total_us"] / 1000 for x in f
                  if x["kind"] == kind and x["rehome_total_us"] is not None]
        stalls = [x for x in f if x["kind"] == kind and x.get("send_gap_ms", 0) > 2]
        if gaps:
            line += (f" {kind}: n={len(gaps)} median {b.median(gaps):.2f} ms, p99 "
                     f"{b.percentile(gaps, 99):.2f} ms, max {max(gaps):.2f} ms (rehome's own "
                     f"failover median {b.median(totals):.2f} ms; the client itself paused "
                     f"sending > 2 ms in {len(stalls)});")
    return line


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(results), 1, figsize=(12, 3.2 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        t0 = r["first_send_ns"]
        seqs = sorted(r["arrivals"])
        ax.plot([(r["sends"][s] - t0) / 1e9 for s in seqs],
                [(r["arrivals"][s] - r["sends"][s]) / 1e3 for s in seqs], ",", color="tab:blue")
        lost = [s for s in r["sends"] if s not in r["arrivals"]]
        if lost:
            ax.plot([(r["sends"][s] - t0) / 1e9 for s in lost], [1e5] * len(lost), "x",
                    color="red", label=f"lost ({len(lost)})")
        colors = {"crash": "tab:red", "hang": "tab:orange", "switchover": "tab:green"}
        for kind, color in colors.items():
            xs = [((f["detected"] or f["time"]) * 1e9 - t0) / 1e9 for f in r["failovers"]
                  if f["kind"] == kind]
            for i, x in enumerate(xs):
                ax.axvline(x, color=color, alpha=0.35, linewidth=0.8,
                           label=f"{kind} failover ({len(xs)})" if i == 0 else None)
        ax.set_yscale("log")
        ax.set_ylabel("round trip (us)")
        ax.set_title(f"{r['mode']}: {r['sent']} datagrams, {r['lost']} lost, "
                     f"{r['duplicated']} duplicated, {len(r['failovers'])} failovers")
        ax.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("time since the first datagram (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="split",
                        help="comma-separated: split, monolithic, qemu, verify-dual, "
                        "verify-triple (alternated per round)")
    parser.add_argument("--reps", type=int, default=1, help="rounds over --modes")
    parser.add_argument("--count", type=int, default=5000, help="datagrams per run")
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--memory", type=int, default=64, help="guest RAM in MiB")
    parser.add_argument("--kill-active-every-ms", type=int, default=0)
    parser.add_argument("--hang-every-ms", type=int, default=0)
    parser.add_argument("--switchover-every-ms", type=int, default=0)
    parser.add_argument("--hang-timeout-ms", type=int, default=50)
    parser.add_argument("--plot", help="PNG of the round-trip time over each run")
    parser.add_argument("--json", help="write every run's figures and failovers here")
    parser.add_argument("--datagrams",
                        help="write every datagram's send and echo time (ns) per run here (JSON)")
    parser.add_argument("--realtime", action="store_true",
                        help="run the client's threads SCHED_FIFO (see realtime_thread)")
    parser.add_argument("--realtime-sender", action="store_true",
                        help="run only the sending thread SCHED_FIFO: it keeps its 1 ms schedule "
                             "on a host whose CPUs the VMM shares, as a client on another host "
                             "would; it wakes once per datagram and takes little CPU")
    parser.add_argument("--list", action="store_true",
                        help="print every failover with its service interruption")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a datagram was lost or duplicated, or faults were asked "
                             "for and no failover was seen")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("split", "monolithic", "qemu", "verify-dual", "verify-triple"):
            parser.error(f"--modes: unknown mode {m!r}")
    if args.count < 1 or args.interval_ms <= 0:
        parser.error("--count and --interval-ms must be positive")
    REALTIME[0] = args.realtime
    REALTIME_SENDER[0] = args.realtime_sender
    b.check_inputs()
    enter_netns()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.reps):
            for mode in modes:
                results.append(one_run(mode, args, work))
    faults = ", ".join(f"{k} {v} ms" for k, v in (
        ("kill every", args.kill_active_every_ms), ("hang every", args.hang_every_ms),
        ("switchover every", args.switchover_every_ms)) if v) or "no faults"
    print(f"netping: {args.count} datagrams every {args.interval_ms} ms per run, "
          f"{args.memory} MiB guest, {faults} (split and verify-*), hang timeout "
          f"{args.hang_timeout_ms} ms, load average {os.getloadavg()[0]:.2f}")
    print("| mode | sent | echoed | lost | dup | reordered | rtt mean us | p50 us | p99 us | "
          "max us | gap between echoes away from failovers, p99 / max ms | failovers | "
          "service interruption per failover |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(summarize(r))
    if args.list:
        for r in results:
            for f in r["failovers"]:
                phases = ", ".join(f"{k} {v / 1000:.2f}" for k, v in f["phases_us"].items())
                gap = "-" if f["interruption_ms"] is None else f"{f['interruption_ms']:.2f} ms"
                total = f["rehome_total_us"] / 1000 if f["rehome_total_us"] is not None else 0
                t = f["detected"] or f["time"]
                print(f"  {r['mode']} +{t - r['first_send_ns'] / 1e9:7.3f} s  "
                      f"{f['cause'][:60]:60}  interruption {gap:>9}  (rehome: {total:.2f} ms; "
                      f"{phases}; client's longest pause between sends "
                      f"{f.get('send_gap_ms', 0):.2f} ms)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump([{k: v for k, v in r.items() if k not in ("sends", "arrivals", "rtt_us")}
                       for r in results], out, indent=1)
    if args.datagrams:
        with open(args.datagrams, "w") as out:
            json.dump([{"mode": r["mode"], "sends": r["sends"], "arrivals": r["arrivals"],
                        "failovers": r["failovers"]} for r in results], out)
    if args.plot:
        plot(results, args.plot)
        print(f"netping: plot written to {args.plot}")
    if args.check:
        bad = [r for r in results if r["lost"] or r["duplicated"]]
        want = args.kill_active_every_ms or args.hang_every_ms or args.switchover_every_ms
        silent = [r for r in results if want and faulty(r["mode"]) and not r["failovers"]]
        if bad or silent:
            print("netping: check FAILED: " + "; ".join(
                [f"{r['mode']}: {r['lost']} lost, {r['duplicated']} duplicated" for r in bad] +
                [f"{r['mode']}: no failover seen" for r in silent]), file=sys.stderr)
            sys.exit(1)
        print("netping: check passed: no datagram lost or duplicated")


if __name__ == "__main__":
    main()
