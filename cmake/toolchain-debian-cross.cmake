# Shared part of the Debian cross toolchains (toolchain-aarch64.cmake,
# toolchain-armhf.cmake set HEARTH_CROSS_* and include this file).
#
# Debian multiarch layout: target libraries live on the host under
# /usr/lib/<triplet> (installed as pkg:<dpkg-arch>), the cross compiler's own
# runtime under /usr/<triplet>. Packages that cannot be co-installed with the
# host's copy (libwolfssl-dev) are unpacked by tools/cross-test.sh into a
# private overlay, HEARTH_CROSS_OVERLAY (default <build>/sysroot), whose
# pkg-config files have their prefix rewritten to point into the overlay.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${HEARTH_CROSS_PROCESSOR})
set(CMAKE_LIBRARY_ARCHITECTURE ${HEARTH_CROSS_TRIPLET})
set(CMAKE_C_COMPILER ${HEARTH_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${HEARTH_CROSS_TRIPLET}-g++)

if(NOT HEARTH_CROSS_OVERLAY)
  if(DEFINED ENV{HEARTH_CROSS_OVERLAY})
    set(HEARTH_CROSS_OVERLAY "$ENV{HEARTH_CROSS_OVERLAY}")
  else()
    set(HEARTH_CROSS_OVERLAY "${CMAKE_BINARY_DIR}/sysroot")
  endif()
endif()
set(HEARTH_CROSS_OVERLAY "${HEARTH_CROSS_OVERLAY}" CACHE PATH "Private sysroot overlay")
# try_compile projects re-read this file; hand them the same values.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES HEARTH_CROSS_OVERLAY)

# "/" is the multiarch root (host paths, target libraries picked by
# CMAKE_LIBRARY_ARCHITECTURE); the overlay comes first so its copies win.
set(CMAKE_FIND_ROOT_PATH "${HEARTH_CROSS_OVERLAY};/usr/${HEARTH_CROSS_TRIPLET};/")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Only target .pc files: the multiarch ones and the overlay's.
set(ENV{PKG_CONFIG_LIBDIR}
    "${HEARTH_CROSS_OVERLAY}/usr/lib/${HEARTH_CROSS_TRIPLET}/pkgconfig:/usr/lib/${HEARTH_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

# Test binaries (and gtest discovery, DISCOVERY_MODE PRE_TEST) run under qemu
# against the multiarch runtime (libc6:<arch>, libstdc++6:<arch>): -L / (and not
# an inherited QEMU_LD_PREFIX) so ld.so, libc and libstdc++ all come from the
# same Debian build. Not -L /usr/<triplet>: that ld.so is the cross package's
# glibc build while libc.so.6 would still be found under /lib/<triplet>, and
# the mix hangs every fork() child.
set(CMAKE_CROSSCOMPILING_EMULATOR ${HEARTH_CROSS_QEMU} -L /)
