#!/usr/bin/env bash
# build/service-image.sh NAME VERSION OUT: build the system service image
# images/NAME from Debian packages with mmdebstrap (no Docker), and pack it
# as an image archive OUT tagged rosos/NAME:VERSION.
set -euo pipefail
name=$1 version=$2 out=$3
dir=images/$name
suite=${DEBIAN_SUITE:-bookworm}
pkgs=$(grep -v '^\s*#' "$dir/packages" | xargs | tr ' ' ',')
hooks=()
if [ -d "$dir/files" ]; then
  hooks+=(--customize-hook="sync-in $dir/files /")
fi
# Nothing a service needs at run time: docs, man pages, locales, apt lists.
hooks+=(--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mmdebstrap --quiet --variant=essential --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  "${hooks[@]}" "$suite" "$tmp/rootfs.tar"
cmd="" entrypoint=""
if [ -f "$dir/image" ]; then
  cmd=$(sed -n 's/^CMD=//p' "$dir/image")
  entrypoint=$(sed -n 's/^ENTRYPOINT=//p' "$dir/image")
fi
mkdir -p "$(dirname "$out")"
out/ros-build oci --rootfs "$tmp/rootfs.tar" --ref "docker.io/rosos/$name:$version" \
  --out "$out" ${cmd:+--cmd "$cmd"} ${entrypoint:+--entrypoint "$entrypoint"} \
  --label org.opencontainers.image.version="$version" > "$out.sha256"
echo "service image $name: $(du -h "$out" | cut -f1) $(cat "$out.sha256")"
