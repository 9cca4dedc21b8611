# Sourced by the build scripts: GRUB's tools at the version build/debian.env
# pins, whatever GRUB the build machine has. They run in a small root of the
# suite (made once with mmdebstrap, cached outside the repo by version),
# because GRUB 2.12's tools are linked against the suite's libraries.
#   grub_efi OUT.EFI GRUB.CFG MODULES...  a standalone x86_64-efi GRUB
#                                         with GRUB.CFG embedded
#   grub_editenv FILE ARGS...             grub-editenv on FILE
# shellcheck shell=bash
. build/debian.sh
GRUB_ROOT=${ROS_CACHE:-$HOME/.cache/ros}/grub-$GRUB_DEB_VERSION

grub_root() {
  [ -x "$GRUB_ROOT/usr/bin/grub-mkstandalone" ] && return 0
  echo "grub: making the $DEBIAN_SUITE root for GRUB $GRUB_DEB_VERSION in $GRUB_ROOT" >&2
  rm -rf "$GRUB_ROOT.tmp"
  mmdebstrap --quiet --variant=essential \
    --include="grub-efi-amd64-bin=$GRUB_DEB_VERSION,grub-common=$GRUB_DEB_VERSION" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    "$DEBIAN_SUITE" "$GRUB_ROOT.tmp" "$(debian_sources)" || {
      echo "grub: cannot install GRUB $GRUB_DEB_VERSION from $DEBIAN_SUITE; if Debian has moved on, update GRUB_DEB_VERSION in build/debian.env" >&2
      return 1
    }
  mv "$GRUB_ROOT.tmp" "$GRUB_ROOT"
}

grub_efi() {
  local out=$1 cfg=$2; shift 2
  grub_root
  local w
  w=$(mktemp -d "$GRUB_ROOT/tmp/efi.XXXXXX")
  cp "$cfg" "$w/grub.cfg"
  chroot "$GRUB_ROOT" grub-mkstandalone -O x86_64-efi -o "/tmp/${w##*/}/BOOTX64.EFI" \
    --modules="$*" --locales= --fonts= --themes= "boot/grub/grub.cfg=/tmp/${w##*/}/grub.cfg"
  mv "$w/BOOTX64.EFI" "$out"
  rm -rf "$w"
}

grub_editenv() {
  local file=$1; shift
  grub_root
  local w
  w=$(mktemp -d "$GRUB_ROOT/tmp/env.XXXXXX")
  [ -f "$file" ] && cp "$file" "$w/grubenv"
  chroot "$GRUB_ROOT" grub-editenv "/tmp/${w##*/}/grubenv" "$@"
  mv "$w/grubenv" "$file"
  rm -rf "$w"
}
