# Cross build for 32-bit ARM, hard float (Raspberry Pi OS 32-bit, ARMv7
# routers) with Debian's g++-arm-linux-gnueabihf; tests run under
# qemu-arm-static. Used by tools/cross-test.sh (make cross-test ARCH=armhf).
set(HEARTH_CROSS_TRIPLET arm-linux-gnueabihf)
set(HEARTH_CROSS_PROCESSOR arm)
set(HEARTH_CROSS_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-debian-cross.cmake)
