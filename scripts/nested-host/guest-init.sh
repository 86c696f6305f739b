#!/bin/busybox sh
# /init of the small Linux guest rehome boots in the nested tests: reports what the kernel
# found (CPUs, virtio devices described in ACPI) on the console and through the kernel log,
# then powers off, or reboots (action=reboot) or panics (action=panic; with the pvpanic modules
# loaded, the kernel's panic notifier reports it to rehome through the DSDT's QEMU0001 device).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in pvpanic pvpanic-mmio; do
  [ -f /lib/modules/$m.ko ] && /bin/busybox insmod /lib/modules/$m.ko
done
cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)
virtio=$(/bin/busybox ls /sys/bus/acpi/devices 2>/dev/null | /bin/busybox grep -c LNRO0005)
pvpanic=$(/bin/busybox ls /sys/bus/acpi/devices 2>/dev/null | /bin/busybox grep -c QEMU0001)
line="REHOME-LINUX-BOOTED cpus=$cpus acpi-virtio=$virtio acpi-pvpanic=$pvpanic uptime=$(/bin/busybox cut -d' ' -f1 /proc/uptime)"
echo "$line"                     # through the tty (interrupt-driven UART output)
echo "<2>kmsg: $line" > /dev/kmsg  # through printk (polled console; level 2 passes "quiet")
/bin/busybox sleep 1             # let the tty drain before the machine goes away
echo "<2>kmsg: serial interrupts: $(/bin/busybox grep -E 'ttyS|serial' /proc/interrupts | /bin/busybox tr -s ' ')" > /dev/kmsg
case "$(/bin/busybox cat /proc/cmdline)" in
  *action=reboot*) /bin/busybox reboot -f ;;
  *action=panic*) echo c > /proc/sysrq-trigger ;;
  *) /bin/busybox poweroff -f ;;
esac
