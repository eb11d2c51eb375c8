#!/bin/sh
# Cross-compiles the library, the hearth binary and the unit tests for another
# CPU with Debian's cross compiler and runs the unit tests under qemu.
#
#   tools/cross-test.sh [ARCH] [BUILD_DIR]      ARCH: aarch64 (default) | armhf
#   (make cross-test ARCH=aarch64)
#
# Target libraries come from Debian multiarch (pkg:arm64 / pkg:armhf). The one
# that cannot be co-installed with the host's copy, libwolfssl-dev (not
# Multi-Arch, and its wolfssl/options.h differs per architecture), is unpacked
# with `dpkg -x` into a private overlay BUILD_DIR/sysroot instead; its runtime
# library libwolfssl35 is Multi-Arch: same and is installed normally.
# Missing packages are installed as root; otherwise the commands are printed.
# CMAKE_FLAGS (e.g. -DHEARTH_WERROR=ON), JOBS and HEARTH_CROSS_EXCLUDE (ctest -E
# regex of tests not to run under qemu) are taken from the environment.
set -eu

ARCH=${1:-${ARCH:-aarch64}}
case "$ARCH" in
aarch64 | arm64) ARCH=aarch64 DEB_ARCH=arm64 TRIPLET=aarch64-linux-gnu QEMU=qemu-aarch64-static ;;
armhf | arm) ARCH=armhf DEB_ARCH=armhf TRIPLET=arm-linux-gnueabihf QEMU=qemu-arm-static ;;
*)
  echo "cross-test: unknown ARCH '$ARCH' (use aarch64 or armhf)" >&2
  exit 2
  ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${2:-$ROOT/build-$ARCH}
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
SYSROOT=$BUILD_DIR/sysroot
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
CMAKE_FLAGS=${CMAKE_FLAGS:-}

say() { echo "cross-test[$ARCH]: $*"; }
now() { date +%s; }
t_start=$(now)
fail() {
  echo "cross-test[$ARCH]: FAILED: $* (after $(($(now) - t_start))s)" >&2
  exit 1
}

# ---- 1. packages ---------------------------------------------------------
HOST_PKGS="g++-$TRIPLET qemu-user-static cmake make pkg-config"
# libc6 and libstdc++6 of the target run the tests: qemu uses the host root
# (-L /), so ld.so and libc come from the same glibc build (mixing the cross
# toolchain's ld.so with the multiarch libc makes fork() hang under qemu).
TARGET_PKGS="libc6 libstdc++6 libexpat1-dev liblmdb-dev libsodium-dev libseccomp-dev libgtest-dev libwolfssl35"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

apt_opts="-y -q --no-install-recommends -o DPkg::Lock::Timeout=600"
missing=""
for p in $HOST_PKGS; do installed "$p" || missing="$missing $p"; done
for p in $TARGET_PKGS; do installed "$p:$DEB_ARCH" || missing="$missing $p:$DEB_ARCH"; done
need_arch=""
if [ "$DEB_ARCH" != "$(dpkg --print-architecture)" ] &&
  ! dpkg --print-foreign-architectures | grep -qx "$DEB_ARCH"; then
  need_arch=yes
fi

if [ -n "$missing" ] || [ -n "$need_arch" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "cross-test[$ARCH]: missing packages. Run as root:" >&2
    [ -n "$need_arch" ] && echo "  dpkg --add-architecture $DEB_ARCH" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "$need_arch" ]; then
    say "dpkg --add-architecture $DEB_ARCH"
    dpkg --add-architecture "$DEB_ARCH"
  fi
  say "apt-get update"
  # A third-party source that is unreachable must not stop us; a missing
  # Debian package list shows up as a failed install below.
  # (A mirror caught mid-sync fails the same way: try again a few times.)
  n=1
  until apt-get update -q -o DPkg::Lock::Timeout=600 >"$BUILD_DIR/apt-update.log" 2>&1; do
    if [ $n -ge 3 ]; then
      say "apt-get update reported errors (see $BUILD_DIR/apt-update.log); continuing"
      break
    fi
    n=$((n + 1))
    sleep 5
  done
  say "installing$missing"
  # shellcheck disable=SC2086
  apt-get install $apt_opts $missing >"$BUILD_DIR/apt-install.log" 2>&1 || {
    tail -n 30 "$BUILD_DIR/apt-install.log" >&2
    # Do not leave a half-set-up architecture behind: its package lists would
    # make every later `apt-get update` on this machine try it too.
    if [ -n "$need_arch" ] && dpkg --remove-architecture "$DEB_ARCH" 2>/dev/null; then
      say "removed the $DEB_ARCH architecture again"
    fi
    fail "apt-get install (full log: $BUILD_DIR/apt-install.log)"
  }
fi

