#!/bin/sh
# Builds the guest initramfs: busybox-static, the kernel modules the guest needs (virtiofs and
# overlayfs with their dependencies, resolved from each module's `depends=` modinfo field since
# the host has no depmod), and guest/init. Prints the path of the gzip'ed newc cpio on stdout.
#
# Usage: build-initramfs.sh KERNEL_DIR CACHE_DIR
#
# Cached as CACHE_DIR/initramfs/<sha256>.cpio.gz, keyed by the sha256 of every input (init
# script, busybox binary, module files, this script), so any change rebuilds.
set -eu

kdir=${1:?usage: build-initramfs.sh KERNEL_DIR CACHE_DIR}
cache=${2:?usage: build-initramfs.sh KERNEL_DIR CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox
# The modules /init must load; their dependencies are added in load order below. tun and dummy:
# pasta ([network] mode = "isolated", the default) needs /dev/net/tun and an uplink with a
# default route (guest/init makes a dummy one).
wanted="virtio_pci virtiofs overlay tun dummy"

log() { echo "vm/build-initramfs: $*" >&2; }

[ -x "$busybox" ] || { log "$busybox missing (apt-get install busybox-static)"; exit 1; }
modroot=$(ls -d "$kdir"/tree/lib/modules/*/kernel | head -n 1)
[ -d "$modroot" ] || { log "no lib/modules/*/kernel under $kdir/tree"; exit 1; }

ko_path() { # module name -> .ko path ("-" and "_" are interchangeable in module names)
    alt=$(echo "$1" | tr _ -)
    find "$modroot" \( -name "$1.ko" -o -name "$alt.ko" \) | head -n 1
}
ko_deps() { # module .ko -> its dependencies, space separated
    tr '\0' '\n' < "$1" | sed -n 's/^depends=//p' | head -n 1 | tr , ' '
}

# Depth-first topological order: a module comes after everything it depends on.
order=""
visit() {
    case " $order " in *" $1 "*) return 0 ;; esac
    ko=$(ko_path "$1")
    [ -n "$ko" ] || { log "module $1 not found under $modroot"; exit 1; }
    for dep in $(ko_deps "$ko"); do visit "$dep"; done
    order="$order $1"
}
for m in $wanted; do visit "$m"; done

key=$( {
    sha256sum "$here/guest/init" "$busybox" "$0"
    for m in $order; do sha256sum "$(ko_path "$m")"; done
} | sed 's/ .*//' | sha256sum | cut -c1-16)
out=$cache/initramfs/$key.cpio.gz
if [ -s "$out" ]; then
    log "using cached initramfs $key"
    echo "$out"
    exit 0
fi

log "building initramfs $key (modules:$order)"
mkdir -p "$cache/initramfs"
stage=$(mktemp -d "$cache/initramfs/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# mktemp -d gives 0700; the guest's non-root users must be able to traverse "/".
chmod 0755 "$stage"
mkdir -p "$stage/bin" "$stage/modules" "$stage/proc" "$stage/sys" "$stage/dev" \
    "$stage/xfer" "$stage/lower" "$stage/rw" "$stage/newroot"
cp "$busybox" "$stage/bin/busybox"
cp "$here/guest/init" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
for m in $order; do
    cp "$(ko_path "$m")" "$stage/modules/$m.ko"
done
echo "$order" | tr ' ' '\n' | sed '/^$/d' > "$stage/modules/load-order"
(cd "$stage" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
find "$cache/initramfs" -maxdepth 1 -name '*.cpio.gz' ! -name "$key.cpio.gz" -delete
echo "$out"
