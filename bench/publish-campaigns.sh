#!/usr/bin/env bash
# bench/publish-campaigns.sh: copies finished campaigns (summary.md, outcomes.png, runs.csv
# compressed) from their --out directories into docs/campaigns/NAME/, for the commit that records
# them in docs/benchmarks.md. Usage: bench/publish-campaigns.sh SRC_PARENT DEST_NAME
# e.g. bench/publish-campaigns.sh bench/out/issue10 issue10
set -euo pipefail
cd "$(dirname "$0")/.."
src=$1
dest=docs/campaigns/$2
for dir in "$src"/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/summary.md" ]] || { echo "publish: $name is not finished, skipped"; continue; }
  mkdir -p "$dest/$name"
  cp "$dir/summary.md" "$dest/$name/"
  [[ -f "$dir/outcomes.png" ]] && cp "$dir/outcomes.png" "$dest/$name/"
  [[ -f "$dir/campaign.json" ]] && cp "$dir/campaign.json" "$dest/$name/"
  gzip -9 -n -c "$dir/runs.csv" > "$dest/$name/runs.csv.gz"
  echo "publish: $name -> $dest/$name"
done
