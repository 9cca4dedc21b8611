#!/usr/bin/env bash
# build/kernel.sh DIR: download the pinned Debian kernel package (cached
# outside the repo, keyed by version) from the suite of build/debian.env and
# unpack it with depmod run into DIR. Debian ships the modules xz-compressed
# in /usr/lib/modules; the kernel decompresses them itself
# (CONFIG_MODULE_DECOMPRESS), so they stay compressed.
set -euo pipefail
. build/debian.sh
. images/kernel/version
cache=${ROS_CACHE:-$HOME/.cache/ros}/kernel
deb="$cache/${KERNEL_PKG}_${KERNEL_DEB_VERSION}_amd64.deb"
if [ ! -s "$deb" ]; then
  debian_download "$cache" "$KERNEL_PKG=$KERNEL_DEB_VERSION" || {
    echo "kernel: cannot download $KERNEL_PKG=$KERNEL_DEB_VERSION from $DEBIAN_SUITE; if Debian has moved on, update images/kernel/version" >&2
    exit 1
  }
fi
out=$1
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
dpkg-deb -x "$deb" "$out.tmp"
# The tree build/mkimage.sh reads: DIR/boot and DIR/lib/modules/RELEASE
# (merged /usr puts them in /usr/lib/modules).
if [ -d "$out.tmp/usr/lib/modules" ]; then
  mkdir -p "$out.tmp/lib" && mv "$out.tmp/usr/lib/modules" "$out.tmp/lib/modules"
fi
/sbin/depmod -b "$out.tmp" "$KERNEL_RELEASE"
rm -rf "$out" && mv "$out.tmp" "$out"
