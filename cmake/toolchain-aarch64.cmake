# Cross build for 64-bit ARM (Raspberry Pi 3/4/5, arm64 routers) with Debian's
# g++-aarch64-linux-gnu; tests run under qemu-aarch64-static.
# Used by tools/cross-test.sh (make cross-test ARCH=aarch64).
set(HEARTH_CROSS_TRIPLET aarch64-linux-gnu)
set(HEARTH_CROSS_PROCESSOR aarch64)
set(HEARTH_CROSS_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
