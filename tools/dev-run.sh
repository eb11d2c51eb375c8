#!/bin/sh
# `make run`: starts a local Hearth to try with an XMPP client.
#
#   tools/dev-run.sh [BUILD_DIR]        (default: build)
#
# Everything lives in BUILD_DIR/dev/: hearth.ini (written once, then yours to
# edit), the data directory and admin-password. The first run creates the
# account admin@localhost with a random password.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
HEARTH=$BUILD_DIR/hearth
DEV=$BUILD_DIR/dev
INI=$DEV/hearth.ini
PWFILE=$DEV/admin-password

say() { echo "dev-run: $*"; }
die() {
  echo "dev-run: $*" >&2
  exit 1
}

[ -x "$HEARTH" ] || die "$HEARTH not found; build it first with 'make run' (or 'make')"
mkdir -p "$DEV"

# ---- configuration: written once, kept afterwards ---------------------------
ipv6_loopback() {
  # ::1 is configured on lo (IPv6 may be disabled, e.g. in some containers).
  [ -r /proc/net/if_inet6 ] && grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6
}
if [ ! -e "$INI" ]; then
  interfaces=127.0.0.1
  ipv6_loopback && interfaces="127.0.0.1, ::1"
  # Started as root, hearth switches to [server] user. A development server
  # keeps root so that it can use its files inside this checkout (which the
  # service user may not be able to reach); hearth warns about it. Its
  # processes are sandboxed all the same.
  user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user = root"
  cat >"$INI" <<EOF
# Development configuration written by tools/dev-run.sh ('make run').
# Edit freely: it is kept across runs. Delete it to get a fresh one.
# Every key is explained in config/hearth.ini.

[server]
domain = localhost
data_dir = $DEV/data
admins = admin@localhost
$user_line

[c2s]
interfaces = $interfaces
port = 5222
direct_tls_port = 5223

[log]
level = info
EOF
  say "wrote $INI"
else
  say "using $INI (delete it to get a fresh one)"
fi

# Value of KEY in [SECTION] of the INI (last one wins), or empty.
ini_get() {
  awk -v s="$1" -v k="$2" '
    /^[ \t]*[#;]/ { next }
    /^[ \t]*\[/ { sec = $0; gsub(/[][ \t\r]/, "", sec); next }
    sec == s && index($0, "=") {
      key = substr($0, 1, index($0, "=") - 1); gsub(/^[ \t]+|[ \t\r]+$/, "", key)
      if (key == k) { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t\r]+$/, "", v); val = v }
    }
    END { print val }' "$INI"
}
domain=$(ini_get server domain)
port=$(ini_get c2s port)
tls_port=$(ini_get c2s direct_tls_port)
: "${port:=5222}" "${tls_port:=5223}"
data_dir=$(ini_get server data_dir)
admin=admin@${domain:-localhost}

# The INI must be valid before anything else happens.
"$HEARTH" check config -c "$INI" >/dev/null || die "$INI has an error (above); fix it or delete the file"

# ---- ports -----------------------------------------------------------------
# Listening TCP sockets from /proc (no ss/netstat needed): state 0A = LISTEN.
port_busy() {
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
    awk -v p="$hex" '$4 == "0A" { n = split($2, a, ":"); if (toupper(a[n]) == p) f = 1 } END { exit !f }'
}
busy=""
for p in $port $tls_port; do
  if [ "$p" != 0 ] && port_busy "$p"; then busy="$busy $p"; fi
done
if [ -n "$busy" ]; then
  cat >&2 <<EOF
dev-run: port(s)$busy already in use on this machine.
  Another Hearth (or another XMPP server, e.g. Prosody or ejabberd) may be running.
  Stop it, or pick other ports: edit $INI,
  section [c2s], e.g.
      port = 15222
      direct_tls_port = 15223
  then run 'make run' again.
EOF
  exit 1
fi

# ---- first run: the admin account --------------------------------------------
if [ ! -s "$PWFILE" ]; then
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 18)
  [ ${#password} -eq 18 ] || die "could not generate a password from /dev/urandom"
  (umask 077 && printf '%s\n' "$password" >"$PWFILE")
  chmod 0600 "$PWFILE"
  # An account left from an earlier run (its password file deleted) gets the
  # new password instead.
  action=add
  "$HEARTH" user list -c "$INI" 2>/dev/null | grep -qx "$admin" && action=passwd
  if ! "$HEARTH" user "$action" "$admin" --password-file "$PWFILE" -c "$INI"; then
    rm -f "$PWFILE"
    die "could not create $admin (see above)"
  fi
fi
password=$(head -n 1 "$PWFILE")

# ---- banner ----------------------------------------------------------------
cat <<EOF

  ============================================================
   Hearth dev server
  ------------------------------------------------------------
   Log in with any XMPP client (Gajim, Dino, Conversations, ...):
     JID:       $admin
     Password:  $password
     Server:    127.0.0.1, port $port (STARTTLS) or $tls_port (direct TLS)

   The TLS certificate is self-signed: your client will ask you
   to accept it. Compare its SHA-256 fingerprint with the line
   "certificate fingerprint SHA-256 ..." that hearth prints below.

   Config:    $INI
   Password:  $PWFILE
   Data:      ${data_dir:-/var/lib/hearth}
   Stop with Ctrl-C.
  ============================================================

EOF
exec "$HEARTH" run -c "$INI"
