#!/usr/bin/env python3
"""Real services in the test guest, measured by their clients (issue 15): search and oltp.

The tool makes a network namespace with a tap (root), prepares the workload's disk image and
request file (service_workloads.py: the search index over a real corpus, or the scaled TPC-C
database), and runs the guest's service on virtio-net + virtio-blk under each configuration of
--modes (rehome split, rehome monolithic, the same guest under QEMU microvm, and split with
verified execution: verify-dual, verify-triple, every answer and frame compared before it leaves),
alternated run by run (--reps rounds), so that all configurations see the same host noise.
rehome-loadgen drives each run (--load full: 25 clients x 1 request / 50 ms, open loop, Romulus's
full load; light: 1 x 1 / s; closed:N: N outstanding, maximum throughput) and records every
answer; the workload's oracle then checks every answer (search: the top-10 by BM25 recomputed on
the host from the raw corpus; oltp: TPC-C's consistency conditions on the disk image after the
run and every acknowledged transaction present exactly once). Faults (split and verify-* modes):
--kill-active-every-ms (rehome's own SIGKILL timer), --hang-every-ms (QMP inject-fault hang),
--switchover-every-ms. Failovers are read from QMP events. A configuration may carry guest
command-line arguments after a slash, '+'-separated (e.g. `split/io_depth=1`): the same mode with
them appended, reported as its own configuration (ratios pair modes with the same arguments).

Output: one table row per run (throughput, latency mean/p50/p95/p99/max (with --skip-first-s S:
of the requests sent after each run's first S seconds), unanswered, retries,
failovers, oracle verdict), then per configuration the median over the reps and the paired
ratios (split / monolithic, monolithic / qemu) with their spread. --plot-dir writes PNGs:
latency over time with failovers marked, and latency CDFs per configuration. Exit status: 0; 1
when a run failed or (with --check) an oracle found a wrong answer or a lost/duplicated
transaction, or a requested fault produced no failover; 2 bad usage; 77 when the host forbids
namespaces or taps.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402
import netping as npg  # noqa: E402
import service_files as sf  # noqa: E402
import service_workloads as sw  # noqa: E402

MODES = ("split", "monolithic", "qemu", "verify-dual", "verify-triple")
LOADGEN = os.path.join(b.BUILD, "bench", "loadgen", "rehome-loadgen")


def load_args(load):
    if load in ("full", "light"):
        return ["--profile", load]
    if load.startswith("closed:") and load[7:].isdigit() and int(load[7:]) > 0:
        return ["--closed", load[7:]]
    raise ValueError(f"--load: {load!r} (full, light or closed:N)")


def split_config(config):
    """'split/io_depth=1+x=2' -> ('split', 'io_depth=1 x=2'); 'split' -> ('split', '')."""
    mode, _, guest_args = config.partition("/")
    return mode, " ".join(a for a in guest_args.split("+") if a)


def start_vm(config, args, workload, image, work):
    mode, guest_args = split_config(config)
    cmdline = workload.cmdline(args) + (f" {guest_args}" if guest_args else "")
    return npg.start_service_vm(mode, args, work, cmdline, workload.ready_line,
                                disk=image, disk_read_only=workload.read_only,
                                start_timeout_s=args.start_timeout_s)


def warm_up(port, deadline):
    """Until the service answers (ARP resolved): a request of an unknown kind gets status 1."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((npg.GUEST_IP, port))
    sock.settimeout(0.1)
    rid = 1 << 62
    try:
        while time.time() < deadline:
            d = bytearray(sf.request(0xffff))
            d[8:16] = rid.to_bytes(8, "little")
            sock.send(bytes(d))
            try:
                reply = sock.recv(2048)
                if len(reply) >= 16 and int.from_bytes(reply[:4], "little") == \
                        sf.RESPONSE_MAGIC_WORD:
                    return
            except OSError:
                pass
            rid += 1
        b.fail("the service never answered the warm-up requests")
    finally:
        sock.close()


def nearest_rank(sorted_values, p):
    """rehome-loadgen's percentile (bench/loadgen/latency_summary.cc), for the same figures."""
    if not sorted_values:
        return 0
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def latency_summary(latencies_ns):
    """mean, p50, p95, p99 and max (µs) of answered requests' latencies (ns); zeros when none."""
    lat = sorted(latencies_ns)
    if not lat:
        return {"mean": 0, "p50": 0, "p95": 0, "p99": 0, "max": 0, "n": 0}
    return {"mean": sum(lat) / len(lat) / 1e3, "p50": nearest_rank(lat, 50) / 1e3,
            "p95": nearest_rank(lat, 95) / 1e3, "p99": nearest_rank(lat, 99) / 1e3,
            "max": lat[-1] / 1e3, "n": len(lat)}


