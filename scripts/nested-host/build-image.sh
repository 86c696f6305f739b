#!/bin/bash
# Builds the emulated host's initramfs (docs/nested.md, "The emulated host"):
#   OUT/host.cpio.gz   busybox, the kvm/kvm-amd modules, rehome (stripped) and its shared
#                      libraries, the test guest, Debian's cloud kernel (for guests of rehome)
#                      and small Linux guest images, with init.sh as /init and tests.sh
#   OUT/vmlinuz        the kernel QEMU boots as the emulated host (the same cloud kernel)
# Usage: build-image.sh BUILD_DIR [OUT]   (OUT default: build-nested next to BUILD_DIR's parent)
# The kernel package is fetched once (fetch-kernel.sh) into OUT/cache; the image is rebuilt
# only when one of its inputs is newer than it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: build-image.sh BUILD_DIR [OUT]}" && pwd)
out=${2:-$here/../../build-nested}
mkdir -p "$out" && out=$(cd "$out" && pwd)
"$here/fetch-kernel.sh" "$out/cache" >/dev/null || { "$here/fetch-kernel.sh" "$out/cache"; exit 1; }
for tool in busybox cpio gzip strip; do
  command -v $tool >/dev/null || { echo "build-image.sh: $tool missing (make deps)"; exit 1; }
done
[ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' ||
  { echo "build-image.sh: /bin/busybox is not busybox-static (apt-get install busybox-static)"; exit 1; }
guest=$build/guest/rehome-guest.elf
[ -f "$guest" ] || guest=$(grep -m1 '^REHOME_GUEST_ELF:' "$build/CMakeCache.txt" | cut -d= -f2)
inputs=("$build/rehome" "$guest" "$out/cache/vmlinuz" "$here/init.sh" "$here/tests.sh"
        "$here/build-image.sh" "$here/guest-init.sh" "$here/build-guest-initramfs.sh")
[ -x "$build/rehome-agent" ] && inputs+=("$build/rehome-agent")
fresh=1
[ -f "$out/host.cpio.gz" ] || fresh=0
for f in "${inputs[@]}"; do [ "$f" -nt "$out/host.cpio.gz" ] && fresh=0; done
if [ $fresh = 1 ]; then echo "$out/host.cpio.gz is up to date"; exit 0; fi

root=$out/root
rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,lib/modules,usr/bin,share}
cp /bin/busybox "$root/bin/busybox"
cp "$out"/cache/modules/*.ko "$root/lib/modules/"
cp "$here/init.sh" "$root/init" && chmod +x "$root/init"
cp "$here/tests.sh" "$root/share/tests.sh"
cp "$out/cache/vmlinuz" "$root/share/vmlinuz"
cp "$guest" "$root/share/rehome-guest.elf"

# A binary and the shared libraries it needs (and their loader), stripped.
add_binary() {
  strip --strip-debug -o "$root/usr/bin/$(basename "$1")" "$1"
  for lib in $(ldd "$1" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/.*ld-linux/ {print $1}'); do
    [ -f "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    strip --strip-debug -o "$root$lib" "$(readlink -f "$lib")" 2>/dev/null || cp -L "$lib" "$root$lib"
  done
}
add_binary "$build/rehome"
[ -x "$build/rehome-agent" ] && add_binary "$build/rehome-agent"
# libvirt's validation of domain XML looks for its schemas; rehome runs without them.

# A Linux guest of rehome: busybox and an init that reports and powers off (or reboots).
"$here/build-guest-initramfs.sh" "$out/hello.cpio.gz" >/dev/null
cp "$out/hello.cpio.gz" "$root/share/hello.cpio.gz"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/host.cpio.gz.tmp"
mv "$out/host.cpio.gz.tmp" "$out/host.cpio.gz"
cp "$out/cache/vmlinuz" "$out/vmlinuz"
rm -rf "$root"
echo "$out/host.cpio.gz: $(du -h "$out/host.cpio.gz" | cut -f1)"
