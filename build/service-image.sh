#!/usr/bin/env bash
# build/service-image.sh rootfs NAME VERSION OUT.rootfs.tar
#   The root file system of images/NAME as a tar, from Debian packages of
#   the suite build/debian.env names, with mmdebstrap (NAME=base: Debian's
#   essential set alone, the first layer of every Debian-based service
#   image), or, with FROM=scratch in
#   images/NAME/image, of its files and the ros binary. No Docker.
# build/service-image.sh pack NAME VERSION OUTDIR
#   That root as an OCI image layout tagged rosos/NAME:VERSION: the base
#   layer and what the image adds to it.
# images/NAME holds: packages (one per line), files/ (copied over the root),
# customize (a script run with the root as $1), image (CMD=, ENTRYPOINT=, FROM=).
set -euo pipefail
mode=$1 name=$2 version=$3 out=$4
dir=images/$name
. build/debian.sh
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
    "${hooks[@]}" "$DEBIAN_SUITE" "$tar" "$(debian_sources)"
}

case "$mode" in
rootfs) # the image's whole root file system, as a tar
  if [ "$name" = base ]; then
    debian_root "$tmp/rootfs.tar"
  elif [ "$(setting FROM)" = scratch ]; then
    mkdir -p "$tmp/root/usr/bin"
    [ -d "$dir/files" ] && cp -a "$dir/files/." "$tmp/root/"
    cp out/bin/ros "$tmp/root/usr/bin/ros"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/root" -cf "$tmp/rootfs.tar" .
  else
    mapfile -t pkgs < <(grep -v '^\s*#' "$dir/packages" | sed '/^\s*$/d')
    # A line may pin a version from build/debian.env: docker.io=${DOCKER_DEB_VERSION}.
    pkgs=("${pkgs[@]//\$\{DOCKER_DEB_VERSION\}/$DOCKER_DEB_VERSION}")
    debian_root "$tmp/rootfs.tar" "${pkgs[@]}"
  fi
  mv "$tmp/rootfs.tar" "$out"
  echo "root file system $name: $(du -h "$out" | cut -f1)"
  ;;
pack) # the OCI layout, over the base layer for Debian images
  base=()
  if [ "$(setting FROM)" != scratch ]; then base=(--base out/images/base.rootfs.tar); fi
  cmd=$(setting CMD) entrypoint=$(setting ENTRYPOINT)
  out/ros-build oci --rootfs "out/images/$name.rootfs.tar" "${base[@]}" --ref "docker.io/rosos/$name:$version" \
    --layout "$out" ${cmd:+--cmd "$cmd"} ${entrypoint:+--entrypoint "$entrypoint"} \
    --label org.opencontainers.image.version="$version" > "$tmp/digest"
  echo "service image $name: $(du -sh "$out" | cut -f1) $(cat "$tmp/digest")"
  ;;
*) echo "usage: $0 rootfs|pack NAME VERSION OUT" >&2; exit 2 ;;
esac
