#!/usr/bin/env python3
"""End-to-end test of the guest's `oltp` service (issue 15): the TPC-C analog on a real KVM
guest, a real tap and a real disk image, through failures.

Per mode (split with the active L1 SIGKILLed every --kill-ms, monolithic, and verified execution
`verify-dual` with replica 0 SIGKILLed the same way: the disk and the network device together
under the vote) it loads a small
database image (bench/oltp/oltp_load.py), generates a request file with malformed datagrams
(bench/oltp/make_requests.py), and runs three phases against the same image, each with a fresh
`rehome run`: (1) a few hundred transactions, retries of already-answered ids (must return the
recorded response, not apply again), then a clean stop; (2) more transactions while the whole
rehome is SIGKILLed at a random moment (the image then holds only what was written); (3) a
restart (the guest replays its log) that resends the last ids of phase 2 and some new ones.
After each phase the checker (bench/oltp/oltp_check.py) replays the log and must find the
database consistent and every acknowledged transaction in it exactly once. Malformed datagrams
must get status 1 and the guest must keep serving. The client is a minimal one inside this test
(pipelined window, retries reuse the id; it writes the load generator's response-log format).

Exit status 0 pass, 1 fail (one `oltp_service_test: FAIL ...` line), 77 skip (no /dev/kvm, not
root, no namespace/tap permission), 2 bad usage.
"""
import argparse
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "oltp"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import oltp_format as f  # noqa: E402
import make_requests as mr  # noqa: E402
import oltp_check as oc  # noqa: E402
import netping  # noqa: E402

GUEST_IP, HOST_IP, TAP, MAC = "10.0.2.15", "10.0.2.1", "rholtp0", "52:54:00:12:34:57"
LOG_REC = struct.Struct("<QIIqqHHI")
CLIENT_BASE = 1 << 32  # the test's own client uses ids from here (rehome-loadgen's are 1..n)


def skip(msg):
    print(f"oltp_service_test: SKIP {msg}")
    sys.exit(77)


LIVE = []  # running Vms, killed on failure


def fail(msg):
    print(f"oltp_service_test: FAIL {msg}")
    for vm in LIVE:
        vm.kill()
    sys.exit(1)


def enter_netns():
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("no usable /dev/kvm")
    netping.enter_netns(TAP)  # exits 77 with a one-line reason where the host forbids it


class Client:
    """Sends request-file records in order with a window of outstanding requests; send number k
    (counted across phases) gets request id k + 1 and record index k % count; a request without
    an answer after timeout_s is sent again with the same id. Logs every send in the load
    generator's RHLG format (latency -1 = never answered)."""

    def __init__(self, records, window=4, timeout_s=0.25):
        self.records = records
        self.window = window
        self.timeout_s = timeout_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST_IP, 0))
        self.log = []  # [id, record_index, retries, send_ns, latency_ns, status, body, repeat?]
        self.by_id = {}

    def send_ids(self, ids, stop_after_acks=None, deadline_s=60.0, on_ack=None):
        """Sends the (id, record_index) pairs; returns when all are answered, or (with
        stop_after_acks) once that many were answered, calling on_ack(n) after each answer."""
        pending = list(ids)
        out = {}  # id -> [log entry, last send time]
        by_id = self.by_id
        deadline = time.monotonic() + deadline_s
        acks = 0
        while pending or out:
            if stop_after_acks is not None and acks >= stop_after_acks:
                return acks
            now = time.monotonic()
            if now > deadline:
                fail(f"no answer for ids {sorted(out)[:10]} within {deadline_s} s")
            while pending and len(out) < self.window:
                rid, idx = pending.pop(0)
                entry = by_id.get(rid)
                if entry is None:
                    entry = [rid, idx, 0, time.monotonic_ns(), -1, 0, b""]
                    by_id[rid] = entry
                    self.log.append(entry)
                else:  # a resend of an id logged before (a retry across phases)
                    entry[2] += 1
                out[rid] = [entry, now]
                self._send(rid, idx)
            r, _, _ = select.select([self.sock], [], [], 0.02)
            if r:
                data, _ = self.sock.recvfrom(2048)
                if len(data) < 16:
                    continue
                magic, version, status, rid = f.SVC_HDR.unpack_from(data)
                if magic != f.RESP_MAGIC or rid not in out:
                    continue
                entry = out.pop(rid)[0]
                if entry[4] < 0:
                    entry[4] = time.monotonic_ns() - entry[3]
                    entry[5], entry[6] = status, data[16:]
                else:
                    entry.append((status, data[16:]))  # a repeat's answer, compared later
                acks += 1
                if on_ack:
                    on_ack(acks)
            now = time.monotonic()
            for rid, slot in out.items():
                if now - slot[1] > self.timeout_s:
                    slot[1] = now
                    slot[0][2] += 1
                    self._send(rid, slot[0][1])
        return acks

    def _send(self, rid, idx):
        rec = self.records[idx]
        if len(rec) >= 16:
            rec = rec[:8] + struct.pack("<Q", rid) + rec[16:]
        self.sock.sendto(rec, (GUEST_IP, f.OLTP_PORT))

    def write_log(self, path):
        """The load generator's response log format (docs/service-protocol.md), CRC included."""
        out = bytearray(b"RHLG" + struct.pack("<I", 1))
        for e in sorted(self.log, key=lambda e: e[0]):
            out += LOG_REC.pack(e[0], e[1], e[2], e[3], e[4], e[5], 0, len(e[6])) + e[6]
        out += struct.pack("<I", zlib.crc32(out))
        with open(path, "wb") as fh:
            fh.write(out)


