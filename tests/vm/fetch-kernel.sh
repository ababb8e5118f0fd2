#!/bin/sh
# Fetches the Debian cloud kernel package (the current dependency of the metapackage
# linux-image-cloud-amd64, as apt reports it) and extracts it. Prints the directory holding
# boot/vmlinuz-* and lib/modules/<ver>/ on stdout; all diagnostics go to stderr.
#
# Usage: fetch-kernel.sh CACHE_DIR
#
# The extracted tree is cached under CACHE_DIR/kernel/<package>_<version>/, so the key is the
# exact package version apt resolves (a new Debian point release gives a new directory).
# `apt-get download` checks the .deb against the signed Release/Packages hashes; we record
# its sha256 next to the tree for the log. The .deb itself is kept next to the tree.
set -eu

cache=${1:?usage: fetch-kernel.sh CACHE_DIR}
meta=linux-image-cloud-amd64

log() { echo "vm/fetch-kernel: $*" >&2; }

resolve_pkg() {
    apt-cache depends "$meta" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}

pkg=$(resolve_pkg)
if [ -z "$pkg" ]; then
    log "apt does not know $meta yet; running apt-get update"
    apt-get update -qq >&2
    pkg=$(resolve_pkg)
fi
[ -n "$pkg" ] || { log "cannot resolve the kernel package behind $meta"; exit 1; }
ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: *//p')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || { log "no installable candidate for $pkg"; exit 1; }

dir=$cache/kernel/${pkg}_$ver
if [ -f "$dir/.complete" ]; then
    log "using cached $pkg $ver"
    echo "$dir"
    exit 0
fi

log "downloading $pkg $ver"
rm -rf "$dir"
mkdir -p "$dir/deb"
# apt-get download writes into the current directory; run it in a subshell.
(cd "$dir/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) || { log "apt-get download failed"; exit 1; }
deb=$(ls "$dir"/deb/*.deb)
sha256sum "$deb" | cut -d' ' -f1 > "$dir/deb.sha256"
dpkg-deb -x "$deb" "$dir/tree"

ls "$dir"/tree/boot/vmlinuz-* >/dev/null 2>&1 || { log "no vmlinuz in $pkg"; exit 1; }
touch "$dir/.complete"
# Drop kernels of earlier Debian versions from the cache.
for old in "$cache"/kernel/*/; do
    [ "${old%/}" = "$dir" ] || rm -rf "${old%/}"
done
log "extracted to $dir (deb sha256 $(cat "$dir/deb.sha256"))"
echo "$dir"
