# The two commands of the README:
#   make run   installs missing packages, builds, runs the broker in the
#              foreground with the example plugins (deploy/development.ini)
#   make test  installs missing packages, builds, runs every test (ctest)
# Everything comes from Debian 12 packages; nothing is downloaded otherwise.

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CONFIG ?= deploy/development.ini
CTEST_ARGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

PACKAGES := g++ cmake ninja-build pkg-config make \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libabsl-dev libboost1.81-dev libboost-json1.81-dev libspdlog-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libsystemd-dev libsqlite3-dev libcrypt-dev libssl-dev \
  python3 python3-grpcio python3-protobuf procps

# Only for `make bench` (load generator of the route benchmark).
BENCH_PACKAGES := wrk

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps build run test asan bench format clean

all: build

# Installs only what is missing; apt-get update first, as a fresh machine's
# package lists may be empty.
deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(PACKAGES)"

bench-deps:
	@$(MAKE) --no-print-directory install-missing WANTED="$(BENCH_PACKAGES)"

.PHONY: install-missing
install-missing:
	@missing=$$(for p in $(WANTED); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing packages:" $$missing; \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	exec $(BUILD_DIR)/bin/tracim-plugin-broker --config $(CONFIG)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRACIM_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: bench-deps build
	for i in 1 2 3 4 5; do $(BUILD_DIR)/bench/spawn_to_ready_bench; done
	for i in 1 2 3; do $(BUILD_DIR)/bench/events_bench; done
	$(BUILD_DIR)/bench/route_bench
	$(BUILD_DIR)/bench/grpc_poll_bench
	for i in 1 2 3; do $(BUILD_DIR)/bench/restart_bench; done

format:
	find broker plugin_runner sdk_cpp plugins tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-asan
