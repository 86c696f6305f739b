#!/usr/bin/env python3
"""What confining the L1 costs: split mode with `--l1-sandbox best-effort` (the default) against
`--l1-sandbox off`, side by side, on the exit path and on failover.

Each repetition runs both settings back to back, in an order that reverses between repetitions:
- exit path: `workload=pio steps=N` on 1 vCPU, per-exit cost = (T(N_hi) - T(N_lo)) / (N_hi -
  N_lo) of whole-process wall and CPU times (the method of split_overhead.py), and the VMM's
  in-process handling time per exit (`--exit-stats`, KVM_RUN noise taken out). Every exit is
  handled by a confined L1 in the first setting: a system call the filter checks on each exit
  (futex, eventfd read/write, sched_setscheduler while asleep) pays the filter's cost there.
- failover: `workload=counter` on 2 vCPUs, 64 MiB, the active L1 SIGKILLed every
  --kill-every-ms ms (the method and checks of failover_latency.py); the hot-standby failover
  totals of each setting are pooled over repetitions. A confined standby also has to join its
  namespaces and load its filter before it is ready: the share of failovers that found a hot
  standby shows whether that delays anything.
Ratios are best-effort / off: of the medians, and the median of the per-repetition (paired)
ratios with its p25-p75 spread.
"""
import argparse
import os
import bench_lib as b
import failover_latency
import split_overhead

SETTINGS = ("best-effort", "off")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pio-lo", type=int, default=10000, help="port writes, short run")
    parser.add_argument("--pio-hi", type=int, default=50000, help="port writes, long run")
    parser.add_argument("--steps", type=int, default=40_000_000,
                        help="counter steps per vCPU of a failover run")
    parser.add_argument("--kill-every-ms", type=int, default=30, help="SIGKILL period")
    parser.add_argument("--standbys", type=int, default=1, help="hot standby L1s")
    parser.add_argument("--reps", type=int, default=7, help="repetitions")
    args = parser.parse_args()
    if not 0 < args.pio_lo < args.pio_hi or args.reps < 1:
        b.fail("need 0 < --pio-lo < --pio-hi and --reps >= 1")
    b.check_inputs()
    load_start = f"{os.getloadavg()[0]:.2f}"
    pio = {s: [] for s in SETTINGS}       # (wall us/exit, CPU us/exit)
    handling = {s: [] for s in SETTINGS}  # in-process us/exit of the N_hi run
    failover = {s: [] for s in SETTINGS}  # per repetition: median hot total (ms)
    pooled = {s: [] for s in SETTINGS}    # every failover: (hot, total, fence, promote)
    for rep in range(args.reps):
        order = SETTINGS if rep % 2 == 0 else tuple(reversed(SETTINGS))
        for setting in order:
            b.EXTRA_REHOME_ARGS[:] = ["--l1-sandbox", setting]
            per_exit, handled = split_overhead.pio_per_exit("split", args.pio_lo, args.pio_hi)
            pio[setting].append(per_exit)
            handling[setting].append((handled,))
        for setting in reversed(order):
            b.EXTRA_REHOME_ARGS[:] = ["--l1-sandbox", setting]
            _, found = failover_latency.one_run(64, args)
            pooled[setting].extend(found)
            hot = [e[1] for e in found if e[0]]
            if not hot:
                b.fail(f"--l1-sandbox {setting}: no hot-standby failover in a run; raise --steps")
            failover[setting].append((b.median(hot),))
        print(f"bench: repetition {rep + 1}/{args.reps} done", flush=True)
    load_end = f"{os.getloadavg()[0]:.2f}"

    def row(name, unit, series, i, digits):
        b.paired_ratio_row(name, unit, [v[i] for v in series["off"]],
                           [v[i] for v in series["best-effort"]], digits)

    print(f"\n### L1 sandbox: best-effort vs off (split mode, median of {args.reps} alternating "
          f"repetitions; load average {load_start} at the start, {load_end} at the end)\n")
    print("| measure | unit | sandbox off | sandbox best-effort | ratio of medians | "
          "median paired ratio | paired ratio p25-p75 | cost (ratio of medians) |")
    print("|" + " --- |" * 8)
    pio_n = f"N={args.pio_lo} vs {args.pio_hi}"
    row(f"pio, per exit, wall ({pio_n})", "us/exit", pio, 0, 1)
    row(f"pio, per exit, CPU ({pio_n})", "CPU us/exit", pio, 1, 1)
    row(f"pio, VMM handling per exit, in-process (N={args.pio_hi})", "us/exit", handling, 0, 2)
    row(f"hot failover total, median per run (kill every {args.kill_every_ms} ms, 64 MiB)", "ms",
        failover, 0, 3)
    print()
    print("| setting | failovers | hot | hot ratio | total median | p90 | p99 | max | "
          "fence median | promote median |")
    print("|" + " --- |" * 10)
    for setting in SETTINGS:
        ev = pooled[setting]
        hot = [e for e in ev if e[0]]
        tot = [e[1] for e in hot]
        print(f"| {setting} | {len(ev)} | {len(hot)} | {len(hot) / len(ev):.2f} | "
              f"{b.median(tot):.3f} | {b.percentile(tot, 90):.3f} | {b.percentile(tot, 99):.3f} | "
              f"{max(tot):.3f} | {b.median([e[2] for e in hot]):.3f} | "
              f"{b.median([e[3] for e in hot]):.3f} |")
    print()
    for title, series, digits in (("pio wall us/exit", pio, 1),
                                  ("pio handling us/exit", handling, 2),
                                  ("hot failover median ms", failover, 3)):
        print(f"- {title} per repetition: " + "; ".join(
            f"{s} " + ", ".join(f"{v[0]:.{digits}f}" for v in series[s]) for s in SETTINGS))


if __name__ == "__main__":
    main()
