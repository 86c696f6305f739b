#!/usr/bin/env python3
"""Port-I/O exit round-trip cost: rehome vs QEMU microvm, same guest, same host, one run.

The guest's `pio` workload makes vCPU 0 do N one-byte OUTs (from CPL3) to port 0x7e8, which has
no in-kernel device, so every OUT is a full exit to the VMM's userspace and back. Per-exit cost =
(T(N_hi) - T(N_lo)) / (N_hi - N_lo) of whole-process wall times, which cancels boot and teardown.
rehome is measured in each of its modes (`--mode monolithic`, the one-process baseline, and
`--mode split`, where exits are handled by an L1 process with a hot standby), or the modes given
by --modes. Each repetition measures every VMM back to back (the order reverses between
repetitions, so load from other processes hits all alike); the median over repetitions is
reported. Every run is checked: exit status, the guest's `pio done steps=N` line and, for
rehome, that its port handler counted exactly N writes.
"""
import argparse
import bench_lib as b


def commands(vmm, n):
    """vmm: ("rehome", mode) or ("qemu", None)."""
    cmdline = f"workload=pio steps={n}"
    done = rf"^rehome-guest: pio done steps={n}$"
    if vmm[0] == "rehome":
        return (b.rehome_cmd(cmdline, mode=vmm[1]), b.REHOME_OK, [done],
                [rf"pio-bench writes: {n}\b"])
    return b.qemu_cmd(cmdline), b.QEMU_OK, [done], []


def label(vmm):
    return b.rehome_label(vmm[1]) if vmm[0] == "rehome" else "qemu-microvm"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lo", type=int, default=1000, help="port writes in the short run")
    parser.add_argument("--hi", type=int, default=20000, help="port writes in the long run")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per VMM")
    parser.add_argument("--modes", help="rehome modes, comma-separated (default: all offered)")
    args = parser.parse_args()
    if not 0 < args.lo < args.hi or args.reps < 1:
        b.fail("need 0 < --lo < --hi and --reps >= 1")
    b.check_inputs()
    names = [("rehome", m) for m in b.rehome_modes(args.modes)]
    if b.QEMU:
        names.append(("qemu", None))
    per_exit = {name: [] for name in names}
    long_run = {name: [] for name in names}
    for rep in range(args.reps):
        order = names if rep % 2 == 0 else list(reversed(names))
        for name in order:
            times = {}
            for n in (args.lo, args.hi):
                cmd, ok, out, err = commands(name, n)
                times[n], _ = b.timed(cmd, ok, expect_stdout=out, expect_stderr=err)
            per_exit[name].append((times[args.hi] - times[args.lo]) / (args.hi - args.lo) * 1e6)
            long_run[name].append(times[args.hi])
    print(f"### Port-I/O exit round trip (pio workload, N={args.lo} vs {args.hi} port writes, "
          f"median of {args.reps} alternating repetitions)\n")
    print(f"| VMM | median us/exit | min | max | median wall s (N_hi run) | "
          f"ratio to {label(names[0])} |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = b.median(per_exit[names[0]])
    for name in names:
        values = per_exit[name]
        m = b.median(values)
        print(f"| {label(name)} | {m:.1f} | {min(values):.1f} | {max(values):.1f} | "
              f"{b.median(long_run[name]):.2f} | {m / base:.2f} |")
    print()
    for name in names:
        print(f"- {label(name)} us/exit per repetition: " +
              ", ".join(f"{v:.1f}" for v in per_exit[name]))


if __name__ == "__main__":
    main()
