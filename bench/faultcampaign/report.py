"""A campaign's outputs: runs.csv (one row per run), summary.md (outcome counts and shares with
Clopper-Pearson 95% intervals, recovery rates, detection and failover latencies, where the
faults that hurt hit) and outcomes.png (the outcome mix per fault type)."""
import csv
import json
import os
import statistics
import subprocess
import sys

from faultcampaign import outcome
from faultcampaign.stats import clopper_pearson, format_share

COLUMNS = ["run", "seed", "fault", "workload", "mode", "target_role", "mutant", "outcome",
           "detail", "wrong_data", "detection_cause", "detection_ms", "failover_ms", "failovers",
           "exit_code", "wall_s", "delay_ms", "inj_injected", "inj_function", "inj_module",
           "inj_rip", "inj_target", "inj_bit", "inj_old", "inj_new", "inj_address",
           "inj_region", "inj_region_offset", "inj_steps", "inj_run_us", "inj_attempts",
           "inj_note", "standby_ready", "qmp_ok", "new_vm_ok", "target_pid", "detection_detail",
           "harness_note", "divergences"]
COLORS = {outcome.NO_EFFECT: "#b8c4cc", outcome.RECOVERED: "#2e8b57",
          outcome.NOT_RECOVERED: "#e0a030", outcome.SDC: "#c0392b", outcome.HANG: "#7b5ea7",
          outcome.L0_FAILURE: "#222222"}


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _ms(values):
    values = [float(v) for v in values if v not in (None, "")]
    if not values:
        return "-"
    return (f"{statistics.median(values):.2f} / {_percentile(values, 0.95):.2f} / "
            f"{max(values):.2f} (n={len(values)})")


def group_key(row):
    key = row["fault"]
    if row.get("mutant"):
        key = "mutant" + (" (mutant standbys)" if "standbys" in str(row.get("mutant_pass", ""))
                          else "")
    return key


def outcome_table(rows):
    """Markdown: one line per outcome class with count and share [95% CI]; plus rates."""
    valid = [r for r in rows if r["outcome"] not in outcome.EXCLUDED]
    n = len(valid)
    counts = {o: sum(1 for r in valid if r["outcome"] == o) for o in outcome.OUTCOMES}
    lines = ["| outcome | runs | share [95% CI] |", "| --- | ---: | --- |"]
    for o in outcome.OUTCOMES:
        lo, hi = clopper_pearson(counts[o], n)
        share = f"{100 * counts[o] / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if n else "-"
        lines.append(f"| {o} | {counts[o]} | {share} |")
    skipped = len(rows) - n
    detected = counts[outcome.RECOVERED] + counts[outcome.NOT_RECOVERED]
    manifested = n - counts[outcome.NO_EFFECT]
    wrong = sum(1 for r in valid if str(r.get("wrong_data")) in ("True", "true", "1"))
    lines += [
        "",
        f"- runs: {len(rows)}, of which {skipped} left out (nothing injected: the target was "
        "gone first; or a harness error)",
        f"- recovery rate of detected faults: {format_share(counts[outcome.RECOVERED], detected)}",
        f"- recovery rate of manifested faults (all but no effect): "
        f"{format_share(counts[outcome.RECOVERED], manifested)}",
        f"- guest-visible wrong data (silent, or after a detected failure): "
        f"{format_share(wrong, n)}",
    ]
    return "\n".join(lines), counts, n


def detection_table(rows):
    causes = {}
    for r in rows:
        if r["outcome"] in (outcome.RECOVERED, outcome.NOT_RECOVERED) and r.get("detection_cause"):
            causes.setdefault(r["detection_cause"], []).append(r)
    if not causes:
        return "No failure was detected."
    lines = ["| detected by | runs | detection ms (median / p95 / max) | "
             "failover ms (median / p95 / max) |", "| --- | ---: | --- | --- |"]
    for cause, rs in sorted(causes.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"| {cause} | {len(rs)} | {_ms(r.get('detection_ms') for r in rs)} | "
                     f"{_ms(r.get('failover_ms') for r in rs)} |")
    return "\n".join(lines)


