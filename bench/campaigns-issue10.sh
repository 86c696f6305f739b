#!/usr/bin/env bash
# bench/campaigns-issue10.sh: the fault-injection campaigns recorded in docs/benchmarks.md
# (section "Fault-injection campaigns"), run one after the other on a snapshot of the binaries
# (so that a rebuild meanwhile cannot mix versions). Long: about two hours on a 2-core host; run
# it in the background and watch its log.
# Usage: bench/campaigns-issue10.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-bench/out/issue10}
source bench/campaign_lib.sh
snapshot "$build"
for w in counter blk; do
  run "$w-none" --fault none --workload "$w" --runs 100 --seed 10
  run "$w-fail-stop" --fault fail-stop --workload "$w" --runs 500 --seed 11
  run "$w-register" --fault register --workload "$w" --runs 500 --seed 12
  run "$w-code" --fault code --workload "$w" --runs 250 --seed 13
  run "$w-memory" --fault memory --workload "$w" --runs 150 --seed 14
  run "$w-memory-shared" --fault memory-shared --workload "$w" --runs 150 --seed 15
  run "$w-hang" --fault hang --workload "$w" --runs 100 --seed 16
  run "$w-livelock" --fault livelock --workload "$w" --runs 100 --seed 17
done
run counter-register-monolithic --fault register --workload counter --mode monolithic --runs 200 --seed 18
# Software faults: 30 mutant L1 builds x 10 runs (python3 bench/mutants.py build --count 40 first),
# a mutant active with pristine standbys, then mutant standbys too (what diversity buys).
if [[ -f build-mutants/manifest.json ]]; then
  run blk-mutant --fault mutant --workload blk --runs-per-mutant 10 --max-mutants 30 --seed 19
  run blk-mutant-standbys --fault mutant --workload blk --runs-per-mutant 10 --max-mutants 30 \
    --mutant-standbys --seed 19
else
  echo "campaigns: no build-mutants/manifest.json: mutant campaigns skipped"
fi
echo "campaigns: all done"
