#!/usr/bin/env bash
# build/iptables.sh DIR: xtables-nft-multi and xtables-legacy-multi
# (iptables, ip6tables and their -save and -restore, for the nft and the
# legacy backend) in DIR, linked static with every extension built in, for
# the docker image (images/docker/customize installs them over Debian's).
# The upstream release of the suite's iptables (IPTABLES_VERSION in
# build/debian.env), built against libnftnl and libmnl from the suite's -dev
# packages (their static libraries); every download is checked against the
# hash build/debian.env pins.
#
# Why: dockerd runs about 70 iptables processes, one after another, before
# its API answers. Debian's is dynamic: each run loads four libraries and
# dlopen()s an extension per match and target, which under emulation is a
# good part of each run (docs/performance.md).
set -euo pipefail
. build/debian.env
. build/fetch.sh
dir=$1
src=$(fetch iptables "pool/main/i/iptables/iptables_$IPTABLES_VERSION.orig.tar.xz" "$IPTABLES_ORIG_SHA256")
mnl=$(fetch iptables "$LIBMNL_DEV_DEB" "$LIBMNL_DEV_SHA256")
nftnl=$(fetch iptables "$LIBNFTNL_DEV_DEB" "$LIBNFTNL_DEV_SHA256")

mkdir -p out
work=$(mktemp -d -p out)
trap 'rm -rf "$work"' EXIT
work=$(cd "$work" && pwd)
sysroot=$work/sysroot
dpkg-deb -x "$mnl" "$sysroot"
dpkg-deb -x "$nftnl" "$sysroot"
tar -xJf "$src" -C "$work"
cd "$work/iptables-$IPTABLES_VERSION"
# The -dev packages' .pc files name /usr: the sysroot prefixes their paths.
PKG_CONFIG_PATH=$sysroot/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=$sysroot \
  ./configure -q --prefix=/usr --sbindir=/usr/sbin --enable-static --disable-shared \
  --disable-nfsynproxy --disable-libipq --disable-bpf-compiler --disable-connlabel --disable-devel \
  > configure.log 2>&1 || { tail -20 configure.log >&2; exit 1; }
# glibc warns that getprotobyname and the like need its NSS modules at run
# time: iptables resolves the protocols Docker names (tcp, udp, sctp) from
# its own table, and addresses are numeric.
make -j"$(nproc)" LDFLAGS=-all-static > make.log 2>&1 || { tail -20 make.log >&2; exit 1; }
cd - > /dev/null
mkdir -p "$dir"
for b in xtables-nft-multi xtables-legacy-multi; do
  strip -o "$dir/$b.tmp" "$work/iptables-$IPTABLES_VERSION/iptables/$b"
  chmod 0755 "$dir/$b.tmp"
  mv "$dir/$b.tmp" "$dir/$b"
  "$dir/$b" iptables --version
done
