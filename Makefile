# The front door. `make` builds; `make run` and `make test` are the two
# commands of the README; each first installs missing Debian dependencies.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ifeq ($(CI),true)
CMAKE_FLAGS += -DHEARTH_WERROR=ON
endif

.PHONY: all build deps run test unit cross-test clean format

all: build

deps:
	@sh tools/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: deps build
	@sh tools/dev-run.sh $(BUILD)

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -E '^integration\.'

clean:
	rm -rf $(BUILD) build-*

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
