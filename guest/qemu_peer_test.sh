#!/usr/bin/env bash
# guest/qemu_peer_test.sh: boots rehome-guest.elf under QEMU microvm (-enable-kvm, -smp 2) and
# checks the serial output and the isa-debug-exit status for the counter, pio and idle workloads,
# the MADT CPU count and a bad command line. With a counter oracle binary as second argument, the
# per-vCPU digests are compared with the host's recomputation. The virtio workloads run against
# QEMU's virtio-mmio devices (modern: -global virtio-mmio.force-legacy=false): blk on a 32 MiB
# raw image (then checked with tools/blk_image_check.py), echo with tools/echo_peer.py on the
# virtconsole socket (also with an injected corruption), virtio-bad, and the failure paths.
# Usage: qemu_peer_test.sh GUEST_ELF [COUNTER_ORACLE]
# Exit: 0 pass, 1 fail, 77 skipped (no QEMU or no /dev/kvm; one-line reason printed).
set -u

elf=${1:?usage: qemu_peer_test.sh GUEST_ELF [COUNTER_ORACLE]}
oracle=${2:-}
qemu=${QEMU:-qemu-system-x86_64}
per_run_timeout=${REHOME_QEMU_TIMEOUT:-60}

if ! command -v "$qemu" >/dev/null 2>&1; then
  echo "SKIPPED: $qemu not found"
  exit 77
fi
if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
  echo "SKIPPED: /dev/kvm missing or not accessible"
  exit 77
fi
if [[ ! -f "$elf" ]]; then
  echo "FAIL: guest image $elf not found"
  exit 1
fi

failures=0
out=""
status=0

# run_guest SMP APPEND: boots the guest, leaves the serial output in $out and QEMU's status in
# $status.
run_guest() {
  local smp=$1 append=$2
  out=$(timeout "$per_run_timeout" "$qemu" -M microvm -enable-kvm -cpu qemu64 -m 64 \
      -smp "$smp" -nographic -no-reboot -kernel "$elf" -append "$append" \
      -device isa-debug-exit,iobase=0xf4,iosize=4 2>/dev/null </dev/null)
  status=$?
}

fail() {
  echo "FAIL: $*"
  echo "----- serial output -----"
  echo "$out"
  echo "-------------------------"
  failures=$((failures + 1))
}

expect_status() {  # GUEST_EXIT_VALUE: QEMU exits with (V << 1) | 1
  local want=$(( ($1 << 1) | 1 ))
  [[ $status -eq $want ]] || fail "exit status $status, want $want (guest value $1)"
}

expect_line() {  # exact line
  grep -qxF -- "$1" <<<"$out" || fail "missing line: $1"
}

# Counter, 2 vCPUs, explicit cpus=.
steps=2000000
seed=7
run_guest 2 "workload=counter cpus=2 seed=$seed steps=$steps report_every=500000"
expect_status 0
expect_line "rehome-guest: cpus=2 workload=counter seed=$seed steps=$steps report_every=500000"
expect_line "rehome-guest: counter done cpus=2 steps=$steps"
if [[ -n "$oracle" ]]; then
  for v in 0 1; do
    expect_line "$("$oracle" "$v" "$seed" "$steps")"
  done
fi

# Counter without cpus=: the CPU count comes from microvm's ACPI MADT.
run_guest 2 "workload=counter steps=1000"
expect_status 0
expect_line "rehome-guest: cpus=2 workload=counter seed=1 steps=1000 report_every=100000"
expect_line "rehome-guest: counter done cpus=2 steps=1000"

# Exit-cost workload.
run_guest 2 "workload=pio cpus=2 steps=2000"
expect_status 0
expect_line "rehome-guest: pio done steps=2000"

# Idle.
run_guest 2 "workload=idle cpus=2"
expect_status 0
expect_line "rehome-guest: cpus=2 workload=idle seed=1 steps=0 report_every=100000"
expect_line "rehome-guest: idle done cpus=2"

# Bad command line: kExitBadCommandLine (3).
run_guest 2 "workload=nosuch"
expect_status 3
grep -q "bad command line" <<<"$out" || fail "no 'bad command line' message"

# ---- virtio workloads ----
# QEMU microvm appends ` virtio_mmio.device=512@0x<base>:<irq>` per populated transport to the
# command line only when ACPI is off (with ACPI it describes them in the DSDT instead).
tools=$(dirname "$0")/tools
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_io_guest MACHINE APPEND QEMU_ARGS...: like run_guest, with virtio devices.
run_io_guest() {
  local machine=$1 append=$2
  shift 2
  out=$(timeout "$per_run_timeout" "$qemu" -M "$machine" -enable-kvm -cpu qemu64 -m 64 -smp 2 \
      -nographic -nodefaults -serial stdio -no-reboot -kernel "$elf" -append "$append" \
      -device isa-debug-exit,iobase=0xf4,iosize=4 -global virtio-mmio.force-legacy=false "$@" \
      2>/dev/null </dev/null)
  status=$?
}

