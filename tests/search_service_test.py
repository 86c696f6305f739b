#!/usr/bin/env python3
"""search_service_test: the test guest's `search` workload end to end on a real KVM guest.

Builds a small index (bench/search/build_index.py, the copyright corpus, --max-docs 300) in a
temporary directory, writes 400 queries with malformed ones among them
(bench/search/make_queries.py), then for --mode split and --mode monolithic boots the guest
(`workload=search`, a 256 KiB block cache so blocks are evicted and re-read) in a fresh network
namespace with a tap, sends every query with rehome-loadgen (open loop, retries reuse the
request id), and checks the replies with bench/search/oracle.py: 0 wrong, 0 unanswered. In split
mode the active L1 is SIGKILLed three times (QMP __org.rehome_inject-fault) while queries flow,
and the test requires three completed failovers. It also sends a datagram shorter than the
header (no reply expected) and checks that the guest keeps serving. Finally (`corrupt`) it boots
the guest on a copy of the image with one byte of a postings block flipped: queries that need
that block get status 4 (failed) every time, others are answered, and the done line counts the
CRC errors (those probes use a minimal sequential client). The oracle is the one the benchmarks
use, on the load generator's response log.

Environment: REHOME_BUILD (the build directory holding `rehome`, default build),
REHOME_GUEST (the guest ELF, default $REHOME_BUILD/guest/rehome-guest.elf), SEARCH_TEST_WORKDIR
(optional: keep the image, requests, logs and consoles there). Arguments: the modes to run
(default: split monolithic).
Exit 0 on success, 1 with a reason on a failure, 77 (one line) when the host lacks /dev/kvm,
root, or permission for network namespaces and taps.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOLS = os.path.join(ROOT, "bench", "search")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import netping  # noqa: E402
import service_files as sf  # noqa: E402
BUILD = os.environ.get("REHOME_BUILD", os.path.join(ROOT, "build"))
REHOME = os.path.join(BUILD, "rehome")
GUEST = os.environ.get("REHOME_GUEST", os.path.join(BUILD, "guest", "rehome-guest.elf"))
LOADGEN = os.path.join(BUILD, "bench", "loadgen", "rehome-loadgen")
GUEST_IP, HOST_IP, PORT, TAP, MAC = "10.0.2.15", "10.0.2.1", 8081, "rhsearch0", "52:54:00:12:34:56"
QUERIES, MALFORMED, KILLS = 400, 22, 3
RESPONSE_MAGIC = 0x52534852
LOG_RECORD = struct.Struct("<QIIqqHHI")


def skip(why):
    print(f"search_service_test: skipped: {why}")
    sys.exit(77)


def fail(why):
    print(f"search_service_test: FAIL: {why}")
    sys.exit(1)


def enter_netns():
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("no usable /dev/kvm")
    netping.enter_netns(TAP)  # exits 77 with a one-line reason where the host forbids it


class Qmp:
    """Minimal QMP client recording events."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    fail(f"QMP socket {path} did not appear")
                time.sleep(0.02)
        self.file = self.sock.makefile("rwb")
        self.events, self.replies = [], []
        self.cv = threading.Condition()
        json.loads(self.file.readline())
        threading.Thread(target=self._reader, daemon=True).start()
        self.command("qmp_capabilities")

    def _reader(self):
        try:
            for line in self.file:
                msg = json.loads(line)
                with self.cv:
                    (self.events if "event" in msg else self.replies).append(msg)
                    self.cv.notify_all()
        except (OSError, ValueError):
            pass

    def command(self, name, arguments=None, timeout=10):
        msg = {"execute": name, **({"arguments": arguments} if arguments else {})}
        with self.cv:
            before = len(self.replies)
            self.file.write(json.dumps(msg).encode() + b"\n")
            self.file.flush()
            if not self.cv.wait_for(lambda: len(self.replies) > before, timeout):
                fail(f"QMP {name}: no reply")
            return self.replies[before]

    def count(self, event):
        with self.cv:
            return sum(1 for e in self.events if e["event"] == event)

    def wait_standby(self, timeout):
        """Polls __org.rehome_query-l1s until a standby L1 is ready."""
        deadline = time.monotonic() + timeout
        while True:
            l1s = self.command("__org.rehome_query-l1s").get("return", [])
            if any(l1.get("role") == "standby" for l1 in l1s):
                return
            if time.monotonic() > deadline:
                fail(f"no standby L1 within {timeout} s: {l1s}")
            time.sleep(0.05)

    def wait_count(self, event, n, timeout):
        with self.cv:
            if not self.cv.wait_for(lambda: sum(1 for e in self.events
                                                if e["event"] == event) >= n, timeout):
                fail(f"waited {timeout} s for {n} {event} events, got {self.count(event)}")


def read_requests(path):
    return sf.read_request_file(path)


