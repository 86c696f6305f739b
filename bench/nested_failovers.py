#!/usr/bin/env python3
"""bench/nested_failovers.py: the failover phases of nested mode from an emulated host's console
log (`make test-nested`, scripts/nested-host/run.sh), as markdown tables for docs/benchmarks.md.

Every "failover #N (cause): L1 #a -> L1 #b in T ms (detect D ms, pause+capture C ms [...],
handoff H ms, takeover K ms; ...)" line that rehome printed live is one sample, grouped by L2 RAM
size (the nested-flat-<MiB>-<round> tests, else --default-mib) and by fault cause.

  python3 bench/nested_failovers.py build-nested/console.log [more logs...]
Exit status: 0, or 2 when a log cannot be read or holds no failover.
"""
import argparse
import re
import statistics
import sys

FAILOVER = re.compile(
    r"^\s*[\d.]+\s+(\S+) live: rehome: failover #\d+ \((.*?)\): L1 #\d+ -> L1 #\d+ in ([\d.]+) ms "
    r"\(detect ([\d.]+) ms, pause\+capture ([\d.]+) ms \[([^,\]]+)[^\]]*\], handoff ([\d.]+) ms, "
    r"takeover ([\d.]+) ms")
FLAT_TEST = re.compile(r"^nested-flat-(\d+)-\d+$")
PHASES = ("total", "detect", "capture", "handoff", "takeover")


def parse(text, default_mib):
    samples = []
    for line in text.splitlines():
        m = FAILOVER.match(line)
        if m is None:
            continue
        test, cause = m.group(1), m.group(2)
        size = FLAT_TEST.match(test)
        samples.append({"test": test, "cause": cause.split(":")[0].split(" (")[0],
                        "mib": int(size.group(1)) if size else default_mib,
                        "source": m.group(6),
                        **{k: float(m.group(i)) for k, i in zip(PHASES, (3, 4, 5, 7, 8))}})
    return samples


def cell(values):
    if not values:
        return "-"
    return (f"{statistics.median(values):.0f} [{min(values):.0f}-{max(values):.0f}]"
            if len(values) > 1 else f"{values[0]:.0f}")


def table(samples, key, title):
    groups = {}
    for s in samples:
        groups.setdefault(s[key], []).append(s)
    out = [f"| {title} | n | " + " | ".join(PHASES) + " |", "| --- " * (len(PHASES) + 2) + "|"]
    for name in sorted(groups):
        g = groups[name]
        out.append(f"| {name} | {len(g)} | " + " | ".join(cell([s[p] for s in g])
                                                           for p in PHASES) + " |")
    return "\n".join(out)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="+")
    p.add_argument("--default-mib", type=int, default=64,
                   help="L2 RAM of tests other than nested-flat-* (default 64)")
    args = p.parse_args(argv)
    samples = []
    for path in args.logs:
        try:
            with open(path, errors="replace") as f:
                samples += parse(f.read(), args.default_mib)
        except OSError as e:
            print(f"nested_failovers: cannot read {path}: {e.strerror}", file=sys.stderr)
            return 2
    if not samples:
        print("nested_failovers: no failover lines in the logs", file=sys.stderr)
        return 2
    print("Failover phases in ms, median [min-max], by L2 RAM (MiB):\n")
    print(table(samples, "mib", "L2 MiB"))
    print("\nBy cause:\n")
    print(table(samples, "cause", "cause"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
