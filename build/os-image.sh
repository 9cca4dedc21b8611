#!/usr/bin/env bash
# build/os-image.sh VERSION: the OS as an OCI image archive,
# out/rosos-os-VERSION.oci.tar, from the root tree `make image` left in
# out/rootfs (kernel, initramfs, the preloaded service images). Its config
# carries io.rosos.os=true and the version; `ros os upgrade --file` takes it.
# With ROS_SIGNING_KEY (a PEM private key, `out/ros-build keygen`), the
# archive carries a cosign-form signature of the image too.
set -euo pipefail
version=$1
out=out/rosos-os-$version.oci.tar
tmp=$(mktemp -d -p out)
trap 'rm -rf "$tmp"' EXIT
tar --sort=name --numeric-owner --xattrs -C out/rootfs -cf "$tmp/rootfs.tar" .
out/ros-build oci --rootfs "$tmp/rootfs.tar" --ref "docker.io/rosos/os:$version" --layout "$tmp/layout" \
  --label io.rosos.os=true --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.title=rosos --env PATH=/usr/sbin:/usr/bin > "$tmp/digest"
rm "$tmp/rootfs.tar"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$tmp/layout" -cf "$out.tmp" .
if [ -n "${ROS_SIGNING_KEY:-}" ]; then
  out/ros-build sign --key "$ROS_SIGNING_KEY" "$out.tmp"
fi
mv "$out.tmp" "$out"
echo "OS image $version: $out $(du -h --apparent-size "$out" | cut -f1) $(cat "$tmp/digest")"
