#!/usr/bin/env bash
# build/mkimage.sh VERSION: assemble the initramfs, the slot image and the
# raw GPT disk out/ros.img from what `make build`, the kernel and the service
# images left in out/. Plain files only: no loop mounts.
set -euo pipefail
. build/grub.sh
. build/squashfs.sh
version=$1
. images/kernel/version
K=out/kernel
MODS=$K/lib/modules/$KERNEL_RELEASE
work=out/work
rm -rf "$work" && mkdir -p "$work"

copy_modules() { # copy_modules DEST LIST...: the listed modules and their dependencies
  local dest=$1; shift
  mkdir -p "$dest/lib/modules/$KERNEL_RELEASE"
  out/ros-build modules "$MODS" "$@" > "$work/mods.txt"
  (cd "$MODS" && cp --parents $(cat "$OLDPWD/$work/mods.txt") "$OLDPWD/$dest/lib/modules/$KERNEL_RELEASE/")
  cp "$MODS"/modules.builtin "$MODS"/modules.builtin.modinfo "$MODS"/modules.order "$dest/lib/modules/$KERNEL_RELEASE/"
  /sbin/depmod -b "$dest" "$KERNEL_RELEASE"
}

echo "== initramfs"
I=$work/initrd
mkdir -p $I/{dev,proc,sys,run,sysroot,etc/ros}
cp out/bin/ros-init $I/init
copy_modules $I images/kernel/initrd-modules
# Stored uncompressed: the initramfs is compressed as a whole, and the kernel
# inflating one gzip stream is quicker than decompressing each .ko.xz as
# stage 1 loads it (2.6 s for the list under TCG).
find $I/lib/modules -name '*.ko.xz' -exec xz -d {} +
/sbin/depmod -b "$I" "$KERNEL_RELEASE"
grep -v '^\s*#' images/kernel/initrd-modules | sed '/^\s*$/d' > $I/etc/ros/initrd-modules
mknod -m 600 $I/dev/console c 5 1
(cd $I && find . | sort | cpio --quiet -o -H newc -R 0:0) | gzip -6 > $work/initrd.gz

echo "== root file system"
R=$work/rootfs
mkdir -p $R/{boot,dev,proc,sys,run,tmp,mnt,media,root,home,opt,srv,etc/ros,usr/bin,usr/sbin,usr/share/ros/images,var/lib/rancher,var/lib/user-docker,var/log,var/tmp}
ln -s usr/bin $R/bin && ln -s usr/sbin $R/sbin && ln -s usr/lib $R/lib && ln -s usr/lib64 $R/lib64
mkdir -p $R/usr/lib $R/usr/lib64
cp out/bin/ros out/bin/ros-init out/bin/containerd out/bin/containerd-shim-runc-v2 out/bin/runc out/bin/crun $R/usr/bin/
ln -s ../bin/ros-init $R/usr/sbin/init
ln -s ../bin/ros-init $R/usr/sbin/modprobe
copy_modules $R/usr images/kernel/modules images/kernel/boot-modules
grep -v '^\s*#' images/kernel/boot-modules | sed '/^\s*$/d' > $R/etc/ros/modules
cp $K/boot/vmlinuz-$KERNEL_RELEASE $R/boot/vmlinuz
cp $work/initrd.gz $R/boot/initrd
cat > $R/etc/os-release <<OS
NAME="rosos"
ID=rosos
ID_LIKE=rancheros
VERSION="$version"
VERSION_ID="$version"
PRETTY_NAME="rosos $version"
HOME_URL="https://github.com/rosos/ros"
OS
cp $R/etc/os-release $R/usr/share/ros/os-release
printf 'root:x:0:0:root:/root:/bin/sh\n' > $R/etc/passwd
printf 'root:x:0:\ntty:x:5:\n' > $R/etc/group
printf 'rancher\n' > $R/etc/hostname
: > $R/etc/resolv.conf
printf '127.0.0.1\tlocalhost\n' > $R/etc/hosts
sed "s/\${VERSION}/$version/g" os-config.tpl.yml > $R/usr/share/ros/os-config.yml
# The parses of its service definitions, as its boots would make them
# (compose.LoadKnown).
out/ros-build parsed --config $R/usr/share/ros/os-config.yml --version "$version" --out $R/usr/share/ros/services.parsed.json
cp docs/config.schema.json $R/usr/share/ros/config.schema.json
# The service images: each one's root file system unpacked, with its
# config in image.json. Services run on them in place (an overlay per
# container), so a node never imports or copies them; mksquashfs stores the
# files the images share (their base) once.
for i in ${SERVICE_IMAGES:?}; do
  d=$R/usr/share/ros/images/$i
  mkdir -p $d/rootfs
  tar -xf out/images/$i.rootfs.tar -C $d/rootfs --numeric-owner
  # The device nodes mmdebstrap makes in /dev: a container gets its own
  # /dev from the runtime, and an OS image with device nodes is refused by
  # ros os upgrade.
  if [ -d $d/rootfs/dev ]; then find $d/rootfs/dev -mindepth 1 \( -type b -o -type c \) -delete; fi
  out/ros-build preload --layout out/images/$i --out $d/image.json
