#!/usr/bin/env python3
"""The cost of verified execution: rehome monolithic, split (`--verify none`), split `--verify
dual` and split `--verify triple`, side by side in one run, on the same guest and host.

- pio (exit-heavy, 1 vCPU): `workload=pio steps=N`, every step a port-I/O exit; per-exit cost =
  (T(N_hi) - T(N_lo)) / (N_hi - N_lo) of whole-process wall times (exit_cost.py's method).
  Without verification split mode posts these writes (the vCPU does not wait); verified
  execution has no posted writes: every exit waits for the vote.
- blk: `workload=blk steps=N` on a fresh 32 MiB image in /dev/shm; requests/s =
  (requests(N_hi) - requests(N_lo)) / (T(N_hi) - T(N_lo)) (virtio_io.py's method and checks).
- echo: `workload=echo steps=N` with this script as the console peer; the cycle time between two
  requests' arrivals at the peer (virtio_io.py), median of the per-run means.
Also CPU time per unit (user + system of rehome and the L1 processes it reaped), which counts
the replicas' work: verified execution trades CPU for checked results.
Each repetition runs every configuration of a workload back to back, in an order that reverses
between repetitions; medians over repetitions and the spread (min-max) are reported, and ratios
to split `--verify none` of the medians.
Usage: python3 bench/verify_overhead.py [--reps R] [--workloads pio,blk,echo]
"""
import argparse
import os
import resource
import tempfile

import bench_lib as b
import virtio_io

CONFIGS = [("monolithic", []), ("split", []), ("split", ["--verify", "dual"]),
           ("split", ["--verify", "triple"])]


def label(config):
    mode, extra = config
    return f"rehome {mode}" + (f" verify {extra[1]}" if extra else (" (verify none)"
                                                                     if mode == "split" else ""))


def pio_run(config, n):
    """(wall s, CPU s) of one checked pio run."""
    mode, extra = config
    cmd = b.rehome_cmd(f"workload=pio steps={n}", mode=mode, extra=extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, _ = b.timed(cmd, b.REHOME_OK, expect_stdout=[rf"^rehome-guest: pio done steps={n}$"])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def with_extra(config, fn, *args):
    """Runs virtio_io's fn for `config`: its extra arguments go through bench_lib's list."""
    mode, extra = config
    saved = list(b.EXTRA_REHOME_ARGS)
    b.EXTRA_REHOME_ARGS[:] = saved + extra
    try:
        return fn(("rehome", mode), *args)
    finally:
        b.EXTRA_REHOME_ARGS[:] = saved


def spread(values, digits):
    return f"{b.fmt(b.median(values), digits)} ({b.fmt(min(values), digits)}-" \
           f"{b.fmt(max(values), digits)})"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--workloads", default="pio,blk,echo")
    p.add_argument("--pio-lo", type=int, default=2000)
    p.add_argument("--pio-hi", type=int, default=12000)
    p.add_argument("--blk-lo", type=int, default=100)
    p.add_argument("--blk-hi", type=int, default=600)
    p.add_argument("--echo-n", type=int, default=600)
    args = p.parse_args()
    b.check_inputs()
    workloads = args.workloads.split(",")
    results = {w: {c: {"unit": [], "cpu": []} for c in range(len(CONFIGS))} for w in workloads}
    imagedir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    for rep in range(args.reps):
        order = list(range(len(CONFIGS)))
        if rep % 2:
            order.reverse()
        for w in workloads:
            for c in order:
                config = CONFIGS[c]
                r = results[w][c]
                if w == "pio":
                    lo, lo_cpu = pio_run(config, args.pio_lo)
                    hi, hi_cpu = pio_run(config, args.pio_hi)
                    n = args.pio_hi - args.pio_lo
                    r["unit"].append((hi - lo) / n * 1e6)
                    r["cpu"].append((hi_cpu - lo_cpu) / n * 1e6)
                elif w == "blk":
                    lo = with_extra(config, virtio_io.blk_run, args.blk_lo, imagedir)
                    hi = with_extra(config, virtio_io.blk_run, args.blk_hi, imagedir)
                    requests = hi[2] - lo[2]
                    r["unit"].append(requests / max(hi[0] - lo[0], 1e-9))
                    r["cpu"].append((hi[1] - lo[1]) / requests * 1e6)
                else:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cycles, _, _ = with_extra(config, virtio_io.echo_run, args.echo_n, imagedir)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    r["unit"].append(sum(cycles) / len(cycles))
                    r["cpu"].append(((after.ru_utime - before.ru_utime) +
                                     (after.ru_stime - before.ru_stime)) / args.echo_n * 1e6)
        print(f"verify_overhead: repetition {rep + 1}/{args.reps} done", flush=True)
    units = {"pio": ("µs per exit (wall)", 2, False), "blk": ("requests/s", 0, True),
             "echo": ("µs per echo cycle", 1, False)}
    base = 1  # split, verify none
    for w in workloads:
        name, digits, higher_better = units[w]
        print(f"\n### {w}: {name}, median (min-max) of {args.reps} repetitions\n")
        print(f"| configuration | {name} | vs split (verify none) | CPU µs per "
              f"{'exit' if w == 'pio' else 'request' if w == 'blk' else 'cycle'} |")
        print("| --- | ---: | ---: | ---: |")
        ref = b.median(results[w][base]["unit"])
        for c, config in enumerate(CONFIGS):
            r = results[w][c]
            med = b.median(r["unit"])
            ratio = med / ref if ref else 0
            # Throughput: the share of split's kept (0.85 = 15% less); times: how many times.
            change = f"{100 * ratio:.0f}% of it" if higher_better else f"x{ratio:.2f}"
            print(f"| {label(config)} | {spread(r['unit'], digits)} | {change} | "
                  f"{spread(r['cpu'], 1)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
