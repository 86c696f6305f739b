#!/usr/bin/env python3
"""Normal-operation overhead of split mode (active L1 process + hot standby) vs monolithic.

Two workloads of the test guest, each run in both modes side by side:
- exit-heavy, `workload=pio steps=N` (1 vCPU): every step is a port-I/O exit to the VMM's
  userspace handler (in split mode forwarded to the L1 process). Per-exit cost =
  (T(N_hi) - T(N_lo)) / (N_hi - N_lo) of whole-process wall times, the method and commands of
  exit_cost.py (checks: `pio done`, rehome's `pio-bench writes: N`). The short run is long enough
  (10000 exits, ~0.3 s) for split mode's background start-up (the standby L1) to finish in both.
  In split mode the benchmark port's writes are posted (the vCPU does not wait for the L1);
  `--rehome-args=--no-posted-writes` measures the synchronous path.
- compute, `workload=counter steps=N report_every=1000000` on 2 vCPUs: CPL3 arithmetic with one
  report exit per million steps per vCPU. Reported are the whole-process wall time of the N_hi run
  and the steady-state cost per step, (T(N_hi) - T(N_lo)) / (2 (N_hi - N_lo)), which cancels boot,
  L1 start-up and teardown. Checks: `counter done`, exit 0 and the oracle's `no violations`.
  Note that rehome's counter oracle replays every reported step on the host (in L0 in monolithic
  mode, in the active L1 in split mode), so the host does about as much work as the guest here.
The pio runs also report, in-process (`rehome run --exit-stats`), the mean time the VMM spent
handling an exit outside KVM_RUN: the device model in monolithic mode; posting to the L1, its
handling and commit, and reading its answer in split mode. This figure does not include the
KVM_RUN round trip itself, whose cost varies between runs on this host by more than split mode's
whole overhead; the difference of the two modes' handling times, over the monolithic wall time
per exit, is split mode's per-exit overhead with that noise taken out.
Each figure is taken twice: from wall time, and from CPU time (user + system of rehome and the
L1 processes it reaped), which is less sensitive to waiting for a core on a loaded host but
counts the work of every process. Each repetition runs every (workload, mode) pair, the two
modes of a workload back to back, in an order that reverses between repetitions. Ratios split /
monolithic are given two ways: of the medians over repetitions, and the median of the
per-repetition (paired) ratios.
"""
import argparse
import os
import re
import resource
import bench_lib as b
import exit_cost

MODES = ("monolithic", "split")


def counter_cmd(mode, n):
    return (b.rehome_cmd(f"workload=counter steps={n} report_every=1000000", cpus=2, mode=mode),
            [rf"^rehome-guest: counter done cpus=2 steps={n}$"],
            [r"guest exited with status 0; oracle: .*no violations"])


EXIT_STATS = re.compile(r"rehome: exit stats: (\d+) exits, ([0-9.]+) us handling per exit")


