# build/squashfs.sh, sourced by build/mkimage.sh and build/debian-ref.sh:
# how a root is compressed, the same for the OS's slot and for the Debian
# reference that `make bench` compares its size with.
#
# zstd: on the 2026-12-07 root, 210 MiB against gzip's 233 MiB (xz: 194,
# lzo: 253), and decompressed about three times as fast as gzip (unsquashfs,
# one thread), which counts at boot: every page of every program started is
# decompressed by the kernel under emulation. Level 15 compresses within a
# MiB of level 19 in a third of the time. GRUB 2.12 cannot read a zstd
# squashfs, so a slot's kernel and initrd are also kept as files beside it
# (A.boot/, docs/disk-layout.md).
SQUASHFS_OPTS=(-comp zstd -Xcompression-level 15 -noappend -quiet -no-progress)
