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
exit $failures
