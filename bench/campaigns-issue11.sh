#!/usr/bin/env bash
# bench/campaigns-issue11.sh: the verified-execution campaigns recorded in docs/benchmarks.md
# (section "Verified execution"): register and code faults into replica 0 of `--verify dual` and
# `--verify triple` on the counter and blk workloads, plus the deterministic wrong-state and
# wrong-read-data faults, next to the `verify=none` campaigns of bench/campaigns-issue10.sh.
# Run on a snapshot of the binaries, in the background; re-running resumes (finished campaigns
# are skipped). Usage: bench/campaigns-issue11.sh [BUILD_DIR] [OUT_DIR] [REGISTER_RUNS] [CODE_RUNS]
# [WORKLOADS] (default "counter blk"; the runner's workloads, e.g. "blk echo")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-bench/out/issue11}
register_runs=${3:-1000}
code_runs=${4:-500}
workloads=${5:-counter blk}
source bench/campaign_lib.sh
snapshot "$build"
for v in triple dual; do
  for w in $workloads; do
    run "$w-$v-wrong" --fault rehome-wrong-state,rehome-wrong-read-data --workload "$w" --runs 10 \
      --seed 20 --rehome-args "--verify $v"
    run "$w-$v-register" --fault register --workload "$w" --runs "$register_runs" --seed 12 \
      --rehome-args "--verify $v"
    run "$w-$v-code" --fault code --workload "$w" --runs "$code_runs" --seed 13 \
      --rehome-args "--verify $v"
  done
done
echo "campaigns: all done"
