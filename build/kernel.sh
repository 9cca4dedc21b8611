#!/usr/bin/env bash
# build/kernel.sh DIR: download the pinned Debian kernel package (cached
# outside the repo, keyed by version) and unpack it with depmod run into DIR.
set -euo pipefail
. images/kernel/version
cache=${ROS_CACHE:-$HOME/.cache/ros}/kernel
deb="$cache/${KERNEL_PKG}_${KERNEL_DEB_VERSION}_amd64.deb"
mkdir -p "$cache"
if [ ! -s "$deb" ]; then
  (cd "$cache" && apt-get download "$KERNEL_PKG=$KERNEL_DEB_VERSION") || {
    echo "kernel: cannot download $KERNEL_PKG=$KERNEL_DEB_VERSION; if Debian has moved on, update images/kernel/version (apt-cache policy linux-image-amd64)" >&2
    exit 1
  }
fi
out=$1
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
dpkg-deb -x "$deb" "$out.tmp"
/sbin/depmod -b "$out.tmp" "$KERNEL_RELEASE"
rm -rf "$out" && mv "$out.tmp" "$out"
