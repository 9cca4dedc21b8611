# build/squashfs.sh, sourced by build/mkimage.sh and build/debian-ref.sh:
# how a root is compressed, the same for the OS's slot and for the Debian
# reference that `make bench` compares its size with.
#
# zstd: on the 2026-12-07 root, 210 MiB against gzip's 233 MiB (xz: 194,
# lzo: 253). unsquashfs decompresses it twice as fast as gzip; in the
# booted node's kernel, under emulation, a program is read 10-25% faster,
# and the boot's times did not move beyond their spread (docs/performance.md):
# it is here for the size. Level 19: 1.5 MiB smaller than level 15 on the
# 2026-12-08 root (level 22 another 4 KiB), and no slower to read (zstd
# decompresses as fast or faster at higher levels), for about 90 s more of
# mksquashfs on 2 cores. GRUB 2.12 cannot read a zstd squashfs, so a slot's
# kernel and initrd are also kept as files beside it (A.boot/,
# docs/disk-layout.md).
SQUASHFS_OPTS=(-comp zstd -Xcompression-level 19 -noappend -quiet -no-progress)
