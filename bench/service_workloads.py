"""The network services service_bench.py runs (issue 15: search, oltp), one class each: how to prepare the
disk image and the request file, the guest command line, and the oracle that checks a run.

A workload has: name, port, ready_line (the guest's console line once it serves), writes_disk
(each run gets a fresh copy of the image), read_only (the disk is exposed read-only),
cmdline(args), prepare(args, work) -> {"image", "requests", "description", ...} and
check(args, prepared, image, response_log, work) -> {"ok": bool, "line": str, ...}.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _run(cmd, what, timeout=1800):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"service_bench: {what} exited {proc.returncode}: "
                         f"{(proc.stdout + proc.stderr).strip()[-800:]}")
    return proc


class Search:
    name, port, ready_line = "search", 8081, "search serving"
    writes_disk, read_only = False, True
    tools = os.path.join(HERE, "search")

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("search")
        g.add_argument("--corpus", default="copyright", help="copyright, man or gcide")
        g.add_argument("--max-docs", type=int, default=0, help="cap the corpus (0: all)")
        g.add_argument("--cache-kib", type=int, default=4096, help="the guest's page cache")
        g.add_argument("--queries", type=int, default=5000, help="distinct queries")

    def cmdline(self, args):
        return f"workload=search steps=0 cache_kib={args.cache_kib}"

    def prepare(self, args, work):
        image = os.path.join(work, "search.img")
        requests = os.path.join(work, "search.rhrq")
        cmd = [sys.executable, os.path.join(self.tools, "build_index.py"), image, "--corpus",
               args.corpus]
        if args.max_docs:
            cmd += ["--max-docs", str(args.max_docs)]
        if _run(cmd, "build_index.py").returncode != 0:
            raise SystemExit("service_bench: build_index.py failed")
        if _run([sys.executable, os.path.join(self.tools, "make_queries.py"), image, requests,
                 "--count", str(args.queries), "--seed", "15", "--malformed",
                 str(max(1, args.queries // 100))], "make_queries.py").returncode != 0:
            raise SystemExit("service_bench: make_queries.py failed")
        with open(image + ".json") as f:
            side = json.load(f)
        size = os.path.getsize(image) / 2**20
        return {"image": image, "requests": requests,
                "description": f"{args.corpus} corpus, {side.get('docs', side.get('n_docs', '?'))} "
                               f"docs, index {size:.1f} MiB, guest cache {args.cache_kib} KiB, "
                               f"{args.queries} distinct queries (1% malformed)"}

    def check(self, args, prepared, image, response_log, work):
        out = response_log + ".oracle.json"
        proc = _run([sys.executable, os.path.join(self.tools, "oracle.py"),
                     prepared["image"] + ".json", prepared["requests"], response_log, "--json",
                     out], "oracle.py")
        with open(out) as f:
            verdict = json.load(f)
        ok = proc.returncode == 0 and not verdict.get("wrong")
        return {"ok": ok, "line": f"{verdict.get('correct', 0)}/{verdict.get('checked', 0)} "
                                  f"correct, {verdict.get('wrong', '?')} wrong"}


class Oltp:
    """The TPC-C analog (docs/oltp-format.md): every run starts from a fresh copy of the loaded
    database; the checker verifies consistency and exactly-once against the response log."""
    name, port, ready_line = "oltp", 8082, "oltp serving"
    writes_disk, read_only = True, False
    tools = os.path.join(HERE, "oltp")

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("oltp")
        g.add_argument("--oltp-capacity-txns", type=int, default=200000,
                       help="transactions the database has room for (per run)")
        g.add_argument("--oltp-requests", type=int, default=20000,
                       help="distinct transactions in the request file (the load generator "
                            "cycles it; each send is a new transaction)")

    def cmdline(self, args):
        return "workload=oltp steps=0"

    def prepare(self, args, work):
        image = os.path.join(work, "oltp.img")
        requests = os.path.join(work, "oltp.rhrq")
        if _run([sys.executable, os.path.join(self.tools, "oltp_load.py"), "--out", image,
                 "--capacity-txns", str(args.oltp_capacity_txns)],
                "oltp_load.py").returncode != 0:
            raise SystemExit("service_bench: oltp_load.py failed")
        if _run([sys.executable, os.path.join(self.tools, "make_requests.py"), "--image", image,
                 "--out", requests, "--count", str(args.oltp_requests), "--seed", "15",
                 "--malformed", str(max(1, args.oltp_requests // 100))],
                "make_requests.py").returncode != 0:
            raise SystemExit("service_bench: make_requests.py failed")
        return {"image": image, "requests": requests,
                "description": f"TPC-C analog, 1 warehouse (300 customers/district, 1000 items), "
                               f"room for {args.oltp_capacity_txns} transactions, "
                               f"{args.oltp_requests} distinct transactions (1% malformed)"}

    def check(self, args, prepared, image, response_log, work):
        proc = _run([sys.executable, os.path.join(self.tools, "oltp_check.py"), "--image", image,
                     "--requests", prepared["requests"], "--log", response_log, "--json"],
                    "oltp_check.py")
        verdict = json.loads(proc.stdout)
        ok = proc.returncode == 0 and verdict["consistent"]
        line = (f"consistent, {verdict['acknowledged_ok']} acknowledged present once"
                if ok else f"INCONSISTENT: {verdict['errors'][:1]}")
        return {"ok": ok, "line": line}


WORKLOADS = {"search": Search(), "oltp": Oltp()}


def add_arguments(parser):
    for w in WORKLOADS.values():
        w.add_arguments(parser)