done
# The images share their Debian base file for file: hard links keep one copy
# (in the OS image archive and in a slot an upgrade writes; squashfs
# deduplicates on its own).
hardlink -q $R/usr/share/ros/images >/dev/null
echo "service images: $(du -sh $R/usr/share/ros/images | cut -f1)"

echo "== slot image"
# zstd (build/squashfs.sh). GRUB cannot read it: the slot's kernel and
# initrd go beside it too, in A.boot/ (below).
mksquashfs $R $work/A "${SQUASHFS_OPTS[@]}"

echo "== ESP"
mkdir -p $work/esp/EFI/BOOT $work/esp/EFI/ros
grub_efi $work/esp/EFI/BOOT/BOOTX64.EFI build/grub-embed.cfg \
  part_gpt fat ext2 squash4 loopback linux search search_label configfile echo test true loadenv sleep gzio xzio normal serial terminal efi_gop all_video reboot
grub_editenv $work/esp/EFI/ros/grubenv create
grub_editenv $work/esp/EFI/ros/grubenv set ros_active=A ros_next= ros_failed= ros_A_tries=3 ros_B_tries=0
truncate -s 64M $work/esp.img
mkfs.vfat -F 32 -n RANCHER_EFI $work/esp.img >/dev/null
mcopy -s -i $work/esp.img $work/esp/EFI ::

echo "== state and persistent partitions"
mkdir -p $work/state
cp build/grub.cfg $work/state/grub.cfg
mv $work/A $work/state/A
mkdir $work/state/A.boot
cp $R/boot/vmlinuz $R/boot/initrd $work/state/A.boot/
# The state partition holds two slots: the built one (squashfs, ~0.2 GB) and
# one an upgrade writes (a directory, ~0.7 GB), with room for both to grow.
STATE_MB=3072 PERSIST_MB=2048 ESP_MB=64
truncate -s ${STATE_MB}M $work/state.img
mkfs.ext4 -q -L RANCHER_STATE -d $work/state $work/state.img
truncate -s ${PERSIST_MB}M $work/persistent.img
# ext4 labels hold 16 bytes: the partition is found by its GPT name
# RANCHER_PERSISTENT; the file system label is the short form.
mkfs.ext4 -q -L RANCHER_PERSIST $work/persistent.img

echo "== disk"
img=out/ros.img.tmp
rm -f $img
truncate -s $((1 + ESP_MB + STATE_MB + PERSIST_MB + 1))M $img
sgdisk -o -n 1:2048:+${ESP_MB}M -t 1:ef00 -c 1:RANCHER_EFI \
          -n 2:0:+${STATE_MB}M -t 2:8300 -c 2:RANCHER_STATE \
          -n 3:0:+${PERSIST_MB}M -t 3:8300 -c 3:RANCHER_PERSISTENT $img >/dev/null
put() { # put PARTNUM IMAGE
  local start
  start=$(sgdisk -i "$1" $img | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  if [ -z "$start" ]; then echo "mkimage: partition $1 missing from $img" >&2; exit 1; fi
  dd if="$2" of=$img bs=1M seek=$((start * 512)) oflag=seek_bytes conv=notrunc,sparse status=none
}
put 1 $work/esp.img
put 2 $work/state.img
put 3 $work/persistent.img
mv $img out/ros.img
cp $work/initrd.gz out/initrd
cp $work/state/A out/slot-A.squashfs
echo "sizes: initrd $(du -h --apparent-size out/initrd | cut -f1), slot A $(du -h --apparent-size out/slot-A.squashfs | cut -f1), ros.img $(du -h --apparent-size out/ros.img | cut -f1) ($(du -h out/ros.img | cut -f1) on disk)"
# The root tree stays for `make os-image`.
rm -rf out/rootfs && mv $R out/rootfs
rm -rf $work
