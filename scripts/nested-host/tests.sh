#!/bin/sh
# The nested tests, run inside the emulated host by init.sh: tests.sh all | name,name,...
# Each prints "NESTED-TEST <name> PASS|FAIL|SKIP <detail>"; the exit status counts failures.
failures=0
up() { cut -d' ' -f1 /proc/uptime; }
report() {  # name verdict detail...
  n=$1; v=$2; shift 2
  echo "NESTED-TEST $n $v $*"
  [ "$v" = FAIL ] && failures=$((failures + 1))
  return 0
}
wanted() { [ "$selection" = all ] || echo ",$selection," | grep -q ",$1,"; }

# A Linux kernel (Debian's cloud kernel) boots under rehome: ACPI (MADT for 2 vCPUs), an
# initrd, the serial console, power-off through the ACPI sleep control register.
# Split mode has no COM1 interrupts (README), so the guest's tty output never drains there; its
# kernel console (polled) carries the marker instead ("kmsg: REHOME-LINUX-BOOTED ...").
t_linux_boot() {  # name mode marker-prefix extra-args...
  name=$1; mode=$2; prefix=$3; shift 3
  t0=$(up)
  timeout -s KILL ${NESTED_TEST_TIMEOUT:-400} rehome run --mode "$mode" --kernel /share/vmlinuz \
    --initrd /share/hello.cpio.gz --memory 256 --cpus 2 --serial-file /tmp/$name.log "$@" \
    >/tmp/$name.err 2>&1
  rc=$?
  t1=$(up)
  line=$(grep "$prefix""REHOME-LINUX-BOOTED" /tmp/$name.log | tr -d "\r")
  if [ $rc = 0 ] && echo "$line" | grep -q "cpus=2"; then
    report $name PASS "rc=0 in $(awk "BEGIN{print $t1-$t0}")s: $line"
    return 0
  fi
  report $name FAIL "rc=$rc: ${line:-no marker}; guest console and rehome's stderr follow"
  sed "s/^/  $name console: /" /tmp/$name.log | tail -n ${NESTED_LOG_LINES:-2000}
  sed "s/^/  $name stderr: /" /tmp/$name.err | tail -n 20
  return 1
}

# Nested mode (docs/nested.md): the test guest's counter workload is L2, run by rehome-agent in
# an L1 VM (the cloud kernel + l1.cpio.gz) under rehome on this emulated host; faults hit the
# whole L1 and L0 re-homes L2 into the standby L1. Passes when L2 finishes with every counter
# report verified (rehome's exit status 0) after at least `count` failovers (register faults:
# after `count` flips, which may or may not fail the L1).
t_nested() {  # name fault count steps extra-args...
  name=$1; fault=$2; count=$3; steps=$4; shift 4
  t0=$(up)
  mkdir -p /l1-logs/$name
  set -- --nested-faults "$count" "$@"
  [ "$fault" != none ] && set -- --nested-fault "$fault" "$@"
  # rehome's status lines stream to the console as they come (and into $name.err).
  set -o pipefail
  timeout -s KILL ${NESTED_LONG_TIMEOUT:-3000} rehome run --mode nested \
    --kernel /share/rehome-guest.elf --l1-kernel /share/vmlinuz --l1-initrd /share/l1.cpio.gz \
    --l1-console-dir /l1-logs/$name --memory 64 --max-failovers 1000 \
    --l1-hang-timeout-ms ${NESTED_HANG_MS:-8000} \
    --cmdline "workload=counter steps=$steps report_every=$((steps / 200 + 1))" \
    --serial-file /tmp/$name.log "$@" 2>&1 | tee /tmp/$name.err | sed "s/^/  $name live: /"
  rc=$?
  set +o pipefail
  t1=$(up)
  summary=$(grep "rehome: nested:" /tmp/$name.err | sed 's/^rehome: nested: //')
  n=$(grep -c "rehome: failover #" /tmp/$name.err)
  want=$count
  if [ "$fault" = register ]; then  # a flip may be masked: count the flips, not failovers
    want=0
    echo "$summary" | grep -q "; $count register faults" || rc="$rc (not $count register faults)"
  fi
  if [ "$rc" = 0 ] && [ "$n" -ge "$want" ]; then
    report $name PASS "rc=0 in $(awk "BEGIN{print $t1-$t0}")s, $n failovers: $summary"
    return 0
  fi
  report $name FAIL "rc=$rc, $n failovers (want $count): ${summary:-no summary}"
  sed "s/^/  $name stderr: /" /tmp/$name.err | tail -n 60
  sed "s/^/  $name L2 console: /" /tmp/$name.log | tail -n 20
  for f in /l1-logs/$name/*.log; do
    [ -f "$f" ] && sed "s|^|  $name $(basename $f): |" "$f" | tail -n 40
  done
  return 1
}

run() {
  name=$1; shift
  wanted "$name" || return 0
  echo "NESTED-TEST-START $name at $(up)s"
  "$@"
}

selection=$1
run linux-boot t_linux_boot linux-boot monolithic "^" --cmdline "console=ttyS0 panic=-1"
run linux-boot-split t_linux_boot linux-boot-split split "kmsg: " \
  --cmdline "console=ttyS0 panic=-1 quiet"
run linux-reboot t_linux_boot linux-reboot monolithic "^" --on-reboot destroy \
  --cmdline "console=ttyS0 panic=-1 quiet action=reboot"
if wanted linux-virtio-acpi; then
  echo "NESTED-TEST-START linux-virtio-acpi at $(up)s"
  truncate -s 8M /tmp/disk.img
  t_linux_boot linux-virtio-acpi monolithic "^" --disk /tmp/disk.img \
    --cmdline "console=ttyS0 panic=-1 quiet" &&
    { grep -q "acpi-virtio=1" /tmp/linux-virtio-acpi.log ||
      report linux-virtio-acpi FAIL "the LNRO0005 device was not enumerated"; }
fi
run nested-boot t_nested nested-boot none 0 ${NESTED_BOOT_STEPS:-2000000}
run nested-kill t_nested nested-kill kill 3 ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 2000
run nested-failovers t_nested nested-failovers mixed 20 ${NESTED_LONG_STEPS:-320000000} \
  --nested-fault-every-ms 1000
run nested-register t_nested nested-register register 4 ${NESTED_REGISTER_STEPS:-50000000} \
  --nested-fault-every-ms 1000
run nested-big t_nested nested-big kill 3 ${NESTED_KILL_STEPS:-20000000} --nested-fault-every-ms 2000 \
  --memory 512
exit $failures