def steady_latency(records, skip_s):
    """Latency summary (µs) of the answered requests sent at least SKIP_S after the run's first."""
    t0 = min((r.send_ns for r in records), default=0)
    return latency_summary(r.latency_ns for r in records
                           if r.latency_ns >= 0 and r.send_ns >= t0 + skip_s * 1e9)


def pooled_latencies(results, mode, skip_s):
    """Every answered latency (ns) of every rep of MODE, each run without its first SKIP_S."""
    lat = []
    for r in results:
        if r["mode"] != mode or not r["records"]:
            continue
        t0 = min(send for send, _ in r["records"])
        lat += [ns for send, ns in r["records"] if ns >= 0 and send >= t0 + skip_s * 1e9]
    return lat


def pooled_latency(results, mode, skip_s):
    """Latency summary (µs) of every rep of MODE together, each run without its first SKIP_S.

    At light load a run's p99 is one of its few slowest answers (the 3rd of 300), so pairs of
    runs scatter widely; the pooled figure is one estimate from all of a configuration's answers."""
    return latency_summary(pooled_latencies(results, mode, skip_s))


def p99_ratio_interval(a_ns, c_ns, resamples=2000, seed=1):
    """Bootstrap 95% interval of p99(A) / p99(C): both samples resampled with replacement
    RESAMPLES times (seeded: the same data gives the same interval). None when either is empty.

    The p99 of a thousand answers rests on its ten slowest, so a pooled ratio of 1.07 may be
    chance; the interval says how far it could be."""
    if not a_ns or not c_ns:
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        a = sorted(rng.choices(a_ns, k=len(a_ns)))
        c = sorted(rng.choices(c_ns, k=len(c_ns)))
        pc = nearest_rank(c, 99)
        if pc:
            ratios.append(nearest_rank(a, 99) / pc)
    ratios.sort()
    if not ratios:
        return None
    return (ratios[int(0.025 * (len(ratios) - 1))], ratios[int(0.975 * (len(ratios) - 1))])


