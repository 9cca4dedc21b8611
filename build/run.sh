#!/usr/bin/env bash
# build/run.sh DISK: boot DISK in QEMU (software emulation, UEFI) with the
# serial console in this terminal and guest port 22 on 127.0.0.1:2222.
# Changes go to a copy-on-write overlay out/run.qcow2 (removed with `make clean`);
# pass ROS_RUN_FRESH=1 to start again from the built image.
set -euo pipefail
disk=$1
overlay=out/run.qcow2
if [ ! -f "$overlay" ] || [ "${ROS_RUN_FRESH:-}" = 1 ] || [ "$disk" -nt "$overlay" ]; then
  qemu-img create -q -f qcow2 -F raw -b "$(realpath "$disk")" "$overlay"
fi
cp /usr/share/OVMF/OVMF_VARS_4M.fd out/run-vars.fd
accel=tcg
[ -w /dev/kvm ] && accel=kvm
echo "Booting $disk (accel=$accel). Quit with Ctrl-A X. SSH: ssh -p 2222 rancher@127.0.0.1"
exec qemu-system-x86_64 -machine q35,accel=$accel -m 2048 -smp 2 \
  -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
  -drive if=pflash,format=raw,file=out/run-vars.fd \
  -drive if=virtio,format=qcow2,file="$overlay" \
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci,netdev=n0 \
  -device virtio-rng-pci -nographic -serial mon:stdio
