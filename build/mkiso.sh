#!/usr/bin/env bash
# build/mkiso.sh: out/rosos.iso, a live ISO that boots under UEFI from what
# `make image` left in out/: slot A (the OS, booted read-only with nothing
# persistent) and the disk template disk.img.gz that `ros install` writes.
set -euo pipefail
. build/grub.sh
work=out/iso-work
rm -rf "$work" && mkdir -p "$work/iso" "$work/esp/EFI/BOOT"
grub_efi "$work/esp/EFI/BOOT/BOOTX64.EFI" build/grub-live.cfg \
  part_gpt part_msdos fat iso9660 squash4 loopback linux search search_label echo test true sleep gzio normal serial terminal efi_gop all_video reboot
truncate -s 8M "$work/iso/efiboot.img"
mkfs.vfat -n ROSOS_EFI "$work/iso/efiboot.img" >/dev/null
mcopy -s -i "$work/iso/efiboot.img" "$work/esp/EFI" ::
cp out/slot-A.squashfs "$work/iso/A"
mkdir "$work/iso/A.boot"
cp out/rootfs/boot/vmlinuz out/rootfs/boot/initrd "$work/iso/A.boot/"
# The disk image is sparse; gzip keeps it small on the ISO.
gzip -1 -c out/ros.img > "$work/iso/disk.img.gz"
xorriso -as mkisofs -quiet -V ROSOS_LIVE -J -r -o out/rosos.iso.tmp \
  -e efiboot.img -no-emul-boot "$work/iso"
mv out/rosos.iso.tmp out/rosos.iso
rm -rf "$work"
echo "live ISO: out/rosos.iso $(du -h --apparent-size out/rosos.iso | cut -f1)"
