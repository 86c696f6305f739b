#!/usr/bin/env python3
"""Cost of moving a running guest into a new KVM VM over the same memfds, for 64 MiB to 16 GiB.

`rehome run --rehome-interval-ms MS` moves the guest every MS ms: pause the vCPU threads (kick
them out of KVM_RUN), capture vCPU/irqchip/clock state, encode and decode it (the wire format of
docs/state-format.md), build a new VM (KVM_CREATE_VM, memslots over the same memfds, irqchip,
vCPUs), restore the state, start the new vCPU threads. The old VM is torn down after that and is
not counted. Figures are parsed from rehome's per-move status lines. The guest runs the counter
workload on 2 vCPUs, and rehome's counter oracle checks every report across the moves (exit
status 0 and `no violations` are required). Guest RAM is never copied, so the cost should be
flat in RAM size. rehome is measured in each of its modes (or those given by --modes); the runs
of all (mode, size) pairs are interleaved in each repetition.
"""
import argparse
import re
import bench_lib as b

SIZES = (64, 1024, 4096, 16384)
LINE = re.compile(r"moved into VM #\d+ in (\d+) us \(pause (\d+) us, capture (\d+) us, "
                  r"encode\+decode (\d+) us, build VM (\d+) us, restore (\d+) us, resume (\d+) us")
TOTAL, PAUSE, CAPTURE, CODEC, BUILD, RESTORE, RESUME = range(7)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40_000_000,
                        help="counter steps per vCPU (~45M/s per vCPU on an idle core)")
    parser.add_argument("--interval-ms", type=int, default=50, help="time between moves")
    parser.add_argument("--reps", type=int, default=2, help="runs per mode and RAM size")
    parser.add_argument("--modes", help="rehome modes, comma-separated (default: all offered)")
    args = parser.parse_args()
    if args.steps < 1 or args.interval_ms < 1 or args.reps < 1:
        b.fail("--steps, --interval-ms and --reps must be >= 1")
    b.check_inputs()
    modes = b.rehome_modes(args.modes)
    keys = [(mode, mib) for mode in modes for mib in SIZES]
    moves = {key: [] for key in keys}
    walls = {key: [] for key in keys}
    for _ in range(args.reps):
        for mib in SIZES:
            for mode in modes:
                t, proc = b.timed(
                    b.rehome_cmd(f"workload=counter steps={args.steps} report_every=1000000",
                                 cpus=2, memory_mib=mib, mode=mode,
                                 extra=["--rehome-interval-ms", str(args.interval_ms)]),
                    expect_stdout=[rf"^rehome-guest: counter done cpus=2 steps={args.steps}$"],
                    expect_stderr=[r"guest exited with status 0; oracle: .*no violations"])
                found = [tuple(int(x) for x in m.groups()) for m in LINE.finditer(proc.stderr)]
                if not found:
                    b.fail(f"{b.rehome_label(mode)}, {mib} MiB: the guest finished before the "
                           f"first move (run took {t:.2f} s); raise --steps or lower "
                           "--interval-ms", proc)
                moves[mode, mib].extend(found)
                walls[mode, mib].append(t)
    print(f"### Moving a running guest into a new VM (counter on 2 vCPUs, oracle-verified; "
          f"{args.reps} runs of {args.steps} steps/vCPU per mode and size, a move every "
          f"{args.interval_ms} ms; medians over all moves, in us)\n")
    print("| mode | RAM | moves | total | p90 total | max total | total - pause | pause | "
          "capture | enc+dec | build VM | restore | resume |")
    print("|" + " --- |" * 13)
    for mode, mib in keys:
        ms = moves[mode, mib]
        col = lambda i: b.median([m[i] for m in ms])
        totals = [m[TOTAL] for m in ms]
        unpaused = b.median([m[TOTAL] - m[PAUSE] for m in ms])
        label = f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"
        print(f"| {mode or '-'} | {label} | {len(ms)} | {col(TOTAL):.0f} | "
              f"{b.percentile(totals, 90):.0f} | {max(totals)} | {unpaused:.0f} | "
              f"{col(PAUSE):.0f} | {col(CAPTURE):.0f} | {col(CODEC):.0f} | {col(BUILD):.0f} | "
              f"{col(RESTORE):.0f} | {col(RESUME):.0f} |")
    lo, hi = SIZES[0], SIZES[-1]
    print()
    for mode in modes:
        ratio = (b.median([m[TOTAL] for m in moves[mode, hi]]) /
                 b.median([m[TOTAL] for m in moves[mode, lo]]))
        print(f"- {b.rehome_label(mode)}: 16 GiB / 64 MiB median-total ratio {ratio:.2f}; "
              "run wall times (s): " +
              "; ".join(f"{mib} MiB " + ", ".join(f"{t:.2f}" for t in walls[mode, mib])
                        for mib in SIZES))


if __name__ == "__main__":
    main()