# run_echo_guest STEPS PEER_ARGS...: echo workload with echo_peer.py on the console socket
# (wait=on: QEMU starts the guest only once the peer has connected). Sets $peer_status too.
run_echo_guest() {
  local steps=$1
  shift
  local sock=$tmp/con.sock
  rm -f "$sock"
  timeout "$per_run_timeout" "$qemu" -M microvm,acpi=off -enable-kvm -cpu qemu64 -m 64 -smp 2 \
      -nographic -nodefaults -serial stdio -no-reboot -kernel "$elf" \
      -append "workload=echo cpus=2 seed=9 steps=$steps" \
      -device isa-debug-exit,iobase=0xf4,iosize=4 -global virtio-mmio.force-legacy=false \
      -chardev socket,id=c0,path="$sock",server=on,wait=on \
      -device virtio-serial-device -device virtconsole,chardev=c0 \
      >"$tmp/serial" 2>/dev/null </dev/null &
  local qemu_pid=$!
  timeout "$per_run_timeout" python3 "$tools/echo_peer.py" "$sock" "$@" 2>"$tmp/peer"
  peer_status=$?
  wait "$qemu_pid"
  status=$?
  out=$(cat "$tmp/serial")
}

disk=$tmp/disk.img
truncate -s 32M "$disk"
blk_drive=(-drive "id=d0,file=$disk,format=raw,if=none" -device virtio-blk-device,drive=d0,serial=rehome-d0)

# blk: entries from QEMU's auto-kernel-cmdline; then the image holds exactly the written blocks.
run_io_guest microvm,acpi=off "workload=blk cpus=2 seed=5 steps=300" "${blk_drive[@]}"
expect_status 0
grep -q "^rehome-guest: blk device base=0x[0-9a-f]* capacity=65536 blocks_used=8192 id=rehome-d0$" \
    <<<"$out" || fail "missing blk device line"
done_re='^rehome-guest: blk done steps=300 writes=300 reads=([0-9]+) flushes=19$'
if [[ $(grep -E "$done_re" <<<"$out") =~ $done_re ]]; then
  distinct=$((BASH_REMATCH[1] - 300))
  python3 "$tools/blk_image_check.py" "$disk" --seed 5 --blocks "$distinct" ||
      fail "disk image check"
else
  fail "missing blk done line"
fi

# blk with a hand-written entry (K suffix) and ACPI on (no auto entries; MADT gives cpus=2). With
# ACPI on, QEMU 7.2 microvm puts the first virtio device on its last transport, 0xfeb02e00 (the
# irq is not used by the guest).
run_io_guest microvm "workload=blk steps=40 virtio_mmio.device=1K@0xfeb02e00:47" "${blk_drive[@]}"
expect_status 0
grep -qE '^rehome-guest: blk done steps=40 writes=40 reads=[0-9]+ flushes=3$' <<<"$out" ||
    fail "missing blk done line (explicit entry)"

# blk failure paths: no disk, a disk under 16 MiB, a legacy (version 1) transport.
run_io_guest microvm,acpi=off "workload=blk steps=10"
expect_status 1
grep -q "rehome-guest: blk: no virtio-blk device" <<<"$out" || fail "no 'no virtio-blk' message"
truncate -s 8M "$tmp/small.img"
run_io_guest microvm,acpi=off "workload=blk steps=10" \
    -drive "id=d0,file=$tmp/small.img,format=raw,if=none" -device virtio-blk-device,drive=d0
expect_status 1
grep -q "rehome-guest: blk: disk too small" <<<"$out" || fail "no 'disk too small' message"
run_io_guest microvm,acpi=off "workload=blk steps=10" "${blk_drive[@]}" \
    -global virtio-mmio.force-legacy=true
expect_status 1
grep -q "version 1 unsupported" <<<"$out" || fail "legacy transport not refused"

# virtio-bad: one report line per case (QEMU's reactions are reported, not judged), then exit 0.
run_io_guest microvm,acpi=off "workload=virtio-bad" "${blk_drive[@]}"
expect_status 0
for c in loop bad-addr len-overflow avail-jump; do
  grep -qE "^rehome-guest: virtio-bad case=$c needs_reset=[01]$" <<<"$out" ||
      fail "missing virtio-bad case=$c"
done
expect_line "rehome-guest: virtio-bad done cases=4"

# echo, clean and with one corrupted response.
if command -v python3 >/dev/null 2>&1; then
  run_echo_guest 300
  expect_status 0
  expect_line "rehome-guest: echo done steps=300"
  [[ $peer_status -eq 0 ]] || fail "echo_peer exit $peer_status: $(cat "$tmp/peer")"
  run_echo_guest 50 --corrupt-seq 17
  expect_status 1
  grep -q "^rehome-guest: echo mismatch seq=17 " <<<"$out" || fail "corruption not detected"
else
  echo "note: python3 not found, blk image and echo checks skipped"
fi

if [[ $failures -ne 0 ]]; then
  echo "guest_qemu_peer: $failures check(s) failed"
  exit 1
fi
echo "guest_qemu_peer: all checks passed"
exit 0
