#!/usr/bin/env bash
# build/service-image.sh NAME VERSION OUT
#   NAME=base: Debian's essential set, with mmdebstrap, as a gzip tar OUT: the
#   first layer of every service image.
#   Otherwise: the system service image images/NAME, as an OCI image layout
#   OUT tagged rosos/NAME:VERSION. From Debian packages (images/NAME/packages,
#   built on out/images/base.tar.gz), or FROM=scratch in images/NAME/image for
#   an image of the files alone. No Docker.
# images/NAME holds: packages (one per line), files/ (copied over the root),
# customize (a script run with the root as $1), image (CMD=, ENTRYPOINT=, FROM=).
set -euo pipefail
name=$1 version=$2 out=$3
dir=images/$name
suite=${DEBIAN_SUITE:-bookworm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
setting() { [ -f "$dir/image" ] && sed -n "s/^$1=//p" "$dir/image" || true; }
mkdir -p "$(dirname "$out")"

debian_root() { # debian_root TAR PACKAGES...
  local tar=$1; shift
  local hooks=()
  if [ -d "$dir/files" ]; then hooks+=(--customize-hook="sync-in $dir/files /"); fi
  if [ -x "$dir/customize" ]; then hooks+=(--customize-hook="$dir/customize \"\$1\""); fi
  # Nothing a service needs at run time: docs, man pages, locales, apt lists.
  hooks+=(--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*')
  local include=()
  if [ $# -gt 0 ]; then include=(--include="$(IFS=,; echo "$*")"); fi
  mmdebstrap --quiet --variant=essential "${include[@]}" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    "${hooks[@]}" "$suite" "$tar"
}

if [ "$name" = base ]; then
  debian_root "$tmp/base.tar"
  gzip -n -6 -c "$tmp/base.tar" > "$out.tmp" && mv "$out.tmp" "$out"
  echo "base layer: $(du -h "$out" | cut -f1)"
  exit 0
fi

base=()
if [ "$(setting FROM)" = scratch ]; then
  mkdir -p "$tmp/root/usr/bin"
  [ -d "$dir/files" ] && cp -a "$dir/files/." "$tmp/root/"
  cp out/bin/ros "$tmp/root/usr/bin/ros"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/root" -cf "$tmp/rootfs.tar" .
else
  mapfile -t pkgs < <(grep -v '^\s*#' "$dir/packages" | sed '/^\s*$/d')
  debian_root "$tmp/rootfs.tar" "${pkgs[@]}"
  base=(--base out/images/base.tar.gz)
fi
cmd=$(setting CMD) entrypoint=$(setting ENTRYPOINT)
out/ros-build oci --rootfs "$tmp/rootfs.tar" "${base[@]}" --ref "docker.io/rosos/$name:$version" \
  --layout "$out" ${cmd:+--cmd "$cmd"} ${entrypoint:+--entrypoint "$entrypoint"} \
  --label org.opencontainers.image.version="$version" > "$tmp/digest"
echo "service image $name: $(du -sh "$out" | cut -f1) $(cat "$tmp/digest")"
