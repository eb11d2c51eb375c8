#!/bin/sh
# Installs the Debian packages Hearth needs to build and test, if missing.
# As root it runs apt-get; otherwise it prints the one line to run and fails.
# (The cross-test packages are tools/cross-test.sh's business.)
set -eu
PKGS="g++ cmake make pkg-config libwolfssl-dev libexpat1-dev liblmdb-dev libsodium-dev
libseccomp-dev libgtest-dev python3 python3-slixmpp python3-pytest lmdb-utils"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hearth: missing build dependencies. Run as root:" >&2
  echo "  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
echo "hearth: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg instead of failing on its lock. An unreachable
# third-party source or a mirror caught mid-sync makes `update` fail: retry,
# then go on; a package that really cannot be found fails the install.
n=1
until apt-get update -qq -o DPkg::Lock::Timeout=600; do
  [ $n -ge 3 ] && {
    echo "hearth: apt-get update reported errors; trying the install anyway" >&2
    break
  }
  n=$((n + 1))
  sleep 5
done
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $missing
