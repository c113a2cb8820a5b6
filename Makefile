# aranya-quic: build, demo and tests.
#
#   make run        demo: two peers (two processes) exchange messages
#   make test       everything: go vet, gofmt, go test -race, ctest, bindings
#   make lib        build/libaranya_quic.so
#   make check-abi  exported symbols == header functions; header compiles alone
#   make certs      throwaway certificates in build/certs
#   make clean

GO    ?= go
CC    ?= cc
CXX   ?= c++
CMAKE ?= cmake
BUILD := build
LIB   := $(BUILD)/libaranya_quic.so
CMAKE_BUILD := $(BUILD)/cmake

CWARN := -Wall -Wextra -Werror -pedantic
GO_SOURCES := $(shell find core capi -type f \( -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.map' \) 2>/dev/null) \
	include/aranya_quic.h go.mod go.sum
# Only the header's functions are exported (capi/exports.map); cgo refuses a
# version script in #cgo LDFLAGS, so it goes through -extldflags.
LIB_LDFLAGS := -extldflags=-Wl,--version-script=$(CURDIR)/capi/exports.map,-soname=libaranya_quic.so
# The shipped library uses BBRv2: qgpatch copies the quic-go module that the
# Go module proxy served into build/quicgo, routes its congestion
# controller's construction through a hook, and writes a go.work that
# replaces quic-go with that copy; the aranya_cc tag builds our side of the
# hook. `make lib QUICGO_HOOK=0` builds against upstream quic-go (NewReno).
QUICGO      := $(BUILD)/quicgo
QUICGO_WORK := $(CURDIR)/$(QUICGO)/go.work
QUICGO_HOOK ?= 1
ifeq ($(QUICGO_HOOK),1)
LIB_ENV     ?= GOWORK=$(QUICGO_WORK)
LIB_GOFLAGS ?= -tags aranya_cc
LIB_DEPS    := $(QUICGO)/go.work
else
LIB_ENV     ?=
LIB_GOFLAGS ?=
LIB_DEPS    :=
endif

.PHONY: all lib certs run test go-vet fmt-check go-test ctest test-rust test-python test-interop check-abi clean

all: lib

lib: $(LIB)

# The cgo-generated header lands beside the library in build/ and is never
# committed: the public header is include/aranya_quic.h.
$(QUICGO)/go.work: go.mod go.sum $(wildcard core/congestion/qgpatch/*.go core/congestion/qgpatch/overlay/*)
	$(GO) run ./core/congestion/qgpatch -out $(QUICGO)

$(LIB): $(GO_SOURCES) $(LIB_DEPS)
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(LIB_ENV) $(GO) build $(LIB_GOFLAGS) -buildmode=c-shared -ldflags='$(LIB_LDFLAGS)' -o $@ ./capi

# Always a fresh, consistent set: certgen makes a new CA each run, so files
# left from an earlier run with other names would not chain to it.
certs:
	rm -rf $(BUILD)/certs
	$(GO) run ./examples/certgen -other-ca -out $(BUILD)/certs alice bob carol

$(BUILD)/demo: examples/c/demo.c include/aranya_quic.h $(LIB)
	$(CC) -std=c99 $(CWARN) -Iinclude -o $@ examples/c/demo.c -L$(BUILD) -laranya_quic -Wl,-rpath,'$$ORIGIN'

run: $(BUILD)/demo
	@rm -rf $(BUILD)/run
	@$(GO) run ./examples/certgen -out $(BUILD)/run/certs alice bob
	@examples/c/run-demo.sh $(BUILD)/demo $(BUILD)/run/certs $(BUILD)/run

test: go-vet fmt-check go-test ctest test-rust test-python test-interop

go-vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The second run builds core against the patched quic-go, so the tests that
# need the congestion hook (BBRv2 driving real connections) run too.
go-test: $(QUICGO)/go.work
	$(GO) test -race ./...
	GOWORK=$(QUICGO_WORK) $(GO) test -race -tags aranya_cc ./core/...

ctest:
	$(CMAKE) -S . -B $(CMAKE_BUILD) -DCMAKE_BUILD_TYPE=Debug
	$(CMAKE) --build $(CMAKE_BUILD) -j
	cd $(CMAKE_BUILD) && ctest --output-on-failure

# Hooks for the bindings' own tests; skipped while the bindings are absent.
# Both get the library's directory and path in the environment.
test-rust: lib
	@if [ -d bindings/rust ]; then \
		cd bindings/rust && ARANYA_QUIC_LIB_DIR=$(CURDIR)/$(BUILD) ARANYA_QUIC_LIB=$(CURDIR)/$(LIB) \
			LD_LIBRARY_PATH=$(CURDIR)/$(BUILD)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} \
			sh -c 'cargo test --locked && cargo test --locked --features tokio,log'; \
	else echo "test-rust: bindings/rust not present, skipped"; fi

test-python: lib
	@if [ -d bindings/python ]; then \
		cd bindings/python && ARANYA_QUIC_LIB_DIR=$(CURDIR)/$(BUILD) ARANYA_QUIC_LIB=$(CURDIR)/$(LIB) \
			python3 -m pytest -q; \
	else echo "test-python: bindings/python not present, skipped"; fi

# A C, a Python and a Rust peer, three processes, each sending to both
# others on two channels and a sync type and checking all it receives
# (tests/interop/run.py builds the Rust peer, an example of bindings/rust).
test-interop: lib
	@mkdir -p $(BUILD)/interop
	$(CC) -std=c99 $(CWARN) -Iinclude -o $(BUILD)/interop/peer_c tests/interop/peer_c.c -L$(BUILD) -laranya_quic -Wl,-rpath,'$$ORIGIN/..'
	ARANYA_QUIC_LIB_DIR=$(CURDIR)/$(BUILD) ARANYA_QUIC_LIB=$(CURDIR)/$(LIB) \
		python3 tests/interop/run.py --c $(BUILD)/interop/peer_c --rust-workspace bindings/rust

check-abi: $(LIB)
	@nm -D --defined-only $(LIB) | awk '{print $$NF}' | sort > $(BUILD)/abi-lib.txt
	@grep -oE '^(int32_t|const char \*)[[:space:]]*aranya_quic_[a-z_]+\(' include/aranya_quic.h \
		| grep -oE 'aranya_quic_[a-z_]+' | sort > $(BUILD)/abi-header.txt
	@test -s $(BUILD)/abi-header.txt || { echo "check-abi: no functions found in the header"; exit 1; }
	@diff -u $(BUILD)/abi-header.txt $(BUILD)/abi-lib.txt \
		|| { echo "check-abi: exported symbols (+) differ from the header's functions (-)"; exit 1; }
	@printf '#include "aranya_quic.h"\n' | $(CC) -std=c99 $(CWARN) -Iinclude -x c -fsyntax-only -
	@printf '#include "aranya_quic.h"\n' | $(CXX) -std=c++11 $(CWARN) -Iinclude -x c++ -fsyntax-only -
	@echo "check-abi: ok: $$(wc -l < $(BUILD)/abi-lib.txt) exported functions match the header; header compiles as C99 and C++11"

clean:
	rm -rf $(BUILD)

# Benchmarks: the library through its C API against raw quic-go,
# TLS over TCP and quinn, in the same run. `make bench` takes about 2-3
# minutes once built (the first quinn build adds about a minute);
# `make bench-full` runs longer and more rounds. Results: the table on
# stdout, bench/results/latest.json and bench/results/ratios.png.
BENCH := $(BUILD)/bench
BENCH_ARGS ?=
.PHONY: bench bench-full bench-build
bench-build: $(LIB)
	@mkdir -p $(BENCH)
	@test -f $(BENCH)/certs/ca.pem || $(GO) run ./examples/certgen -out $(BENCH)/certs alice bob
	$(CC) -std=c11 -O2 $(CWARN) -Iinclude -o $(BENCH)/aqbench-c bench/c/aqbench.c -L$(BUILD) -laranya_quic -lpthread -Wl,-rpath,'$$ORIGIN/..'
	$(LIB_ENV) $(GO) build $(LIB_GOFLAGS) -o $(BENCH)/aqbench ./bench/cmd/aqbench
	@if command -v cargo >/dev/null; then \
		cd bench/quinn && { CARGO_TARGET_DIR=$(CURDIR)/$(BENCH)/cargo cargo build --release --locked -q \
			|| { echo "bench: quinnbench with the Rust binding did not build; quinn alone"; \
			     CARGO_TARGET_DIR=$(CURDIR)/$(BENCH)/cargo cargo build --release --locked -q --no-default-features; } \
			|| echo "bench: quinn baseline did not build; it is skipped"; }; \
	else echo "bench: cargo not found; the quinn baseline is skipped"; fi
bench: bench-build
	$(BENCH)/aqbench run $(BENCH_ARGS)
bench-full: bench-build
	$(BENCH)/aqbench run -rounds 7 -dur 3 -iters 50 -churn-dur 5 -every-round $(BENCH_ARGS)

# The receive wake-up candidates, measured against each other: the shipped
# pull path (waiting in Go), the receive callback, and a futex wait in C
# that was built, measured and dropped; its library is rebuilt from the
# commit that had it. Results: bench/results/wakeup.json.
WAKEUP_FUTEX_COMMIT := a97383d
.PHONY: bench-wakeup
bench-wakeup: bench-build
	rm -rf $(BENCH)/variants/src && mkdir -p $(BENCH)/variants/futex
	git worktree add --detach $(BENCH)/variants/src $(WAKEUP_FUTEX_COMMIT)
	sed -e 's#^use .*#use .#' -e 's#=> ./quic-go#=> $(CURDIR)/$(QUICGO)/quic-go#' $(QUICGO)/go.work > $(BENCH)/variants/src/go.work
	cd $(BENCH)/variants/src && CGO_ENABLED=1 GOWORK=$(CURDIR)/$(BENCH)/variants/src/go.work $(GO) build $(LIB_GOFLAGS) -buildmode=c-shared \
		-ldflags='-extldflags=-Wl,--version-script=$(CURDIR)/$(BENCH)/variants/src/capi/exports.map' \
		-o $(CURDIR)/$(BENCH)/variants/futex/libaranya_quic.so ./capi; \
		status=$$?; cd $(CURDIR) && git worktree remove --force $(BENCH)/variants/src; exit $$status
	$(BENCH)/aqbench wakeup -futex-commit $(WAKEUP_FUTEX_COMMIT) $(BENCH_WAKEUP_ARGS)

# Congestion control: BBRv2 against NewReno through the netsim
# proxy at 50 Mbit/s, 40 ms RTT (lossy, clean, two flows sharing one
# bottleneck), engine in-process, built with the hook. About 2 minutes;
# `make bench-cc BENCH_CC_ARGS=-long` runs longer. Results: the table on
# stdout, bench/results/cc.json; docs/PERFORMANCE.md explains them.
BENCH_CC_ARGS ?=
.PHONY: bench-cc
bench-cc: $(QUICGO)/go.work
	@mkdir -p $(BENCH)
	GOWORK=$(QUICGO_WORK) $(GO) build -tags aranya_cc -o $(BENCH)/cc ./bench/cc
	$(BENCH)/cc -out bench/results/cc.json $(BENCH_CC_ARGS)

# Micro-benchmarks of the hot paths (header and frame codec, receive queue,
# payload pool, C API handle lookup), allocations reported; about 1.5
# minutes. Figures: docs/PERFORMANCE.md. Pass e.g.
# BENCH_MICRO_ARGS='-bench Queue -count 5' to narrow or repeat.
BENCH_MICRO_ARGS ?=
.PHONY: bench-micro
bench-micro:
	$(GO) test -run NONE -bench . -benchmem $(BENCH_MICRO_ARGS) ./core/... ./capi/...

# Soak: the fault, hostile-peer and engine tests over and over, with the
# race detector, to shake out rare interleavings (about 5 minutes a round
# on 2 CPUs; make test runs them once).
SOAK_COUNT ?= 5
.PHONY: soak
soak: $(QUICGO)/go.work
	ARANYA_QUIC_SOAK=1 $(GO) test -race -count=$(SOAK_COUNT) -timeout 2h ./core/... ./tests/...
	ARANYA_QUIC_SOAK=1 GOWORK=$(QUICGO_WORK) $(GO) test -race -count=$(SOAK_COUNT) -timeout 2h -tags aranya_cc ./core/
