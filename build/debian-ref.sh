#!/usr/bin/env bash
# build/debian-ref.sh OUTDIR: the reference image `make bench` compares the
# OS with: Debian (the suite of build/debian.env) with systemd, udev,
# rsyslog, openssh-server, chrony, acpid and docker.io with its client
# (docker-cli), made with mmdebstrap from Debian packages only, on the same
# kernel package as the OS (images/kernel/version), booted the same way
# (UEFI, GRUB, virtio). Its login user is rancher (in the docker and sudo
# groups) with the bench key OUTDIR/key.pub.
# Writes OUTDIR/debian.img (GPT: ESP + ext4 root), OUTDIR/debian-root.squashfs
# (the root compressed as the OS's slot is, to compare sizes fairly).
set -euo pipefail
. build/grub.sh
. build/squashfs.sh
out=$1
. images/kernel/version
mkdir -p "$out"
[ -f "$out/key" ] || ssh-keygen -q -t ed25519 -N '' -C bench -f "$out/key"
pub=$(cat "$out/key.pub")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
pkgs="systemd-sysv,udev,rsyslog,openssh-server,chrony,acpid,docker.io,docker-cli,sudo,iproute2,procps,$KERNEL_PKG=$KERNEL_DEB_VERSION,initramfs-tools,zstd"
mmdebstrap --quiet --variant=minbase --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='echo debian-ref > "$1/etc/hostname"' \
  --customize-hook='printf "LABEL=debroot / ext4 defaults 0 1\n" > "$1/etc/fstab"' \
  --customize-hook='printf "[Match]\nName=e*\n[Network]\nDHCP=yes\n" > "$1/etc/systemd/network/80-dhcp.network"' \
  --customize-hook='chroot "$1" systemctl enable systemd-networkd systemd-resolved >/dev/null 2>&1 || chroot "$1" systemctl enable systemd-networkd' \
  --customize-hook='chroot "$1" useradd -m -u 1100 -G sudo,docker -s /bin/bash rancher && chroot "$1" usermod -p "*" rancher' \
  --customize-hook='echo "rancher ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/rancher"' \
  --customize-hook="mkdir -p \"\$1/home/rancher/.ssh\" && echo '$pub' > \"\$1/home/rancher/.ssh/authorized_keys\" && chroot \"\$1\" chown -R rancher:rancher /home/rancher/.ssh && chmod 700 \"\$1/home/rancher/.ssh\"" \
  --customize-hook='printf "PasswordAuthentication no\nKbdInteractiveAuthentication no\n" > "$1/etc/ssh/sshd_config.d/bench.conf"' \
  --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*; chroot "$1" ssh-keygen -A' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  "$DEBIAN_SUITE" "$root" "$(debian_sources)"
cp "$root/boot/vmlinuz-$KERNEL_RELEASE" "$work/vmlinuz"
cp "$root/boot/initrd.img-$KERNEL_RELEASE" "$work/initrd.img"
mksquashfs "$root" "$out/debian-root.squashfs" "${SQUASHFS_OPTS[@]}"
# ESP: GRUB with the kernel and initramfs beside it.
mkdir -p "$work/esp/EFI/BOOT"
cat > "$work/grub.cfg" <<CFG
set timeout=0
search --no-floppy --label DEBREF_EFI --set=esp
linux (\$esp)/vmlinuz root=LABEL=debroot ro console=tty0 console=ttyS0,115200 net.ifnames=0 panic=10
initrd (\$esp)/initrd.img
boot
CFG
grub_efi "$work/esp/EFI/BOOT/BOOTX64.EFI" "$work/grub.cfg" \
  part_gpt fat ext2 search search_label linux echo normal serial terminal efi_gop all_video gzio
cp "$work/vmlinuz" "$work/initrd.img" "$work/esp/"
truncate -s 128M "$work/esp.img"
mkfs.vfat -F 32 -n DEBREF_EFI "$work/esp.img" >/dev/null
mcopy -s -i "$work/esp.img" "$work/esp/EFI" "$work/esp/vmlinuz" "$work/esp/initrd.img" ::
ROOT_MB=4096
truncate -s ${ROOT_MB}M "$work/root.img"
mkfs.ext4 -q -L debroot -d "$root" "$work/root.img"
img=$out/debian.img.tmp
rm -f "$img"
truncate -s $((1 + 128 + ROOT_MB + 1))M "$img"
sgdisk -o -n 1:2048:+128M -t 1:ef00 -n 2:0:+${ROOT_MB}M -t 2:8300 "$img" >/dev/null
put() {
  local start
  start=$(sgdisk -i "$1" "$img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  dd if="$2" of="$img" bs=1M seek=$((start * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
}
put 1 "$work/esp.img"
put 2 "$work/root.img"
mv "$img" "$out/debian.img"
echo "debian reference: root squashfs $(du -h --apparent-size "$out/debian-root.squashfs" | cut -f1), disk $(du -h "$out/debian.img" | cut -f1) on disk"