def timed_cpu(cmd, ok, out, err, proc_out=None):
    """(wall s, CPU s) of one checked run; CPU is user + system time of rehome and of every
    process it waited for (its L1 processes), from RUSAGE_CHILDREN around the run. The
    completed process goes to proc_out[0] when given."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, proc = b.timed(cmd, ok, expect_stdout=out, expect_stderr=err)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc_out is not None:
        proc_out[:] = [proc]
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pio_per_exit(mode, lo, hi):
    """One pio measurement in `mode`: ((wall us, CPU us) per exit from the N=lo and N=hi runs,
    the VMM's in-process handling us per exit of the N=hi run)."""
    t = {}
    handling = None
    for n in (lo, hi):
        cmd, ok, out, err = exit_cost.commands(("rehome", mode), n)
        proc = []
        t[n] = timed_cpu(cmd + ["--exit-stats"], ok, out, err, proc)
        if n == hi:
            stats = EXIT_STATS.search(proc[0].stderr)
            if stats is None or int(stats.group(1)) < n:
                b.fail(f"no plausible exit stats from {' '.join(cmd)}", proc[0])
            handling = float(stats.group(2))
    return tuple((t[hi][i] - t[lo][i]) / (hi - lo) * 1e6 for i in (0, 1)), handling


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # The short run must outlast split mode's start-up work (the standby L1 starts in the
    # background and takes ~15 ms of CPU): otherwise that work lands in the long run only and
    # counts as per-exit cost. Longer runs also narrow the spread of the paired ratios (1000 vs
    # 10000 writes: p25-p75 1.03-1.18 in one run of 9; 10000 vs 50000: 1.05-1.07).
    parser.add_argument("--pio-lo", type=int, default=10000, help="port writes, short run")
    parser.add_argument("--pio-hi", type=int, default=50000, help="port writes, long run")
    parser.add_argument("--counter-lo", type=int, default=2_000_000, help="steps/vCPU, short run")
    parser.add_argument("--counter-hi", type=int, default=20_000_000, help="steps/vCPU, long run")
    parser.add_argument("--reps", type=int, default=9, help="repetitions")
    parser.add_argument("--rehome-args", default="",
                        help="extra `rehome run` arguments for split mode, e.g. "
                             "'--l1-priority normal'")
    args = parser.parse_args()
    b.EXTRA_REHOME_ARGS[:] = args.rehome_args.split()
    if not (0 < args.pio_lo < args.pio_hi and 0 < args.counter_lo < args.counter_hi) or \
            args.reps < 1:
        b.fail("need 0 < lo < hi for both workloads and --reps >= 1")
    b.check_inputs()
    b.rehome_modes(",".join(MODES))  # fails unless the binary offers both modes
    load_start = f"{os.getloadavg()[0]:.2f}"
    # (wall, CPU) pairs: us per exit; s for the counter N_hi run; ns per counter step.
    pio = {m: [] for m in MODES}
    handling = {m: [] for m in MODES}  # (us per exit,) from --exit-stats of the N_hi run
    run = {m: [] for m in MODES}
    per_step = {m: [] for m in MODES}
    for rep in range(args.reps):
        order = MODES if rep % 2 == 0 else tuple(reversed(MODES))
        for mode in order:
            per_exit, handled = pio_per_exit(mode, args.pio_lo, args.pio_hi)
            pio[mode].append(per_exit)
            handling[mode].append((handled,))
        for mode in reversed(order):
            t = {}
            for n in (args.counter_lo, args.counter_hi):
                cmd, out, err = counter_cmd(mode, n)
                t[n] = timed_cpu(cmd, b.REHOME_OK, out, err)
            run[mode].append(t[args.counter_hi])
            per_step[mode].append(tuple((t[args.counter_hi][i] - t[args.counter_lo][i]) /
                                        (2 * (args.counter_hi - args.counter_lo)) * 1e9
                                        for i in (0, 1)))
    load_end = f"{os.getloadavg()[0]:.2f}"

    def row(name, unit, series, i, digits):
        b.paired_ratio_row(name, unit, [v[i] for v in series["monolithic"]],
                           [v[i] for v in series["split"]], digits)

    print(f"### Split-mode overhead vs monolithic (median of {args.reps} alternating "
          f"repetitions; load average {load_start} at the start, {load_end} at the end; "
          f"split-mode extra arguments: {args.rehome_args or 'none'})\n")
    print("| workload, measure | unit | monolithic | split | ratio of medians | "
          "median paired ratio | paired ratio p25-p75 | overhead (ratio of medians) |")
    print("|" + " --- |" * 8)
    pio_n = f"N={args.pio_lo} vs {args.pio_hi}"
    cnt_n = f"N={args.counter_lo} vs {args.counter_hi}"
    row(f"pio, per exit, wall ({pio_n})", "us/exit", pio, 0, 1)
    row(f"pio, per exit, CPU ({pio_n})", "CPU us/exit", pio, 1, 1)
    row(f"pio, VMM handling per exit, in-process (N={args.pio_hi})", "us/exit", handling, 0, 2)
    row(f"counter 2 vCPUs, N={args.counter_hi} run, wall", "s", run, 0, 2)
    row(f"counter 2 vCPUs, N={args.counter_hi} run, CPU", "CPU s", run, 1, 2)
    row(f"counter 2 vCPUs, per step, wall ({cnt_n})", "ns/step", per_step, 0, 2)
    row(f"counter 2 vCPUs, per step, CPU ({cnt_n})", "CPU ns/step", per_step, 1, 2)
    print()
    mono_wall = b.median([v[0] for v in pio["monolithic"]])
    extra = b.median([v[0] for v in handling["split"]]) - b.median([v[0] for v in handling["monolithic"]])
    print(f"- split mode's extra handling per exit, over the monolithic wall time per exit: "
          f"{extra:.2f} / {mono_wall:.1f} us = {extra / mono_wall * 100:+.1f}% (KVM_RUN noise "
          f"taken out)")
    for title, series, digits in (("pio wall us/exit", pio, 1), ("pio handling us/exit", handling, 2), ("counter run wall s", run, 2),
                                  ("counter wall ns/step", per_step, 2)):
        print(f"- {title} per repetition: " + "; ".join(
            f"{m} " + ", ".join(f"{v[0]:.{digits}f}" for v in series[m]) for m in MODES))

if __name__ == "__main__":
    main()