def harm_table(rows, limit=15):
    """Where the faults that were not recovered, or corrupted data, hit."""
    bad = [r for r in rows if r["outcome"] in (outcome.SDC, outcome.NOT_RECOVERED, outcome.HANG,
                                               outcome.L0_FAILURE)]
    if not bad:
        return "None."
    groups = {}
    for r in bad:
        where = r.get("inj_function") or r.get("mutant") or "-"
        groups.setdefault((r["outcome"], where), []).append(r)
    lines = ["| outcome | function (or mutant) hit | runs | target | first detail |",
             "| --- | --- | ---: | --- | --- |"]
    for (o, where), rs in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:limit]:
        targets = sorted({str(r.get("inj_target") or "") for r in rs} - {""})
        detail = (rs[0].get("detail") or "").replace("|", "/")[:140]
        lines.append(f"| {o} | `{where[:90]}` | {len(rs)} | {', '.join(targets[:6])} | "
                     f"{detail} |")
    if len(groups) > limit:
        lines.append(f"| ... | {len(groups) - limit} more | | | |")
    return "\n".join(lines)


def summary_markdown(rows, meta):
    out = [f"# Fault-injection campaign: {meta.get('title', '')}", ""]
    out += [f"- command: `{meta.get('command', '')}`",
            f"- when: {meta.get('date', '')}; host: {meta.get('host', '')}",
            f"- rehome: {meta.get('git', '')}; seed {meta.get('seed', '')}"]
    segments = meta.get("segments", [])
    if len(segments) > 1:  # resumed (or extended): each sitting with its build
        out.append("- sittings (resumed): " + "; ".join(
            f"from run {s['first_run']}" + (f" to {s['runs']}" if "runs" in s else "") +
            f" at {s['date']}, rehome {s['git']}" for s in segments))
    out.append("")
    groups = {}
    for r in rows:
        groups.setdefault(group_key(r), []).append(r)
    for key, rs in groups.items():
        table, _, _ = outcome_table(rs)
        out += [f"## {key} ({rs[0]['workload']}, {rs[0]['mode']})", "", table, "",
                "Detection and failover:", "", detection_table(rs), "",
                "Where the faults that hurt hit:", "", harm_table(rs), ""]
    return "\n".join(out)


def plot(rows, path, title):
    """outcomes.png: one horizontal bar per fault type (or group), split by outcome share."""
    data = {}
    for r in rows:
        if r["outcome"] in outcome.EXCLUDED:
            continue
        data.setdefault(group_key(r), {o: 0 for o in outcome.OUTCOMES})[r["outcome"]] += 1
    payload = json.dumps({"data": data, "path": path, "title": title, "colors": COLORS,
                          "order": list(outcome.OUTCOMES)})
    try:
        import matplotlib  # noqa: F401
        draw(payload)
        return True
    except ImportError:
        pass
    # This interpreter lacks matplotlib (e.g. a pyenv Python): Debian's python3 has it.
    system_python = "/usr/bin/python3"
    if os.path.exists(system_python) and os.path.realpath(sys.executable) != system_python:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run([system_python, "-c",
                               "import sys; sys.path.insert(0, sys.argv[1]);"
                               "from faultcampaign.report import draw; draw(sys.stdin.read())",
                               here], input=payload, text=True, capture_output=True)
        if done.returncode == 0:
            return True
        print(f"campaign: plot failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return False
    print("campaign: matplotlib is missing (apt-get install python3-matplotlib): no PNG",
          file=sys.stderr)
    return False


def draw(payload):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    spec = json.loads(payload)
    data, order = spec["data"], spec["order"]
    groups = list(data.keys())
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(groups)))
    for y, group in enumerate(groups):
        total = sum(data[group].values()) or 1
        left = 0.0
        for o in order:
            share = 100.0 * data[group][o] / total
            if share > 0:
                ax.barh(y, share, left=left, color=spec["colors"][o], edgecolor="white",
                        label=o if y == 0 or o not in ax.get_legend_handles_labels()[1] else None)
                if share >= 6:
                    ax.text(left + share / 2, y, f"{share:.0f}%", ha="center", va="center",
                            fontsize=8, color="white" if o != "no effect" else "black")
                left += share
        ax.text(101, y, f"n={total}", va="center", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    seen = {}
    for h, label in zip(handles, labels):
        seen.setdefault(label, h)
    ax.legend([seen[o] for o in order if o in seen], [o for o in order if o in seen],
              loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(groups) < 3 else -0.12),
              ncol=3, fontsize=8, frameon=False)
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels(groups)
    ax.set_xlim(0, 108)
    ax.invert_yaxis()
    ax.set_xlabel("share of runs (%)")
    ax.set_title(spec["title"], fontsize=10)
    fig.tight_layout()
    fig.savefig(spec["path"], dpi=120)
    plt.close(fig)
