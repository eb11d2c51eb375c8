# The front door. `make` builds; `make run` and `make test` are the two
# commands of the README; each first installs missing Debian dependencies
# (tools/deps.sh: as root it installs them, otherwise it prints the command).
#
#   make             build everything in $(BUILD)
#   make run         build hearth and start a local dev server (tools/dev-run.sh)
#   make test        native unit + integration tests, then the aarch64 cross test
#   make unit        native unit tests only
#   make cross-test ARCH=aarch64|armhf   cross-build, run unit tests under qemu
#   make bench       footprint numbers: binary size, start-up time, RSS (tests/bench)
#   make bench-compare   Hearth vs Debian's Prosody side by side (tests/bench/compare.py;
#                    BENCH_ARGS="--steps 100,1000,10000" for the 10 000-session figure)
#   make bench-hotpath   instructions per routed chat message under callgrind (tests/bench/hotpath.sh)
BUILD ?= build
ARCH ?= aarch64
CROSS_BUILD ?= build-$(ARCH)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DHEARTH_WERROR=ON
endif

.PHONY: all build configure deps run test unit cross-test bench bench-compare bench-hotpath clean format

all: build

deps:
	@sh tools/deps.sh

# build/ is the development and test build: it has the sandbox test hooks
# (HEARTH_TEST_HOOKS). Production builds leave them out (see README, Install).
configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_TEST_HOOKS=ON $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: deps configure
	@cmake --build $(BUILD) -j $(JOBS) --target hearth
	@sh tools/dev-run.sh $(BUILD)

# Stops at the first failing stage; the last line says what passed or failed.
test: deps configure
	@echo "== native build in $(BUILD)"
	@cmake --build $(BUILD) -j $(JOBS) || { echo "make test: FAILED to build ($(BUILD))"; exit 1; }
	@echo "== native tests (unit + integration) in $(BUILD)"
	@cd $(BUILD) && ctest --output-on-failure --timeout 600 -j $(JOBS) || \
	  { echo "make test: FAILED in native tests ($(BUILD))"; exit 1; }
	@echo "== cross test: $(ARCH) under qemu in $(CROSS_BUILD)"
	@CMAKE_FLAGS="$(CMAKE_FLAGS)" JOBS=$(JOBS) sh tools/cross-test.sh $(ARCH) $(CROSS_BUILD) || \
	  { echo "make test: FAILED in the $(ARCH) cross test ($(CROSS_BUILD))"; exit 1; }
	@n=$$(cd $(BUILD) && ctest -N | sed -n 's/^Total Tests: //p'); \
	 c=$$(cat $(CROSS_BUILD)/cross-test.passed); \
	 echo "make test: native $$n tests (unit + integration), $(ARCH) $$c unit tests under qemu: all passed"; \
	 echo "test: $$((n + c)) passed, 0 failed"

unit: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -j $(JOBS) -E '^integration\.'

bench: deps configure
	@cmake -S . -B $(BUILD) -DHEARTH_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target hearth hearth-bench
	HEARTH_BIN=$(BUILD)/hearth /usr/bin/python3 tests/bench/footprint.py

# Hearth and Debian's Prosody (minimal, and with MAM) under the same
# hearth-bench scenarios, with ratios; installs prosody when run as root.
bench-compare: deps configure
	@cmake -S . -B $(BUILD) -DHEARTH_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target hearth hearth-bench
	@/usr/bin/python3 tests/bench/compare.py --hearth $(BUILD)/hearth --bench $(BUILD)/hearth-bench $(BENCH_ARGS)

# Instructions per routed chat message (parse, route with the default
# modules, serialize; in memory) under valgrind --tool=callgrind.
bench-hotpath: deps configure
	@cmake -S . -B $(BUILD) -DHEARTH_BENCH=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target hotpath
	@sh tests/bench/hotpath.sh $(BUILD)

cross-test:
	@CMAKE_FLAGS="$(CMAKE_FLAGS)" JOBS=$(JOBS) sh tools/cross-test.sh $(ARCH) $(CROSS_BUILD)

clean:
	rm -rf $(BUILD) build-aarch64 build-armhf

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
