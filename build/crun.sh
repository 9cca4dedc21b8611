#!/usr/bin/env bash
# build/crun.sh OUT: crun, the OCI runtime the system services' containers
# run with (paths.Runtime), built static from the upstream release Debian's
# crun package of the suite is made from (CRUN_VERSION in build/debian.env;
# the tarball is checked against CRUN_ORIG_SHA256). A C program: under
# emulation each container's create is a fraction of runc's, whose create
# and init are each a Go program's start (docs/performance.md).
# Its yajl is the bundled one; no systemd cgroup driver, no CRIU, no
# plugins: none applies to the OS's services.
set -euo pipefail
. build/debian.env
. build/fetch.sh
out=$1
tarball=$(fetch crun "pool/main/c/crun/crun_$CRUN_VERSION.orig.tar.gz" "$CRUN_ORIG_SHA256")
work=$(mktemp -d -p out)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
cd "$work/crun-$CRUN_VERSION"
./configure -q --enable-embedded-yajl --disable-systemd --disable-criu --disable-dl \
  --enable-static --disable-shared > configure.log 2>&1 || { tail -20 configure.log >&2; exit 1; }
make -j"$(nproc)" LDFLAGS=-all-static > make.log 2>&1 || { tail -20 make.log >&2; exit 1; }
strip -o crun.stripped crun
cd - > /dev/null
install -m 0755 "$work/crun-$CRUN_VERSION/crun.stripped" "$out"
"$out" --version | head -1
