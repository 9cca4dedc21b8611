# Sourced by the build scripts: the suite of build/debian.env and how to
# fetch from it, whatever release the build machine itself runs.
#   debian_sources          the suite with its updates and security lines,
#                           one apt source per line (mmdebstrap takes them)
#   debian_apt ARGS...      apt-get on the suite, with its own state under
#                           the cache (never the build machine's sources)
#   debian_download DIR PKG=VERSION...
#                           download exact package versions into DIR
# shellcheck shell=bash
. build/debian.env
DEBIAN_CACHE=${ROS_CACHE:-$HOME/.cache/ros}/apt-$DEBIAN_SUITE

debian_sources() {
  local k=/usr/share/keyrings/debian-archive-keyring.gpg
  echo "deb [signed-by=$k] $DEBIAN_MIRROR $DEBIAN_SUITE main"
  echo "deb [signed-by=$k] $DEBIAN_MIRROR $DEBIAN_SUITE-updates main"
  echo "deb [signed-by=$k] $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main"
}

debian_apt() {
  local c=$DEBIAN_CACHE
  mkdir -p "$c/lists/partial" "$c/cache/archives/partial" "$c/etc/apt.conf.d" "$c/etc/preferences.d" "$c/etc/sources.list.d"
  debian_sources > "$c/etc/sources.list"
  apt-get -q -o Dir::Etc="$c/etc" -o Dir::Etc::SourceList="$c/etc/sources.list" \
    -o Dir::Etc::SourceParts="$c/etc/sources.list.d" -o Dir::Etc::Parts="$c/etc/apt.conf.d" \
    -o Dir::Etc::Preferences="$c/etc/preferences" -o Dir::Etc::PreferencesParts="$c/etc/preferences.d" \
    -o Dir::State::Lists="$c/lists" -o Dir::Cache="$c/cache" -o Dir::State::status=/dev/null \
    -o APT::Sandbox::User=root "$@"
}

debian_download() {
  local dir=$1; shift
  mkdir -p "$dir"
  # The indices are refreshed when a pinned version is not in them.
  (cd "$dir" && debian_apt download "$@" >/dev/null 2>&1) && return 0
  debian_apt update >/dev/null || { echo "debian: cannot read the $DEBIAN_SUITE indices from $DEBIAN_MIRROR" >&2; return 1; }
  (cd "$dir" && debian_apt download "$@" >/dev/null)
}
