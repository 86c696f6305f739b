#!/usr/bin/env python3
"""bench/campaign_tables.py: one side-by-side table over several campaigns (their runs.csv), as
recorded in docs/benchmarks.md: per (fault type, workload, mode) the runs and the share of each
outcome class with its Clopper-Pearson 95% interval, and NiLiHype's recovery rates.

  python3 bench/campaign_tables.py DIR [DIR ...] [--pool]

DIR is a campaign's --out directory. --pool also prints one line per (fault type, mode) with the
workloads pooled. Exit status: 0, or 2 when a directory has no runs.csv.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultcampaign import outcome, report  # noqa: E402
from faultcampaign.stats import clopper_pearson  # noqa: E402

SHORT = {outcome.NO_EFFECT: "no effect", outcome.RECOVERED: "recovered",
         outcome.NOT_RECOVERED: "not recovered", outcome.SDC: "SDC", outcome.HANG: "hang",
         outcome.L0_FAILURE: "L0 failure"}


def share(k, n):
    if n == 0:
        return "-"
    lo, hi = clopper_pearson(k, n)
    return f"{k} ({100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}])"


def line(label, rows):
    valid = [r for r in rows if r["outcome"] not in outcome.EXCLUDED]
    n = len(valid)
    counts = {o: sum(1 for r in valid if r["outcome"] == o) for o in outcome.OUTCOMES}
    detected = counts[outcome.RECOVERED] + counts[outcome.NOT_RECOVERED]
    manifested = n - counts[outcome.NO_EFFECT]
    cells = [label, str(n)] + [share(counts[o], n) for o in outcome.OUTCOMES]
    cells += [share(counts[outcome.RECOVERED], detected),
              share(counts[outcome.RECOVERED], manifested)]
    return "| " + " | ".join(cells) + " |"


def header(first):
    cols = [first, "runs"] + [SHORT[o] for o in outcome.OUTCOMES] + [
        "recovered / detected", "recovered / manifested"]
    return ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+")
    p.add_argument("--pool", action="store_true")
    args = p.parse_args(argv)
    groups = {}
    for d in args.dirs:
        path = os.path.join(d, "runs.csv")
        if not os.path.exists(path):
            print(f"campaign_tables: {path} is missing", file=sys.stderr)
            return 2
        for r in report.read_csv(path):
            key = (report.group_key(r), r["workload"], r["mode"])
            groups.setdefault(key, []).append(r)
    out = header("fault, workload, mode")
    for key in sorted(groups):
        out.append(line(", ".join(key), groups[key]))
    if args.pool:
        pooled = {}
        for (fault, _, mode), rows in groups.items():
            pooled.setdefault((fault, mode), []).extend(rows)
        out += [""] + header("fault, mode (workloads pooled)")
        for key in sorted(pooled):
            out.append(line(", ".join(key), pooled[key]))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
