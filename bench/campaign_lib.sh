# bench/campaign_lib.sh: sourced by the bench/campaigns-*.sh scripts. snapshot BUILD copies the
# binaries a campaign needs into $snap (a rebuild meanwhile cannot mix versions); run NAME ARGS...
# runs one bench/campaign.py campaign into $out/NAME unless its summary.md exists; a campaign cut
# off part-way (runs.csv but no summary.md) is resumed where it stopped (campaign.py --resume).
snapshot() {  # BUILD
  snap=$(mktemp -d /tmp/rehome-campaign-bin-XXXXXX)
  mkdir -p "$snap/guest" "$out"
  cp "$1/rehome" "$1/rehome-inject" "$snap/"
  cp "$1/guest/rehome-guest.elf" "$1/guest/rehome_guest_counter_oracle" "$snap/guest/"
  echo "campaigns: binaries from $1 (git $(git rev-parse --short HEAD)) in $snap; results in $out"
}
run() {  # NAME ARGS...
  local name=$1
  shift
  if [[ -f "$out/$name/summary.md" ]]; then
    echo "campaigns: $name done already"
    return
  fi
  local resume=()
  if [[ -f "$out/$name/runs.csv" ]]; then
    resume=(--resume)
    echo "campaigns: $name: resuming after $(($(wc -l < "$out/$name/runs.csv") - 1)) runs"
  fi
  echo "campaigns: $name: python3 bench/campaign.py $* ${resume[*]} --out $out/$name"
  python3 bench/campaign.py --build "$snap" "$@" "${resume[@]}" --out "$out/$name" \
    >> "$out/$name.log" 2>&1 || echo "campaigns: $name failed (see $out/$name.log)"
}
