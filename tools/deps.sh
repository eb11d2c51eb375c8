#!/bin/sh
# Installs the Debian packages Hearth needs to build and test, if missing.
# As root it runs apt-get; otherwise it prints the one line to run.
set -eu
PKGS="g++ cmake make pkg-config libwolfssl-dev libexpat1-dev liblmdb-dev libsodium-dev
libseccomp-dev libgtest-dev python3 python3-slixmpp python3-pytest"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hearth: missing build dependencies. Run as root:" >&2
  echo "  apt-get install -y$missing" >&2
  exit 1
fi
echo "hearth: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
