#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build (make fuzz-build) for SECONDS each, one after the
# other, starting from its seed corpus (tests/fuzz/corpus/NAME, read only) and a working corpus in
# BUILD/fuzz-corpus/NAME (kept between runs). Crashing inputs land in BUILD/fuzz-artifacts/.
# Exits non-zero as soon as a target crashes (the crash report and the input's path are printed).
# FUZZ_RUNS=N also stops each target after N executions (whichever comes first).
# Usage: scripts/run-fuzzers.sh BUILD SECONDS [NAME...]   (docs/fuzzing.md)
set -euo pipefail
build=${1:?usage: run-fuzzers.sh BUILD SECONDS [NAME...]}
seconds=${2:?usage: run-fuzzers.sh BUILD SECONDS [NAME...]}
shift 2
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for bin in "$build"/tests/fuzz/*_fuzz; do names+=("$(basename "$bin")"); done
fi
mkdir -p "$build/fuzz-artifacts"
runs=()
[ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
printf '%-22s %10s %7s %8s %8s %6s\n' target executions seconds cov ft corpus
for name in "${names[@]}"; do
  bin="$build/tests/fuzz/$name"
  [ -x "$bin" ] || { echo "run-fuzzers: no $bin (make fuzz-build)" >&2; exit 2; }
  mkdir -p "$build/fuzz-corpus/$name"
  log="$build/fuzz-artifacts/$name.log"
  start=$(date +%s)
  if ! "$bin" -max_total_time="$seconds" "${runs[@]}" -timeout=20 -rss_limit_mb=3072 \
      -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$name-" \
      "$build/fuzz-corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    echo "run-fuzzers: $name FAILED; the report ($log) ends:" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  execs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$done_line")
  corp=$(sed -nE 's/.*corp: ([0-9]+).*/\1/p' <<<"$done_line")
  printf '%-22s %10s %7s %8s %8s %6s\n' "$name" "${execs:-?}" "$(($(date +%s) - start))" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}"
done
