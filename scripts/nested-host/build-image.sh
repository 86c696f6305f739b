#!/bin/bash
# Builds the emulated host's initramfs (docs/nested.md, "The emulated host"):
#   OUT/host.cpio.gz   busybox, the kvm/kvm-amd modules, rehome (stripped) and its shared
#                      libraries, the test guest, Debian's cloud kernel (for guests of rehome),
#                      the small Linux guest image and nested mode's L1 image (build-l1-image.sh),
#                      with init.sh as /init and tests.sh
#   OUT/vmlinuz        the kernel QEMU boots as the emulated host (the same cloud kernel)
# Usage: build-image.sh BUILD_DIR [OUT]   (OUT default: build-nested next to BUILD_DIR's parent)
# The kernel package is fetched once (fetch-kernel.sh) into OUT/cache; the image is rebuilt
# only when one of its inputs is newer than it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=$(cd "${1:?usage: build-image.sh BUILD_DIR [OUT]}" && pwd)
out=${2:-$here/../../build-nested}
mkdir -p "$out" && out=$(cd "$out" && pwd)
"$here/fetch-kernel.sh" "$out/cache" >/dev/null || { "$here/fetch-kernel.sh" "$out/cache"; exit 1; }
"$here/build-l1-image.sh" "$build" "$out" >/dev/null
for tool in busybox cpio gzip strip; do
  command -v $tool >/dev/null || { echo "build-image.sh: $tool missing (make deps)"; exit 1; }
done
[ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' ||
  { echo "build-image.sh: /bin/busybox is not busybox-static (apt-get install busybox-static)"; exit 1; }
guest=$build/guest/rehome-guest.elf
[ -f "$guest" ] || guest=$(grep -m1 '^REHOME_GUEST_ELF:' "$build/CMakeCache.txt" | cut -d= -f2)
inputs=("$build/rehome" "$guest" "$out/cache/vmlinuz" "$here/init.sh" "$here/tests.sh"
        "$here/build-image.sh" "$here/guest-init.sh" "$here/build-guest-initramfs.sh")
inputs+=("$out/l1.cpio.gz" "$here/lib.sh")
fresh=1
[ -f "$out/host.cpio.gz" ] || fresh=0
for f in "${inputs[@]}"; do [ "$f" -nt "$out/host.cpio.gz" ] && fresh=0; done
if [ $fresh = 1 ]; then echo "$out/host.cpio.gz is up to date"; exit 0; fi

root=$out/root
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,lib/modules,usr/bin,share,l1-logs}
cp /bin/busybox "$root/bin/busybox"
cp "$out"/cache/modules/*.ko "$root/lib/modules/"
cp "$here/init.sh" "$root/init" && chmod +x "$root/init"
cp "$here/tests.sh" "$root/share/tests.sh"
cp "$out/cache/vmlinuz" "$root/share/vmlinuz"
cp "$guest" "$root/share/rehome-guest.elf"

add_binary "$root" "$build/rehome"

# A Linux guest of rehome: busybox and an init that reports and powers off (or reboots).
"$here/build-guest-initramfs.sh" "$out/hello.cpio.gz" "$out/cache/modules" >/dev/null
cp "$out/hello.cpio.gz" "$root/share/hello.cpio.gz"
cp "$out/l1.cpio.gz" "$root/share/l1.cpio.gz"

pack "$root" "$out/host.cpio.gz"
cp "$out/cache/vmlinuz" "$out/vmlinuz"
rm -rf "$root"
echo "$out/host.cpio.gz: $(du -h "$out/host.cpio.gz" | cut -f1)"
