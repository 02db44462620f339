# sconify: the two commands users need are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHIMS := sconify/_runtime/shim-linux-amd64 sconify/_runtime/shim-linux-arm64
# The dlopen guard is built for amd64 only: the machine has no aarch64 cross compiler (docs/dev/guard.md).
GUARDS := sconify/_runtime/libsconify_guard-linux-amd64.so
GUARD_SOURCES := $(wildcard runtime_shim/guard/*.c runtime_shim/guard/*.h)
GUARD_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wno-format-truncation -O2 -fPIC -shared -fvisibility=hidden \
	-Wl,--build-id=none -Wl,-z,relro,-z,now
GO_SOURCES := $(shell find runtime_shim -name '*.go' -o -name go.mod 2>/dev/null)
GOFLAGS_BUILD := -trimpath -buildvcs=false -ldflags='-s -w -buildid='

.PHONY: install shim lint test test-go test-py demo bench clean

install: $(VENV)/.installed $(SHIMS) $(GUARDS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The shims (amd64, arm64) are static and reproducible: the same sources and Go give the same bytes (and so the
# same measurement).
sconify/_runtime/shim-linux-%: $(GO_SOURCES)
	mkdir -p $(dir $@)
	cd runtime_shim && CGO_ENABLED=0 GOOS=linux GOARCH=$* go build $(GOFLAGS_BUILD) -o ../$@ ./cmd/shim

# The guard (glibc, no dependency beyond libc) is reproducible too: no build id, no debug paths.
sconify/_runtime/libsconify_guard-linux-amd64.so: $(GUARD_SOURCES)
	mkdir -p $(dir $@)
	x86_64-linux-gnu-gcc $(GUARD_CFLAGS) -o $@ $(filter %.c,$^) -ldl

shim: $(SHIMS)

lint: install
	$(BIN)/ruff check sconify tests benchmarks
	$(BIN)/ruff format --check sconify
	$(BIN)/mypy
	cd runtime_shim && go vet ./... && test -z "$$(gofmt -l .)"

test-go:
	cd runtime_shim && go test ./...

test-py: install
	$(BIN)/pytest

test: install lint test-go test-py

demo: install
	scripts/demo.sh

# The bench extra (py-spy) is only needed here. BENCH_ARGS passes options to run.py, e.g.
# make bench BENCH_ARGS="--runs 3 --no-big".
bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) sconify/_runtime build .pytest_cache .mypy_cache .ruff_cache