class Client:
    """Sequential UDP client: one request in flight, resent (same id) every timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST_IP, 0))

    def ask(self, dgram, rid, timeout=0.2, give_up=20.0):
        """(status, body, retries, latency_ns) or (None, b"", retries, -1)."""
        dgram = dgram[:8] + struct.pack("<Q", rid) + dgram[16:] if len(dgram) >= 16 else dgram
        t0 = time.monotonic_ns()
        retries = 0
        self.sock.sendto(dgram, (GUEST_IP, PORT))
        next_send = time.monotonic() + timeout
        end = time.monotonic() + give_up
        while time.monotonic() < end:
            self.sock.settimeout(max(0.001, min(next_send, end) - time.monotonic()))
            try:
                data = self.sock.recv(2048)
            except socket.timeout:
                if time.monotonic() >= next_send:
                    self.sock.sendto(dgram, (GUEST_IP, PORT))
                    retries += 1
                    next_send = time.monotonic() + timeout
                continue
            if len(data) < 16:
                continue
            magic, version, status, got = struct.unpack_from("<IHHQ", data, 0)
            if magic == RESPONSE_MAGIC and version == 1 and got == rid:
                return status, data[16:], retries, time.monotonic_ns() - t0
        return None, b"", retries, -1


def run_mode(mode, work, image, requests_path, requests):
    serial = os.path.join(work, f"{mode}.console")
    qmp_path = os.path.join(work, f"{mode}.qmp")
    stderr = open(os.path.join(work, f"{mode}.stderr"), "w")
    enter_tap = []  # the namespace is already ours
    cmd = [REHOME, "run", "--kernel", GUEST, "--memory", "64", "--mode", mode, "--disk", image,
           "--disk-read-only", "--netdev", f"tap,ifname={TAP},mac={MAC}", "--serial-file",
           serial, "--qmp", qmp_path, "--cmdline", "workload=search steps=0 cache_kib=256",
           *enter_tap]
    if mode == "split":
        cmd += ["--max-failovers", "100"]
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
            if "search serving" in text:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                fail(f"{mode}: the guest did not start serving (rc {proc.poll()}): "
                     f"{text[-600:]!r} {open(stderr.name).read()[-600:]!r}")
            time.sleep(0.02)
        qmp = Qmp(qmp_path, time.monotonic() + 10)
        # The queries, from rehome-loadgen (open loop, one every 20 ms: 8 s, room for three kills
        # and standby starts under ASan; a reply missing after 200 ms is asked again with the
        # same id), while the active L1 is killed KILLS times.
        log_path = os.path.join(work, f"{mode}.log")
        loadgen = subprocess.Popen(
            [LOADGEN, "--target", f"{GUEST_IP}:{PORT}", "--requests", requests_path, "--out",
             log_path, "--clients", "1", "--interval-ms", "20", "--count", str(QUERIES),
             "--timeout-ms", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for i in range(KILLS if mode == "split" else 0):
                qmp.wait_standby(30)
                if loadgen.poll() is not None:
                    fail(f"{mode}: the queries ended before kill {i + 1}: raise QUERIES")
                reply = qmp.command("__org.rehome_inject-fault",
                                    {"target": "active", "kind": "kill"})
                if "error" in reply:
                    fail(f"{mode}: inject-fault: {reply}")
                qmp.wait_count("__org.rehome_FAILOVER_COMPLETED", i + 1, 30)
            out, err = loadgen.communicate(timeout=120)
        finally:
            if loadgen.poll() is None:
                loadgen.kill()
                loadgen.wait()
        if loadgen.returncode != 0:
            fail(f"{mode}: rehome-loadgen exited {loadgen.returncode}: {err.strip()}")
        summary = json.loads(out.strip().splitlines()[-1])
        client = Client()
        # A datagram shorter than the header gets no reply; the guest goes on serving.
        client.sock.sendto(b"RHSQ-short", (GUEST_IP, PORT))
        client.sock.settimeout(0.3)
        try:
            junk = client.sock.recv(2048)
            fail(f"{mode}: a 10-byte datagram was answered: {junk!r}")
        except socket.timeout:
            pass
        after = client.ask(requests[0], QUERIES + 1)
        if after[0] is None:
            fail(f"{mode}: no answer after the short datagram")
        if mode == "split":
            qmp.wait_count("__org.rehome_FAILOVER_COMPLETED", KILLS, 30)
        failovers = qmp.count("__org.rehome_FAILOVER_COMPLETED")
        elapsed = time.monotonic() - t_start
        qmp.command("quit")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    text = open(serial, errors="replace").read()
    if "search: request" in text:
        fail(f"{mode}: the guest reported failed requests: {text[-800:]!r}")
    verdict_json = os.path.join(work, f"{mode}.oracle.json")
    oracle = subprocess.run([sys.executable, os.path.join(TOOLS, "oracle.py"), image + ".json",
                             requests_path, log_path, "--json", verdict_json, "--require-all"],
                            capture_output=True, text=True, timeout=120)
    sys.stdout.write(f"{mode}: {oracle.stdout}")
    if oracle.returncode != 0:
        fail(f"{mode}: oracle: {oracle.stdout.strip()} {oracle.stderr.strip()[-800:]}")
    with open(verdict_json) as f:
        verdict = json.load(f)
    if verdict["checked"] != QUERIES or verdict["wrong"] or verdict["unanswered"]:
        fail(f"{mode}: {verdict}")
    stats = [line for line in text.splitlines() if "search stats" in line or "serving" in line]
    print(f"{mode}: {QUERIES} queries in {elapsed:.1f} s, failovers={failovers}, p99 "
          f"{summary['latency_us']['p99'] / 1e3:.2f} ms, {summary['retries']} retries; "
          f"{stats[-1] if stats else ''}")
    if mode == "split" and failovers < KILLS:
        fail(f"split: {failovers} failovers, want {KILLS}")


def dictionary(image):
    """[(term, postings_off, postings_bytes)] and the postings section's first block."""
    with open(image, "rb") as f:
        data = f.read()
    n_terms = struct.unpack_from("<I", data, 28)[0]
    dict_first, dict_blocks = struct.unpack_from("<II", data, 56)
    post_first = struct.unpack_from("<I", data, 72)[0]
    out = []
    for b in range(dict_blocks):
        for i in range(85):
            if len(out) == n_terms:
                break
            term, _df, _idf, off, n = struct.unpack_from("<24sIIQI", data, (dict_first + b) * 4096
                                                         + 48 * i)
            out.append((term.rstrip(b"\0"), off, n))
    return out, post_first


