#!/usr/bin/env bash
# build/kube-images.sh OUTDIR
#   The image archives a Kubernetes node imports at start (no registry):
#   pause (the pods' sandbox) and CoreDNS, each an OCI layout in a tar,
#   named by the io.containerd.image.name annotation (ctr import reads it).
# build/kube-images.sh --test OUTDIR
#   The test workload's image: busybox httpd from Debian's busybox-static,
#   serving its host name over CGI (tests/e2e put it on the nodes).
set -euo pipefail
. build/debian.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# archive NAME REF ROOTDIR ENTRYPOINT [CMD]: ROOTDIR as a one-layer image.
archive() {
  local name=$1 ref=$2 root=$3 entry=$4 cmd=${5:-}
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$tmp/$name.rootfs.tar" .
  out/ros-build oci --rootfs "$tmp/$name.rootfs.tar" --ref "$ref" --layout "$tmp/$name.layout" \
    --entrypoint "$entry" ${cmd:+--cmd "$cmd"} >/dev/null
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/$name.layout" -cf "$out/$name.tar" .
  echo "image archive $name ($ref): $(du -h "$out/$name.tar" | cut -f1)"
}

if [ "${1:-}" = --test ]; then
  out=$2; mkdir -p "$out"
  debian_download "$tmp/deb" busybox-static
  dpkg-deb -x "$tmp"/deb/busybox-static_*.deb "$tmp/deb/x"
  r=$tmp/httpd
  mkdir -p "$r/bin" "$r/www/cgi-bin" "$r/tmp" "$r/etc"
  cp "$tmp/deb/x/usr/bin/busybox" "$r/bin/busybox"
  for a in sh hostname httpd wget nslookup cat sleep; do ln -s busybox "$r/bin/$a"; done
  printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nhostname\n' > "$r/www/cgi-bin/host"
  chmod 0755 "$r/www/cgi-bin/host"
  echo ok > "$r/www/index.html"
  archive httpd docker.io/rosos/httpd-test:1 "$r" /bin/busybox httpd,-f,-p,8080,-h,/www
  exit 0
fi

out=$1; mkdir -p "$out"
r=$tmp/pause; mkdir -p "$r"
install -m 0755 out/kube/pause "$r/pause"
archive pause "$(sed -n 's/^const PauseImage = "\(.*\)"$/\1/p' cmd/kube/node/agent.go)" "$r" /pause
r=$tmp/coredns; mkdir -p "$r/etc/coredns"
install -m 0755 out/kube/coredns "$r/coredns"
archive coredns "docker.io/rosos/coredns:$(sed -n 's|.*github.com/coredns/coredns v\([0-9.]*\).*|\1|p' cmd/kube/coredns/go.mod)" "$r" /coredns
