#!/usr/bin/env bash
# A missing dependency must fail configure with the Debian package to install.
# Each case hides one dependency from a fresh configure and checks the message.
set -u
src=${1:?source dir}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check <debian package> <cmake/env arguments...>
  local pkg=$1; shift
  local out
  out=$(env "$@" 2>&1)
  local rc=$?
  if [ $rc -eq 0 ]; then
    echo "FAIL: configure succeeded with $pkg hidden"; fail=1
  elif ! grep -q "apt-get install.*$pkg" <<<"$out"; then
    echo "FAIL: configure error does not name $pkg:"; echo "$out" | tail -8; fail=1
  else
    echo "ok: missing $pkg -> $(grep -m1 'apt-get install' <<<"$out" | sed 's/^ *//')"
  fi
}
conf() { echo cmake -S "$src" -B "$(mktemp -d -p "$tmp")" -DAGENT_VM_BUILD_TESTS=ON "$@"; }
check libgit2-dev      PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=$tmp/empty $(conf)
# libgit2 visible, libssh not.
mkdir -p "$tmp/pc"
ln -s "$(pkg-config --variable pcfiledir libgit2)/libgit2.pc" "$tmp/pc/"
check libssh-dev       PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR=$tmp/pc $(conf)
check libcli11-dev     $(conf -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON)
check libboost-json1.81-dev $(conf -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON)
check catch2           $(conf -DCMAKE_DISABLE_FIND_PACKAGE_Catch2=ON)
check libssl-dev       $(conf -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON)
exit $fail