def query(kind, terms):
    body = bytes([len(terms)]) + b"".join(bytes([len(t)]) + t for t in terms)
    return struct.pack("<IHHQ", 0x51534852, 1, kind, 0) + body


def run_corrupt(work, image):
    """One flipped byte in a postings block: the queries that need it fail with status 4
    (every time: nothing corrupted is cached), the others are answered, the guest goes on."""
    terms, post_first = dictionary(image)
    victim = next(t for t in terms if t[2] > 0 and t[1] // 4096 == (t[1] + t[2] - 1) // 4096)
    bad_block = victim[1] // 4096
    other = next(t for t in terms if t[1] // 4096 > bad_block + 1)
    bad = os.path.join(work, "corrupt.img")
    with open(image, "rb") as f:
        data = bytearray(f.read())
    data[(post_first + bad_block) * 4096 + victim[1] % 4096] ^= 0x40
    with open(bad, "wb") as f:
        f.write(data)
    serial = os.path.join(work, "corrupt.console")
    cmd = [REHOME, "run", "--kernel", GUEST, "--memory", "64", "--mode", "monolithic", "--disk",
           bad, "--disk-read-only", "--netdev", f"tap,ifname={TAP},mac={MAC}", "--serial-file",
           serial, "--cmdline", "workload=search steps=5"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "search serving" not in (open(serial, errors="replace").read()
                                       if os.path.exists(serial) else ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                fail(f"corrupt: the guest did not start serving (rc {proc.poll()})")
            time.sleep(0.02)
        client = Client()
        want = [(query(1, [victim[0]]), 4), (query(2, [other[0]]), 0),
                (query(2, [other[0], victim[0]]), 4), (query(1, [victim[0]]), 4),
                (query(7, [other[0]]), 1)]
        for k, (dgram, status) in enumerate(want):
            got = client.ask(dgram, k + 1)
            if got[0] != status:
                fail(f"corrupt: query {k} ({dgram[16:]!r}) got status {got[0]}, want {status}")
        if proc.wait(timeout=30) != 0:
            fail(f"corrupt: rehome exited {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = [line for line in open(serial, errors="replace").read().splitlines()
            if "search done" in line]
    if not done or "failed=3" not in done[0] or "crc_errors=3" not in done[0]:
        fail(f"corrupt: unexpected done line {done}")
    print(f"corrupt: status 4 for the corrupted block, others answered; {done[0]}")


def main():
    for path in (REHOME, GUEST, LOADGEN):
        if not os.path.exists(path):
            fail(f"{path} is missing (set REHOME_BUILD / REHOME_GUEST)")
    enter_netns()
    keep = os.environ.get("SEARCH_TEST_WORKDIR")  # keep the files there (debugging)
    if keep:
        os.makedirs(keep, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="search_test.") as tmp:
        work = keep or tmp
        image = os.path.join(work, "index.img")
        requests_path = os.path.join(work, "queries.rhrq")
        for cmd in ([sys.executable, os.path.join(TOOLS, "build_index.py"), image, "--max-docs",
                     "300"],
                    [sys.executable, os.path.join(TOOLS, "make_queries.py"), image, requests_path,
                     "--count", str(QUERIES), "--malformed", str(MALFORMED), "--seed", "15"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                fail(f"{' '.join(cmd)}: {proc.stdout} {proc.stderr}")
        requests = read_requests(requests_path)
        modes = sys.argv[1:] or ["split", "monolithic", "corrupt"]
        for mode in modes:
            if mode == "corrupt":
                run_corrupt(work, image)
            else:
                run_mode(mode, work, image, requests_path, requests)
    print("search_service_test: OK")


if __name__ == "__main__":
    main()
