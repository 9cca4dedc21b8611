# build/fetch.sh, sourced by the build scripts that take source or packages
# from the Debian archive (build/crun.sh, build/iptables.sh).
#
# fetch NAME PATH SHA256: prints the cached path of the archive's file PATH
# (under DEBIAN_MIRROR, build/debian.env), downloading it into the cache
# first unless the cached copy has the pinned SHA256. A download that fails
# or has another hash is an error that names the file; nothing half-written
# is left in the cache. NAME prefixes the messages.
fetch() {
  local name=$1 path=$2 sum=$3
  local cache=${ROS_CACHE:-$HOME/.cache/ros}/src
  local f=$cache/${path##*/}
  mkdir -p "$cache"
  if ! echo "$sum  $f" | sha256sum -c --status 2>/dev/null; then
    curl -fsS -o "$f.tmp" "$DEBIAN_MIRROR/$path" || { echo "$name: cannot download $DEBIAN_MIRROR/$path" >&2; rm -f "$f.tmp"; return 1; }
    echo "$sum  $f.tmp" | sha256sum -c --status 2>/dev/null ||
      { echo "$name: $DEBIAN_MIRROR/$path does not have the sha256 build/debian.env pins" >&2; rm -f "$f.tmp"; return 1; }
    mv "$f.tmp" "$f"
  fi
  echo "$f"
}