def one_run(mode, args, workload, prepared, work, rep):
    image = prepared["image"]
    if workload.writes_disk:  # every run starts from the same database
        image = os.path.join(work, "run.img")
        shutil.copyfile(prepared["image"], image)
    proc, qmp, log, serial = start_vm(mode, args, workload, image, work)
    warm_up(workload.port, time.time() + 30)
    stop_hangs = threading.Event()

    def hang_loop():
        while not stop_hangs.wait(args.hang_every_ms / 1000):
            qmp.command("__org.rehome_inject-fault", {"target": "active", "kind": "hang"})

    hanger = None
    if npg.faulty(split_config(mode)[0]) and args.hang_every_ms:
        hanger = threading.Thread(target=hang_loop, daemon=True)
        hanger.start()
    response_log = os.path.join(work, f"{mode.replace('/', '_')}-{rep}.rhlg")
    clock_offset = time.time() - time.monotonic()  # loadgen's CLOCK_MONOTONIC -> realtime
    cmd = [LOADGEN, "--target", f"{npg.GUEST_IP}:{workload.port}", "--requests",
           prepared["requests"], "--out", response_log, *load_args(args.load),
           "--timeout-ms", str(args.timeout_ms)]
    cmd += ["--count", str(args.count)] if args.count else ["--duration-s", str(args.duration_s)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    stop_hangs.set()
    if hanger:
        hanger.join()
    events = list(qmp.events) if qmp else []
    npg.stop_vm(proc, qmp)
    log.close()
    if run.returncode != 0:
        b.fail(f"{mode}: rehome-loadgen exited {run.returncode}: {run.stderr.strip()[-500:]}")
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    verdict = workload.check(args, prepared, image, response_log, work)
    records = sf.read_response_log(response_log)
    if args.skip_first_s > 0:
        summary["latency_us"] = steady_latency(records, args.skip_first_s)
        summary["latency_skips_first_s"] = args.skip_first_s
    return {"mode": mode, "rep": rep, "summary": summary, "verdict": verdict,
            "failovers": npg.failovers_from_events(events), "clock_offset": clock_offset,
            "records": [(r.send_ns, r.latency_ns) for r in records],
            "console_tail": open(serial, errors="replace").read()[-300:]}


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def row(r):
    s, lat = r["summary"], r["summary"]["latency_us"]
    return (f"| {r['mode']} | {r['rep']} | {s['throughput_per_s']:.1f} | {lat['mean'] / 1e3:.2f} | "
            f"{lat['p50'] / 1e3:.2f} | {lat['p95'] / 1e3:.2f} | {lat['p99'] / 1e3:.2f} | "
            f"{lat['max'] / 1e3:.2f} | {s['answered']} | {s['unanswered']} | {s['retries']} | "
            f"{len(r['failovers'])} | {r['verdict']['line']} |")


def ratios(results, a, c):
    """Paired per-rep ratios a/c of throughput and p99, as 'median [min..max]'."""
    out = {}
    for key, get in (("throughput", lambda r: r["summary"]["throughput_per_s"]),
                     ("p99", lambda r: r["summary"]["latency_us"]["p99"]),
                     ("mean", lambda r: r["summary"]["latency_us"]["mean"])):
        pairs = []
        for rep in sorted({r["rep"] for r in results}):
            x = [get(r) for r in results if r["mode"] == a and r["rep"] == rep]
            y = [get(r) for r in results if r["mode"] == c and r["rep"] == rep]
            if x and y and y[0]:
                pairs.append(x[0] / y[0])
        if pairs:
            out[key] = f"{b.median(pairs):.3f} [{min(pairs):.3f}..{max(pairs):.3f}]"
    return out


def plot(results, directory, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(directory, exist_ok=True)
    fig, axes = plt.subplots(len(results), 1, figsize=(12, 2.8 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        t0 = min(s for s, _ in r["records"])
        ok = [(s, lat) for s, lat in r["records"] if lat >= 0]
        ax.plot([(s - t0) / 1e9 for s, _ in ok], [lat / 1e6 for _, lat in ok], ".",
                markersize=2, color="tab:blue")
        lost = [s for s, lat in r["records"] if lat < 0]
        if lost:
            ax.plot([(s - t0) / 1e9 for s in lost], [1e3] * len(lost), "x", color="red",
                    label=f"unanswered ({len(lost)})")
        for i, f in enumerate(r["failovers"]):
            x = ((f["detected"] or f["time"]) - r["clock_offset"]) - t0 / 1e9
            ax.axvline(x, color="tab:red", alpha=0.35, linewidth=0.8,
                       label=f"failover ({len(r['failovers'])})" if i == 0 else None)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{title}: {r['mode']} rep {r['rep']}: {r['verdict']['line']}",
                     fontsize="small")
        if lost or r["failovers"]:
            ax.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("time since the first request (s)")
    fig.tight_layout()
    timeline = os.path.join(directory, "latency-over-time.png")
    fig.savefig(timeline, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 5))
    for mode in dict.fromkeys(r["mode"] for r in results):
        lat = sorted(lat / 1e6 for r in results if r["mode"] == mode
                     for _, lat in r["records"] if lat >= 0)
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=mode)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"{title}: latency CDF (all reps)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    cdf = os.path.join(directory, "latency-cdf.png")
    fig.savefig(cdf, dpi=100)
    plt.close(fig)
    return timeline, cdf


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True, choices=sorted(sw.WORKLOADS))
    parser.add_argument("--modes", default="split,monolithic",
                        help="comma-separated: " + ", ".join(MODES) + " (alternated per rep)")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--load", default="full", help="full, light or closed:N")
    parser.add_argument("--duration-s", type=float, default=20.0, help="load per run")
    parser.add_argument("--count", type=int, default=0, help="requests per run instead")
    parser.add_argument("--skip-first-s", type=float, default=0.0,
                        help="latency figures leave out requests sent in each run's first "
                             "seconds (the services' cold start); counts keep every request")
    parser.add_argument("--timeout-ms", type=int, default=100,
                        help="the client resends an unanswered request (same id) after this")
    parser.add_argument("--memory", type=int, default=64, help="guest RAM in MiB")
    parser.add_argument("--kill-active-every-ms", type=int, default=0)
    parser.add_argument("--hang-every-ms", type=int, default=0)
    parser.add_argument("--switchover-every-ms", type=int, default=0)
    parser.add_argument("--hang-timeout-ms", type=int, default=50)
    parser.add_argument("--start-timeout-s", type=float, default=120.0)
    parser.add_argument("--plot-dir", help="write latency-over-time.png and latency-cdf.png here")
    parser.add_argument("--json",
                        help="write every run's figures and steady-state latencies (ns) here")
    parser.add_argument("--keep", help="keep the prepared image and request file in this dir")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 on a wrong answer, a lost or duplicated transaction, or a "
                             "requested fault that produced no failover")
    sw.add_arguments(parser)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if split_config(m)[0] not in MODES:
            parser.error(f"--modes: unknown mode {m!r}")
    try:
        load_args(args.load)
    except ValueError as e:
        parser.error(str(e))
    if args.reps < 1 or (args.count <= 0 and args.duration_s <= 0):
        parser.error("--reps and the run length must be positive")
    if args.skip_first_s < 0:
        parser.error("--skip-first-s must not be negative")
    b.check_inputs()
    if not os.access(LOADGEN, os.X_OK):
        b.fail(f"{LOADGEN} is missing: build the tree first (make build)")
    workload = sw.WORKLOADS[args.workload]
    work = args.keep or tempfile.mkdtemp(prefix="rehome-service-")
    os.makedirs(work, exist_ok=True)
    try:
        prepared = workload.prepare(args, work)  # before the namespace: reads host files
        npg.enter_netns()
        results = []
        for rep in range(args.reps):
            for mode in modes:
                r = one_run(mode, args, workload, prepared, work, rep)
                print(f"service_bench: {args.workload} {mode} rep {rep}: "
                      f"{r['summary']['throughput_per_s']:.1f}/s p99 "
                      f"{r['summary']['latency_us']['p99'] / 1e3:.2f} ms, "
                      f"{len(r['failovers'])} failovers, {r['verdict']['line']}",
                      file=sys.stderr, flush=True)
                results.append(r)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    faults = ", ".join(f"{k} {v} ms" for k, v in (
        ("kill every", args.kill_active_every_ms), ("hang every", args.hang_every_ms),
        ("switchover every", args.switchover_every_ms)) if v) or "no faults"
    length = f"{args.count} requests" if args.count else f"{args.duration_s:g} s"
    skipped = (f", latency without the first {args.skip_first_s:g} s of each run"
               if args.skip_first_s > 0 else "")
    print(f"service_bench: {args.workload} ({prepared['description']}), load {args.load}, "
          f"{length} per run, {args.memory} MiB guest, {faults} (split and verify-*), "
          f"load average {os.getloadavg()[0]:.2f}{skipped}")
    print("| mode | rep | req/s | mean ms | p50 ms | p95 ms | p99 ms | max ms | answered | "
          "unanswered | retries | failovers | oracle |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))
    suffixes = dict.fromkeys(m[len(split_config(m)[0]):] for m in modes)
    for suffix in suffixes:
        for a, c in (("split", "monolithic"), ("monolithic", "qemu"), ("verify-dual", "split"),
                     ("verify-triple", "split")):
            a, c = a + suffix, c + suffix
            if a in modes and c in modes:
                rt = ratios(results, a, c)
                print(f"service_bench: {a} / {c} (paired per rep, median [min..max]): "
                      + ", ".join(f"{k} {v}" for k, v in rt.items()))
                pa, pc = (pooled_latency(results, m, args.skip_first_s) for m in (a, c))
                if pa["n"] and pc["n"] and pc["p99"] and pc["mean"]:
                    ci = p99_ratio_interval(*(pooled_latencies(results, m, args.skip_first_s)
                                              for m in (a, c)))
                    ci_text = f" (bootstrap 95% interval {ci[0]:.3f}..{ci[1]:.3f})" if ci else ""
                    print(f"service_bench: {a} / {c} (every rep pooled, {pa['n']} and {pc['n']} "
                          f"answers): p99 {pa['p99'] / 1e3:.2f} / {pc['p99'] / 1e3:.2f} ms = "
                          f"{pa['p99'] / pc['p99']:.3f}{ci_text}, mean {pa['mean'] / 1e3:.2f} / "
                          f"{pc['mean'] / 1e3:.2f} ms = {pa['mean'] / pc['mean']:.3f}")
    if args.plot_dir:
        for path in plot(results, args.plot_dir, f"{args.workload}, load {args.load}, {faults}"):
            print(f"service_bench: plot written to {path}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump([{**{k: v for k, v in r.items() if k != "records"},
                        "steady_latencies_ns": pooled_latencies([r], r["mode"], args.skip_first_s)}
                       for r in results], out)
    if args.check:
        bad = [f"{r['mode']} rep {r['rep']}: {r['verdict']['line']}" for r in results
               if not r["verdict"]["ok"]]
        want = args.kill_active_every_ms or args.hang_every_ms or args.switchover_every_ms
        bad += [f"{r['mode']} rep {r['rep']}: no failover seen" for r in results
                if want and npg.faulty(r["mode"]) and not r["failovers"]]
        if bad:
            print("service_bench: check FAILED: " + "; ".join(bad), file=sys.stderr)
            sys.exit(1)
        print("service_bench: check passed: every answer verified by the oracle")


if __name__ == "__main__":
    main()
