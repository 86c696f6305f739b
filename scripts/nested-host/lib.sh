# scripts/nested-host/lib.sh: helpers the image builders source.

# add_binary ROOT FILE: FILE into ROOT/usr/bin and every shared library ldd lists (and the
# dynamic loader) at its path under ROOT, debug info stripped.
add_binary() {
  local root=$1 bin=$2 lib
  mkdir -p "$root/usr/bin"
  strip --strip-debug -o "$root/usr/bin/$(basename "$bin")" "$bin"
  for lib in $(ldd "$bin" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/.*ld-linux/ {print $1}'); do
    [ -f "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    strip --strip-debug -o "$root$lib" "$(readlink -f "$lib")" 2>/dev/null || cp -L "$lib" "$root$lib"
  done
}

# pack ROOT OUT: ROOT as a gzip'd newc cpio in OUT (written atomically).
pack() {
  (cd "$1" && find . | cpio -o -H newc --quiet) | gzip -1 > "$2.tmp"
  mv "$2.tmp" "$2"
}
