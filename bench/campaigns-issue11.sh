#!/usr/bin/env bash
# bench/campaigns-issue11.sh: the verified-execution campaigns recorded in docs/benchmarks.md
# (section "Verified execution"): register and code faults into replica 0 of `--verify dual` and
# `--verify triple` on the counter and blk workloads, plus the deterministic wrong-state and
# wrong-read-data faults, next to the `verify=none` campaigns of bench/campaigns-issue10.sh.
# Run on a snapshot of the binaries, in the background; re-running resumes (finished campaigns
# are skipped). Usage: bench/campaigns-issue11.sh [BUILD_DIR] [OUT_DIR] [REGISTER_RUNS] [CODE_RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-bench/out/issue11}
register_runs=${3:-1000}
code_runs=${4:-500}
snap=$(mktemp -d /tmp/rehome-campaign-bin-XXXXXX)
mkdir -p "$snap/guest" "$out"
cp "$build/rehome" "$build/rehome-inject" "$snap/"
cp "$build/guest/rehome-guest.elf" "$build/guest/rehome_guest_counter_oracle" "$snap/guest/"
echo "campaigns: binaries from $build (git $(git rev-parse --short HEAD)) in $snap; results in $out"
run() {  # NAME ARGS...
  local name=$1
  shift
  if [[ -f "$out/$name/summary.md" ]]; then
    echo "campaigns: $name done already"
    return
  fi
  echo "campaigns: $name: python3 bench/campaign.py $* --out $out/$name"
  python3 bench/campaign.py --build "$snap" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 ||
    echo "campaigns: $name failed (see $out/$name.log)"
}
for v in triple dual; do
  for w in counter blk; do
    run "$w-$v-wrong" --fault rehome-wrong-state,rehome-wrong-read-data --workload "$w" --runs 20 \
      --seed 20 --rehome-args "--verify $v"
    run "$w-$v-register" --fault register --workload "$w" --runs "$register_runs" --seed 12 \
      --rehome-args "--verify $v"
    run "$w-$v-code" --fault code --workload "$w" --runs "$code_runs" --seed 13 \
      --rehome-args "--verify $v"
  done
done
echo "campaigns: all done"