# ---- 2. wolfSSL dev files into the private overlay -----------------------
# The overlay must match the installed runtime exactly (same version).
wolf_ver=$(dpkg-query -W -f='${Version}' "libwolfssl35:$DEB_ARCH")
stamp=$SYSROOT/.libwolfssl-dev_$wolf_ver
if [ ! -e "$stamp" ]; then
  say "unpacking libwolfssl-dev:$DEB_ARCH $wolf_ver into $SYSROOT"
  rm -rf "$SYSROOT" "$BUILD_DIR/debs"
  mkdir -p "$SYSROOT" "$BUILD_DIR/debs"
  # apt-get download drops privileges to _apt when it can; let it write here.
  chmod 0777 "$BUILD_DIR/debs"
  (cd "$BUILD_DIR/debs" &&
    apt-get download -q "libwolfssl-dev:$DEB_ARCH=$wolf_ver" "libwolfssl35:$DEB_ARCH=$wolf_ver" \
      >"$BUILD_DIR/apt-download.log" 2>&1) || {
    cat "$BUILD_DIR/apt-download.log" >&2
    fail "apt-get download libwolfssl-dev:$DEB_ARCH (run 'apt-get update' as root?)"
  }
  for deb in "$BUILD_DIR"/debs/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
  pc=$SYSROOT/usr/lib/$TRIPLET/pkgconfig/wolfssl.pc
  [ -f "$pc" ] || fail "$pc not found in the unpacked package"
  # Point the copy at the overlay (PKG_CONFIG_SYSROOT_DIR would also move
  # the multiarch .pc files, which live on the host root).
  sed -i "s|^prefix=.*|prefix=$SYSROOT/usr|" "$pc"
  touch "$stamp"
fi

# Show how pkg-config resolves for the target (the same path the toolchain
# file sets), so a wrong .pc is visible at once.
PKG_CONFIG_LIBDIR=$SYSROOT/usr/lib/$TRIPLET/pkgconfig:/usr/lib/$TRIPLET/pkgconfig:/usr/share/pkgconfig \
  PKG_CONFIG_PATH='' pkg-config --cflags --libs wolfssl expat libsodium libseccomp >"$BUILD_DIR/pkg-config.txt" || fail "pkg-config cannot resolve the target libraries"
say "pkg-config: $(cat "$BUILD_DIR/pkg-config.txt")"
t_deps=$(now)

# ---- 3. configure and build ----------------------------------------------
say "configuring $BUILD_DIR"
# shellcheck disable=SC2086
cmake -S "$ROOT" -B "$BUILD_DIR" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchain-$ARCH.cmake" \
  -DHEARTH_CROSS_OVERLAY="$SYSROOT" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHEARTH_INTEGRATION_TESTS=OFF $CMAKE_FLAGS >"$BUILD_DIR/configure.log" 2>&1 || {
  cat "$BUILD_DIR/configure.log" >&2
  fail "cmake configure"
}
say "building hearth and hearth_unit_tests with $TRIPLET-g++ (-j$JOBS)"
cmake --build "$BUILD_DIR" -j "$JOBS" --target hearth hearth_unit_tests || fail "cross build"
file -b "$BUILD_DIR/hearth" 2>/dev/null | sed "s/^/cross-test[$ARCH]: hearth: /" || true
t_build=$(now)

# ---- 4. run the unit tests under qemu ------------------------------------
# qemu-user cannot load a seccomp filter (the guest's syscalls are not the
# ones the host kernel sees; seccomp_load fails with ECANCELED), so the
# sandbox tests run natively only. Name such suites Sandbox* or *Seccomp*.
EXCLUDE=${HEARTH_CROSS_EXCLUDE:-[Ss]andbox|[Ss]eccomp}
n_excl=$(cd "$BUILD_DIR" && ctest -N -R "$EXCLUDE" | sed -n 's/^Total Tests: //p')
if [ "${n_excl:-0}" -gt 0 ]; then
  say "not run under qemu (no seccomp in qemu-user; they run natively): $n_excl tests matching '$EXCLUDE'"
fi
say "running unit tests under $QEMU"
rm -f "$BUILD_DIR/cross-test.passed"
rc=0
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 600 -j "$JOBS" -E "$EXCLUDE") || rc=$?
t_end=$(now)

say "time: packages $((t_deps - t_start))s, build $((t_build - t_deps))s, tests $((t_end - t_build))s, total $((t_end - t_start))s"
if [ "$rc" -ne 0 ]; then
  say "FAILED: unit tests under $QEMU"
  exit "$rc"
fi
n_run=$(cd "$BUILD_DIR" && ctest -N -E "$EXCLUDE" | sed -n 's/^Total Tests: //p')
echo "$n_run" >"$BUILD_DIR/cross-test.passed" # read by `make test` for its summary
say "OK: $n_run unit tests pass on $ARCH (under $QEMU)"
