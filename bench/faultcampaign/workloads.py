"""Guest workloads a campaign can run, each with its host-side oracle.

A workload says how to run it (`rehome run` arguments, side processes such as the console peer),
how long a run takes, and what a host-side check finds wrong afterwards (`verify`: a list of
problems, empty when the run was correct). rehome's own checks (the counter oracle in the L1, the
guest's self-checks) show in the exit status; `verify` adds checks that do not trust any L1: the
digests recomputed on the host, the disk image read back, the console peer's view of the
requests. A new workload plugs in by adding a class to WORKLOADS; the network services (search, oltp) need
a network namespace with a tap, which campaign.py makes when a workload says needs_network.
"""
import json
import os
import re
import struct
import subprocess
import sys
import zlib

GUEST_SEED = 1  # the workloads' own seed; a run's fault seed is separate


class Workload:
    name = ""
    duration_s = 1.0  # a typical fault-free run (sets injection windows and deadlines)

    def __init__(self, build_dir, source_dir):
        self.build_dir = build_dir
        self.source_dir = source_dir

    def prepare(self, run_dir):
        """Creates the run's files; returns the extra `rehome run` arguments."""
        raise NotImplementedError

    def start_side(self, run_dir):
        """Starts side processes once rehome runs (a list of Popen; killed at the end)."""
        return []

    def verify(self, run_dir, serial, stderr):
        """Host-side checks after a run whose guest exited 0: a list of problems."""
        return []