class Vm:
    def __init__(self, args, image, work, name, mode, kill_ms, steps=0):
        self.serial = os.path.join(work, f"{name}.console")
        self.errlog = open(os.path.join(work, f"{name}.stderr"), "w")
        cmd = [args.rehome, "run", "--kernel", args.guest, "--memory", "64", "--disk", image,
               "--netdev", f"tap,ifname={TAP},mac={MAC}", "--cmdline", f"workload=oltp steps={steps}",
               "--serial-file", self.serial, "--mode",
               "monolithic" if mode == "monolithic" else "split"]
        if mode.startswith("verify-"):  # verified execution: replica 0 is the one killed
            cmd += ["--verify", mode[len("verify-"):]]
        if mode != "monolithic":
            cmd += ["--kill-active-every-ms", str(kill_ms), "--max-failovers", "1000000"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.errlog,
                                     stderr=self.errlog, start_new_session=True)
        LIVE.append(self)
        deadline = time.monotonic() + 60
        while "oltp serving" not in self.console():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                fail(f"{name}: the guest did not start serving: {self.console()[-600:]!r}")
            time.sleep(0.02)

    def console(self):
        try:
            with open(self.serial, errors="replace") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def failovers(self):
        with open(self.errlog.name, errors="replace") as fh:
            return sum(1 for line in fh if "rehome: failover #" in line)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        LIVE.remove(self)

    def kill(self):
        """SIGKILL of the whole rehome (its process group: L0 and every L1)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)


def check(args, image, requests, logs, what):
    cmd = [sys.executable, os.path.join(ROOT, "bench", "oltp", "oltp_check.py"), "--image", image]
    if requests:
        cmd += ["--requests", requests]
    for log in logs:
        cmd += ["--log", log]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{what}: checker: {p.stdout.strip()} {p.stderr.strip()[-800:]}")
    print(f"  {what}: {p.stdout.strip()}")


def fuzz(args, mode, work, rng):
    """Header-valid datagrams with random kinds, lengths and field values (biased to the edges
    of the valid ranges, so some execute): every one must be answered, the guest must keep
    serving, and the database must stay consistent."""
    image = os.path.join(work, f"{mode}-fuzz.img")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "oltp", "oltp_load.py"), "--out",
                    image, "--capacity-txns", "2000", "--wal-mib", "1", "--seed",
                    str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    edges = [0, 1, 2, 5, 9, 10, 11, 15, 16, 20, 21, 99, 100, 300, 301, 1000, 1001, 500000,
             0x7fffffff, 0xffffffff]
    records = []
    for base in mr.generate(args.fuzz, rng.getrandbits(32), mr.run_constants(image)):
        rec = bytearray(base)
        for _ in range(rng.randint(0, 3)):  # 1 in 4 stays valid
            what = rng.randint(0, 9)
            if what == 0:
                rec = rec[:rng.randint(16, len(rec))]              # truncate
            elif what == 1:
                rec += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40)))
            elif what == 2:
                struct.pack_into("<H", rec, 6, rng.choice([0, 6, 7, 0xffff, rng.randint(1, 5)]))
            elif len(rec) >= 20:                                   # a body word to an edge
                off = 16 + 4 * rng.randint(0, (len(rec) - 20) // 4)
                struct.pack_into("<I", rec, off, rng.choice(edges) if rng.random() < 0.8
                                 else rng.getrandbits(32))
        records.append(bytes(rec))
    vm = Vm(args, image, work, f"{mode}-fuzz", mode, args.kill_ms)
    client = Client(records)
    client.send_ids([((1 << 40) + k, k) for k in range(len(records))])
    statuses = sorted({e[5] for e in client.log})
    probe = Client([mr.generate(1, 1, mr.run_constants(image))[0]])
    probe.send_ids([(1, 0)])
    if probe.log[0][5] not in (f.ST_OK, f.ST_ABORTED):
        fail(f"{mode}: after fuzzing, a valid transaction got status {probe.log[0][5]}")
    vm.stop()
    print(f"  {mode} fuzz: {len(records)} datagrams answered, statuses {statuses}")
    check(args, image, None, [], f"{mode} fuzz")


def run_mode(args, mode, work):
    rng = random.Random(args.seed)
    image = os.path.join(work, f"{mode}.img")
    reqfile = os.path.join(work, f"{mode}.reqs")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "oltp", "oltp_load.py"), "--out",
                    image, "--capacity-txns", "4000", "--wal-mib", "1", "--seed",
                    str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    records = mr.generate(args.count, args.seed, mr.run_constants(image), args.malformed)
    mr.write_requests(reqfile, records)
    n = len(records)
    bad = {i for i, r in enumerate(records) if not valid_shape(r)}
    client = Client(records)
    t0 = time.monotonic()
    ck = [0]  # the client's next send number: request id CLIENT_BASE + k, record k % n

    def client_ids(count):
        ids = [(CLIENT_BASE + k, k % n) for k in range(ck[0], ck[0] + count)]
        ck[0] += count
        return ids

    # Phase 1: the file once (rehome-loadgen when built, ids 1..n), in split mode more until the
    # active L1 has been killed a few times under load, repeats of answered ids, clean stop.
    failovers = 0
    logs1 = []
    vm = Vm(args, image, work, f"{mode}-1", mode, rng.randint(args.kill_ms // 2, args.kill_ms))
    if args.loadgen:
        lg_log = os.path.join(work, f"{mode}-1.loadgen.log")
        p = subprocess.run([args.loadgen, "--target", f"{GUEST_IP}:{f.OLTP_PORT}", "--requests",
                            reqfile, "--out", lg_log, "--closed", "4", "--count", str(n),
                            "--timeout-ms", "250"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            fail(f"{mode}: rehome-loadgen exit {p.returncode}: {p.stderr.strip()[-300:]}")
        first = {e[0]: (e[1], e[3], e[4]) for e in oc.read_log(lg_log)}
        if any(e[2] < 0 for e in oc.read_log(lg_log)):
            fail(f"{mode}: rehome-loadgen left requests unanswered: {p.stdout.strip()}")
        logs1.append(lg_log)
    else:
        client.send_ids(client_ids(n))
        first = {e[0]: (e[1], e[5], e[6]) for e in client.log}
    deadline = time.monotonic() + 30
    while mode != "monolithic" and vm.failovers() < args.min_failovers:
        if time.monotonic() > deadline:
            fail(f"{mode}: {vm.failovers()} failovers in 30 s (want {args.min_failovers})")
        client.send_ids(client_ids(50))
    first.update({e[0]: (e[1], e[5], e[6]) for e in client.log})
    # Repeats (as after a lost answer): the recorded answer, byte for byte, nothing applied.
    again = rng.sample(sorted(first), 20)
    probe = Client(records)
    probe.send_ids([(rid, first[rid][0]) for rid in again])
    for e in probe.log:
        if (e[5], e[6]) != first[e[0]][1:]:
            fail(f"{mode}: a repeat of id {e[0]} got {e[5]} {e[6][:24].hex()}, the first answer "
                 f"was {first[e[0]][1]} {first[e[0]][2][:24].hex()}")
    probe.sock.close()
    for rid, (idx, status, _) in first.items():
        if (idx in bad) != (status == f.ST_MALFORMED):
            fail(f"{mode}: record {idx} (malformed={idx in bad}) got status {status}")
    # A datagram shorter than a header: status 1 with request id 0, and the guest serves on.
    client.sock.sendto(b"RHSQ\x01", (GUEST_IP, f.OLTP_PORT))
    r, _, _ = select.select([client.sock], [], [], 5)
    data = client.sock.recvfrom(2048)[0] if r else b""
    if len(data) < 16 or f.SVC_HDR.unpack_from(data)[2:] != (f.ST_MALFORMED, 0):
        fail(f"{mode}: a 5-byte datagram got {data[:16].hex()!r}")
    ok = sum(1 for v in first.values() if v[1] == f.ST_OK)
    if ok < (len(first) - args.malformed * (len(first) + n - 1) // n) * 0.95:
        fail(f"{mode}: only {ok} of {len(first)} transactions ok")
    vm.stop()
    failovers += vm.failovers()
    log1 = os.path.join(work, f"{mode}-1.log")
    client.write_log(log1)
    logs1.append(log1)
    print(f"  {mode} phase 1: {len(first)} sent ({'rehome-loadgen' if args.loadgen else 'client'}"
          f"{' + client' if args.loadgen and client.log else ''}), {ok} ok, statuses "
          f"{sorted(set(v[1] for v in first.values()))}, {time.monotonic() - t0:.1f} s")
    check(args, image, reqfile, logs1, f"{mode} phase 1 (clean stop)")

    # Phase 2: SIGKILL of the whole rehome at a random moment.
    vm = Vm(args, image, work, f"{mode}-2", mode, rng.randint(args.kill_ms // 2, args.kill_ms))
    kill_after = rng.randint(10, args.count // 2 - 10)
    phase2 = client_ids(args.count // 2)
    client.send_ids(phase2, stop_after_acks=kill_after)
    vm.kill()
    failovers += vm.failovers()
    log2 = os.path.join(work, f"{mode}-2.log")
    client.write_log(log2)
    print(f"  {mode} phase 2: killed after {kill_after} answers, {time.monotonic() - t0:.1f} s")
    check(args, image, reqfile, logs1[:-1] + [log2], f"{mode} phase 2 (SIGKILL)")

    # Phase 3: restart (log replay in the guest), resend the last ids of phase 2, new ones.
    unanswered = [e for e in client.log if e[4] < 0]
    vm = Vm(args, image, work, f"{mode}-3", mode, rng.randint(args.kill_ms // 2, args.kill_ms))
    if "oltp recovered" not in vm.console():
        fail(f"{mode}: no recovery line")
    sent2 = {rid for rid, _ in phase2}
    resend = sorted({e[0] for e in client.log if e[0] in sent2})[-8:]
    client.send_ids([(rid, (rid - CLIENT_BASE) % n) for rid in resend])
    client.send_ids(client_ids(40))
    vm.stop()
    failovers += vm.failovers()
    log3 = os.path.join(work, f"{mode}-3.log")
    client.write_log(log3)
    rec_line = [l for l in vm.console().splitlines() if "oltp recovered" in l][0]
    print(f"  {mode} phase 3: {len(unanswered)} unanswered before the kill, "
          f"{rec_line.split(': ', 1)[1]}, {time.monotonic() - t0:.1f} s")
    check(args, image, reqfile, logs1[:-1] + [log3], f"{mode} phase 3 (after recovery)")

    # Phase 4: steps=N: the guest ends by itself after N requests with a checkpoint (nothing
    # left to replay) and its done line.
    vm = Vm(args, image, work, f"{mode}-4", mode, args.kill_ms, steps=30)
    client.send_ids(client_ids(30))
    deadline = time.monotonic() + 30
    while vm.proc.poll() is None:
        if time.monotonic() > deadline:
            fail(f"{mode}: the guest did not end after steps=30")
        time.sleep(0.05)
    LIVE.remove(vm)
    failovers += vm.failovers()
    done = [l for l in vm.console().splitlines() if "oltp done" in l]
    if vm.proc.returncode != 0 or not done or "steps=30 " not in done[0]:
        fail(f"{mode}: steps=30 ended with exit {vm.proc.returncode}: {vm.console()[-300:]!r}")
    log4 = os.path.join(work, f"{mode}-4.log")
    client.write_log(log4)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "oltp", "oltp_check.py"),
                        "--image", image, "--json"], capture_output=True, text=True)
    if p.returncode != 0 or '"log_entries_read": 0' not in p.stdout:
        fail(f"{mode}: after a clean end the log should be empty: {p.stdout[-400:]}")
    check(args, image, reqfile, logs1[:-1] + [log4], f"{mode} phase 4 (steps=30, clean end)")
    fuzz(args, mode, work, rng)
    if mode != "monolithic" and failovers == 0:
        fail(f"{mode}: no failover happened (the active L1 was never killed)")
    print(f"  {mode}: {failovers} failovers, {time.monotonic() - t0:.1f} s in all")


def valid_shape(rec):
    """True for records make_requests generated as transactions (not --malformed ones)."""
    if len(rec) < 16:
        return False
    magic, version, kind, _ = f.SVC_HDR.unpack_from(rec)
    if magic != f.REQ_MAGIC or version != 1:
        return False
    body = rec[16:]
    if kind == f.K_NEW_ORDER:
        if len(body) < 16:
            return False
        w, d, c, cnt = f.NO_REQ.unpack_from(body)
        return 5 <= cnt <= 15 and len(body) == 16 + 12 * cnt and 1 <= d <= 10
    if kind == f.K_PAYMENT:
        return len(body) == f.PAY_REQ.size and 1 <= f.PAY_REQ.unpack(body)[1] <= 10
    sizes = {f.K_ORDER_STATUS: f.OS_REQ.size, f.K_DELIVERY: f.DEL_REQ.size,
             f.K_STOCK_LEVEL: f.SL_REQ.size}
    return len(body) == sizes.get(kind, -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rehome", required=True)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--loadgen", help="rehome-loadgen for phase 1 (default: the test's client)")
    ap.add_argument("--modes", default="split,monolithic,verify-dual",
                    help="split, monolithic, verify-dual, verify-triple (comma-separated)")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--malformed", type=int, default=6)
    ap.add_argument("--kill-ms", type=int, default=300)
    ap.add_argument("--min-failovers", type=int, default=3, help="split mode, phase 1")
    ap.add_argument("--fuzz", type=int, default=300, help="random datagrams per mode")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if args.count < 60:
        ap.error("--count must be >= 60")
    if args.loadgen and not os.path.exists(args.loadgen):
        print(f"oltp_service_test: {args.loadgen} is not built; phase 1 uses the test's client")
        args.loadgen = None
    for path in (args.rehome, args.guest):
        if not os.path.exists(path):
            skip(f"{path} is not built")
    enter_netns()
    work = tempfile.mkdtemp(prefix="oltp-test-")
    print(f"oltp_service_test: seed {args.seed}, work {work}")
    for mode in args.modes.split(","):
        run_mode(args, mode, work)
    if not args.keep:
        subprocess.run(["rm", "-rf", work])
    print("oltp_service_test: PASS")


if __name__ == "__main__":
    main()
