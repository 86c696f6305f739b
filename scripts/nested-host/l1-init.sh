#!/bin/busybox sh
# /init of an L1 VM in nested mode (docs/nested.md): loads KVM and runs rehome-agent, whose
# output goes to the L1's console. If the agent ever exits, this init stays (a dead agent is
# reported by its watcher and L0 fences the whole L1).
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
insmod /lib/modules/irqbypass.ko
insmod /lib/modules/kvm.ko
insmod /lib/modules/kvm-amd.ko || echo "rehome-l1: insmod kvm-amd failed (no SVM?)"
# pvpanic: the kernel's panic notifier tells L0 at once (the "QEMU0001" device in the DSDT).
insmod /lib/modules/pvpanic.ko && insmod /lib/modules/pvpanic-mmio.ko ||
  echo "rehome-l1: insmod pvpanic failed (L0 learns of a panic only when the L1 resets)"
echo "rehome-l1: up $(cut -d' ' -f1 /proc/uptime)s, $(ls /dev/kvm 2>&1), cpu flags:" \
  "$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'xsave|avx|avx2|svm|npt' | tr '\n' ' ')"
dmesg | grep -i -E 'xsave|xstate|x86/fpu' | head -n 5 | sed 's/^/rehome-l1: /'
/usr/bin/rehome-agent
echo "rehome-l1: rehome-agent exited with status $?"
while true; do sleep 3600; done
