#!/usr/bin/env python3
"""Guest start time for 64 MiB and 16 GiB of RAM, rehome and QEMU microvm side by side.

Measures the wall time of a whole VMM process running the idle guest (1 vCPU): exec, KVM setup,
guest RAM, ELF load, boot through the guest's PVH entry, long mode, APIC timer, banner, `idle
done` line, debug-exit, teardown. rehome is measured in each of its modes (or those given by
--modes); it also reports its own setup figure: from the start of machine creation (after
argument parsing; in split mode including the start of the L1 processes) to the vCPU threads
running, i.e. without exec, dynamic loading, the guest's own boot and teardown. rehome's guest
RAM is a sparse memfd, so the 16 GiB start must cost about the same as the 64 MiB one. All
(VMM, size) runs are interleaved in each repetition; medians over the repetitions are reported.
Every run is checked: exit status and the guest's `idle done` line.
"""
import argparse
import re
import bench_lib as b

SIZES = (64, 16384)
DONE = [r"^rehome-guest: idle done cpus=1$"]
SETUP = re.compile(r"setup ([0-9.]+) ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10, help="runs per VMM and RAM size")
    parser.add_argument("--modes", help="rehome modes, comma-separated (default: all offered)")
    args = parser.parse_args()
    if args.reps < 1:
        b.fail("--reps must be >= 1")
    b.check_inputs()
    modes = b.rehome_modes(args.modes)
    walls = {(mode, mib): [] for mode in modes for mib in SIZES}
    setups = {(mode, mib): [] for mode in modes for mib in SIZES}
    qemu_walls = {mib: [] for mib in SIZES}
    for _ in range(args.reps):
        for mib in SIZES:
            for mode in modes:
                t, proc = b.timed(b.rehome_cmd("workload=idle", memory_mib=mib, mode=mode),
                                  expect_stdout=DONE, expect_stderr=[SETUP.pattern])
                walls[mode, mib].append(t * 1e3)
                setups[mode, mib].append(float(SETUP.search(proc.stderr).group(1)))
            if b.QEMU:
                tq, _ = b.timed(b.qemu_cmd("workload=idle", memory_mib=mib), b.QEMU_OK,
                                expect_stdout=DONE)
                qemu_walls[mib].append(tq * 1e3)

    print(f"### Guest start time (idle guest, 1 vCPU, median of {args.reps} runs each, ms)\n")
    head = ["RAM"]
    for mode in modes:
        head += [f"{b.rehome_label(mode)} wall", f"{b.rehome_label(mode)} setup"]
    if b.QEMU:
        head += ["QEMU microvm wall"] + [f"QEMU / {b.rehome_label(m)} wall" for m in modes]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for mib in SIZES:
        row = [f"{mib} MiB"]
        for mode in modes:
            row += [f"{b.median(walls[mode, mib]):.1f}", f"{b.median(setups[mode, mib]):.1f}"]
        if b.QEMU:
            q = b.median(qemu_walls[mib])
            row += [f"{q:.1f}"] + [f"{q / b.median(walls[m, mib]):.2f}" for m in modes]
        print("| " + " | ".join(row) + " |")

    lo, hi = SIZES
    print()
    ratios = [f"{b.rehome_label(m)} {b.median(walls[m, hi]) / b.median(walls[m, lo]):.2f}"
              for m in modes]
    if b.QEMU:
        ratios.append(f"QEMU {b.median(qemu_walls[hi]) / b.median(qemu_walls[lo]):.2f}")
    print("- 16 GiB / 64 MiB wall-time ratio: " + ", ".join(ratios))
    for mib in SIZES:
        ranges = [f"{b.rehome_label(m)} {min(walls[m, mib]):.1f}-{max(walls[m, mib]):.1f}"
                  for m in modes]
        if b.QEMU:
            ranges.append(f"QEMU {min(qemu_walls[mib]):.1f}-{max(qemu_walls[mib]):.1f}")
        print(f"- {mib} MiB wall ms, min-max: " + ", ".join(ranges))


if __name__ == "__main__":
    main()
