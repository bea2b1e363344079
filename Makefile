# proctrail: make demo (the main job), make test (all tests; as root it
# installs the Debian packages the tests need first).
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: build test deps demo fuzz bench clean

# Without cgo: the recorder can then drop its capabilities on every thread.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/proctrail ./cmd/proctrail

deps:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/install-deps; else echo "not root: skipping package install (tests that need root or tools will skip)"; fi

# -p 1: packages that change the kernel's audit state must not run at once.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 20m ./...

fuzz:
	./scripts/fuzz $(FUZZTIME)

demo: build
	./scripts/demo

# The benchmark of issue 4, as root: auditd, proctrail record and the floor
# reader, then aureport, ausearch, laurel, zstd and analyze, side by side
# (about 8 minutes; results in bench/RESULTS.md). BENCHFLAGS=--help for options.
bench: build
	python3 bench/bench.py --proctrail bin/proctrail $(BENCHFLAGS)

clean:
	rm -rf bin