def _mix64(x):
    """splitmix64's finaliser, as guest/workloads/block_pattern.h."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class Counter(Workload):
    """Two vCPUs step a hash chain and report every `report_every` steps; the L1's oracle checks
    each report. Host side: the final digests (serial) against a recomputation, and the number
    of reports rehome verified."""
    name = "counter"
    duration_s = 0.9
    cpus = 2
    steps = 16_000_000
    report_every = 100_000
    _digest_cache = {}

    def prepare(self, run_dir):
        return ["--cpus", str(self.cpus), "--cmdline",
                f"workload=counter seed={GUEST_SEED} steps={self.steps} "
                f"report_every={self.report_every}"]

    def _expected_digest_line(self, vcpu):
        key = (vcpu, GUEST_SEED, self.steps)
        if key not in self._digest_cache:
            tool = os.path.join(self.build_dir, "guest", "rehome_guest_counter_oracle")
            out = subprocess.run([tool, str(vcpu), str(GUEST_SEED), str(self.steps)],
                                 capture_output=True, text=True, timeout=120, check=True)
            self._digest_cache[key] = out.stdout.strip()
        return self._digest_cache[key]

    def verify(self, run_dir, serial, stderr):
        problems = []
        for vcpu in range(self.cpus):
            want = self._expected_digest_line(vcpu)
            if want not in serial:
                got = [l for l in serial.splitlines() if f"vcpu={vcpu} step=" in l]
                problems.append(f"vcpu {vcpu} digest: got {got[-1] if got else 'none'}")
        expected_reports = self.cpus * (self.steps // self.report_every)
        # split: "oracle: 320 reports verified, no violations"; monolithic: "oracle: counter: 2
        # vCPUs, 320 reports verified, steps ..., complete, no violations".
        m = re.search(r"oracle: (?:counter: \d+ vCPUs, )?(\d+) reports verified\b.*no violations",
                      stderr)
        if m is None:
            problems.append("no oracle summary from rehome")
        elif int(m.group(1)) != expected_reports:
            problems.append(f"oracle verified {m.group(1)} reports, want {expected_reports}")
        if f"counter done cpus={self.cpus} steps={self.steps}" not in serial:
            problems.append("no counter done line")
        return problems


class Blk(Workload):
    """vCPU 0 writes, reads back and flushes 4 KiB pattern blocks on virtio-blk. Host side: the
    image must hold, at every block the run wrote, exactly its last writer's well-formed block
    (magic, CRC, seed, iteration, index), and zeros everywhere else."""
    name = "blk"
    duration_s = 0.8
    steps = 2000
    image_bytes = 32 << 20

    def prepare(self, run_dir):
        image = os.path.join(run_dir, "disk.img")
        with open(image, "wb") as f:
            f.truncate(self.image_bytes)
        return ["--disk", image, "--cmdline", f"workload=blk seed={GUEST_SEED} steps={self.steps}"]

    def _last_writers(self):
        blocks = min(self.image_bytes // 512 // 8, 32768)
        last = {}
        for i in range(self.steps):
            lba = _mix64(_mix64(GUEST_SEED) ^ ((i * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF))
            last[lba % blocks] = i
        return last

    def verify(self, run_dir, serial, stderr):
        problems = []
        if f"blk done steps={self.steps}" not in serial:
            problems.append("no blk done line")
        last = self._last_writers()
        zero = bytes(4096)
        with open(os.path.join(run_dir, "disk.img"), "rb") as f:
            data = f.read()
        for index in range(len(data) // 4096):
            block = data[index * 4096:(index + 1) * 4096]
            want = last.get(index)
            if want is None:
                if block != zero:
                    problems.append(f"block {index}: written, but no iteration wrote it")
                continue
            magic, crc, seed, iteration, lba = struct.unpack_from("<IIQQQ", block)
            if magic != 0x314B4252 or crc != zlib.crc32(block[8:]):
                problems.append(f"block {index}: not a well-formed pattern block")
            elif seed != GUEST_SEED or lba != index or iteration != want:
                problems.append(f"block {index}: iteration {iteration} (want {want}), "
                                f"lba {lba}, seed {seed}")
            if len(problems) >= 5:
                break
        return problems


class Echo(Workload):
    """vCPU 0 sends request lines over virtio-console and checks every response; the host peer
    answers them. Host side: the peer saw each request exactly once, in order."""
    name = "echo"
    duration_s = 0.9
    steps = 1500

    def prepare(self, run_dir):
        self._socket = os.path.join(run_dir, "console.sock")
        return ["--console-socket", self._socket,
                "--cmdline", f"workload=echo seed={GUEST_SEED} steps={self.steps}"]

    def peer_args(self, run_dir):
        return []

    def start_side(self, run_dir):
        peer = os.path.join(self.source_dir, "guest", "tools", "echo_peer.py")
        summary = os.path.join(run_dir, "peer.json")
        log = open(os.path.join(run_dir, "peer.log"), "w")
        return [subprocess.Popen([sys.executable, peer, self._socket, "--summary", summary] +
                                 self.peer_args(run_dir), stdout=log, stderr=log)]

    def verify(self, run_dir, serial, stderr):
        problems = []
        if f"echo done steps={self.steps}" not in serial:
            problems.append("no echo done line")
        try:
            with open(os.path.join(run_dir, "peer.json")) as f:
                peer = json.load(f)
        except (OSError, ValueError):
            return problems + ["no summary from the console peer"]
        if peer["answered"] != self.steps or not peer["in_order"] or peer["malformed"]:
            problems.append(f"console peer: {peer['answered']} requests (want {self.steps}), "
                            f"in order {peer['in_order']}, malformed {peer['malformed']}")
        return problems


class EchoCorrupted(Echo):
    """The echo workload with a peer that corrupts one response (a known silent corruption for
    testing the classifier: no rehome detector can see it, the guest's check must)."""
    name = "echo-corrupt"

    def peer_args(self, run_dir):
        return ["--corrupt-seq", str(self.steps // 2)]


class Service(Workload):
    """A network service of the test guest (issue 15) as a campaign workload: the guest serves on
    virtio-net with its data on virtio-blk; a side process (bench/service_session.py) sends
    `requests` requests through rehome-loadgen (closed loop, 2 outstanding; retries reuse the
    id), then the stop request, so the guest finishes and rehome exits 0. Host side: the
    service's own oracle on the response log (and, for oltp, the database image). Needs a network
    namespace with the tap `TAP` (campaign.py makes it: root)."""
    needs_network = True
    TAP, MAC, GUEST_IP = "rhcamp0", "52:54:00:12:34:56", "10.0.2.15"
    port = 0
    requests = 300
    _prepared = {}  # per class: files made once per campaign (index, database template)

    def _tool(self, *parts):
        return os.path.join(self.source_dir, "bench", *parts)

    def _run_tool(self, cmd):
        proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"{os.path.basename(cmd[0])}: {(proc.stdout + proc.stderr)[-300:]}")
        return proc

    def _template(self, work_dir):
        """(image, request file) made once; work_dir outlives the campaign's runs."""
        raise NotImplementedError

    def _disk_args(self, run_dir, image):
        return ["--disk", image]

    def prepare(self, run_dir):
        key = type(self).__name__
        if key not in self._prepared:
            self._prepared[key] = self._template(os.path.dirname(run_dir))
        image, self._requests = self._prepared[key]
        self._log = os.path.join(run_dir, "responses.rhlg")
        return [*self._disk_args(run_dir, image), "--netdev", f"tap,ifname={self.TAP},mac={self.MAC}",
                "--cmdline", f"workload={self.name} steps=0"]

    def start_side(self, run_dir):
        log = open(os.path.join(run_dir, "session.log"), "w")
        return [subprocess.Popen(
            [sys.executable, self._tool("service_session.py"), "--loadgen",
             os.path.join(self.build_dir, "bench", "loadgen", "rehome-loadgen"), "--target",
             f"{self.GUEST_IP}:{self.port}", "--requests", self._requests, "--out", self._log,
             "--count", str(self.requests)], stdout=log, stderr=log)]

    def _session_problems(self, run_dir):
        if not os.path.exists(self._log):
            with open(os.path.join(run_dir, "session.log"), errors="replace") as f:
                return [f"no response log: {f.read().strip()[-200:]}"]
        return []


class Search(Service):
    """BM25 queries over a 300-document index (bench/search); every answer checked by the oracle
    that recomputes BM25 from the raw corpus; every request answered."""
    name = "search"
    port = 8081
    duration_s = 1.5
    requests = 3000  # ~1 s of queries: the injection moments fall inside the session

    def _template(self, work_dir):
        image = os.path.join(work_dir, "search.img")
        requests = os.path.join(work_dir, "search.rhrq")
        self._run_tool([self._tool("search", "build_index.py"), image, "--max-docs", "300"])
        self._run_tool([self._tool("search", "make_queries.py"), image, requests, "--count",
                        str(self.requests), "--seed", "15", "--malformed", "3"])
        return image, requests

    def _disk_args(self, run_dir, image):
        return ["--disk", image, "--disk-read-only"]

    def verify(self, run_dir, serial, stderr):
        problems = self._session_problems(run_dir)
        if problems:
            return problems
        image = self._prepared["Search"][0]
        proc = subprocess.run([sys.executable, self._tool("search", "oracle.py"), image + ".json",
                               self._requests, self._log, "--require-all"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            problems.append(f"search oracle: {(proc.stdout + proc.stderr).strip()[-200:]}")
        return problems


class Oltp(Service):
    """TPC-C transactions (bench/oltp) on a fresh copy of a loaded database per run; host side:
    TPC-C's consistency conditions on the image after the run and every acknowledged
    transaction present exactly once."""
    name = "oltp"
    port = 8082
    duration_s = 1.5
    requests = 1500  # ~1 s of transactions: the injection moments fall inside the session

    def _template(self, work_dir):
        image = os.path.join(work_dir, "oltp-template.img")
        requests = os.path.join(work_dir, "oltp.rhrq")
        self._run_tool([self._tool("oltp", "oltp_load.py"), "--out", image, "--capacity-txns",
                        "20000"])
        self._run_tool([self._tool("oltp", "make_requests.py"), "--image", image, "--out",
                        requests, "--count", str(self.requests), "--seed", "15", "--malformed",
                        "3"])
        return image, requests

    def _disk_args(self, run_dir, image):
        self._image = os.path.join(run_dir, "oltp.img")
        subprocess.run(["cp", "--sparse=always", image, self._image], check=True)
        return ["--disk", self._image]

    def verify(self, run_dir, serial, stderr):
        problems = self._session_problems(run_dir)
        if problems:
            return problems
        proc = subprocess.run([sys.executable, self._tool("oltp", "oltp_check.py"), "--image",
                               self._image, "--requests", self._requests, "--log", self._log],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            problems.append(f"oltp checker: {(proc.stdout + proc.stderr).strip()[-200:]}")
        return problems


WORKLOADS = {w.name: w for w in (Counter, Blk, Echo, EchoCorrupted, Search, Oltp)}
