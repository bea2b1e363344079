# proctrail: make demo (the main job), make test (make check, then all
# tests; as root it installs the Debian packages the tests need first).
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: build pgo test check deps demo fuzz bench bench-db clean

# staticcheck, pinned, installed into bin/tools by `make check` (needs the Go
# module proxy). v0.8.2 is staticcheck 2026.2.2, which requires Go 1.26.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := bin/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck

STATICCHECK_PKGS = ./...

# The packages that read captures, built for windows: formats only.
# replay and analyze cannot build there: they import go-libaudit v2.6.2's
# auparse (record types, syscall tables, record parsing), whose
# auparse.go:457 calls unix.SignalName, which golang.org/x/sys/unix does
# not define on windows (with that one call patched in a scratch copy,
# both build and vet). The README's Known limits says so.
WINDOWS_PKGS := ./formats

# Without cgo: the recorder can then drop its capabilities on every thread.
# urfave_cli_no_docs leaves out urfave/cli's man page and markdown writers,
# which proctrail never calls (their markdown library's init was 0.3 ms of
# every start). cmd/proctrail/default.pgo, the profile the build is
# optimized with, is written by `make pgo`.
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o bin/proctrail ./cmd/proctrail

# The profile the binary is built with, from the captures `make bench`
# leaves in its work directory (scripts/pgo says what it runs).
BENCH_WORK ?= /var/tmp/proctrail-bench
PGO_CAPTURES ?= $(wildcard $(BENCH_WORK)/record-*.zst $(BENCH_WORK)/offline/import.zst)
pgo:
	./scripts/pgo $(PGO_CAPTURES)

deps:
	@if [ "$$(id -u)" = 0 ]; then ./scripts/install-deps; else echo "not root: skipping package install (tests that need root or tools will skip)"; fi

# -p 1: packages that change the kernel's audit state must not run at once.
test: deps check
	$(GO) test -count=1 -p 1 -timeout 20m ./...

# The checks that need neither root nor the kernel: formatting, vet on Linux
# and on darwin (Linux-only code stays behind build constraints), the
# offline packages built for windows, and staticcheck.
check: $(STATICCHECK)
	@files="$$(gofmt -l .)"; if [ -n "$$files" ]; then echo "gofmt -l: $$files"; exit 1; fi
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) build $(WINDOWS_PKGS)
	GOOS=windows $(GO) vet $(WINDOWS_PKGS)
	$(STATICCHECK) $(STATICCHECK_PKGS)

$(STATICCHECK):
	GOBIN=$(CURDIR)/$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fuzz:
	./scripts/fuzz $(FUZZTIME)

demo: build
	./scripts/demo

# The benchmark of issue 4, as root: auditd, proctrail record and the floor
# reader, then aureport, ausearch, laurel, zstd and analyze, side by side
# (about 10 minutes; results in bench/RESULTS.md). BENCHFLAGS=--help for options.
# It ends with the results store's bench (bench/dbbench) on the workload
# recorded at 32x: load rate, load time / analyze --json, bytes per audit
# event, the path query on 10 million file accesses, against SQLite and a
# PostgreSQL server it starts. Then bench/rulecost.py: the open/close flood,
# the fork storm, a loop per syscall group of the preset, three calls its
# filters leave out, and container starts (the mount tables), each bare,
# under proctrail record with the preset before the coverage issue and
# with today's, and under auditd with today's: slowdown, drain rate,
# losses, bytes per event (about 5 minutes).
# bench.py ends with bench/renderers.sh on the capture at 32x: each
# output's peak memory (issue 18).
bench: build
	python3 bench/bench.py --proctrail bin/proctrail $(BENCHFLAGS)
	python3 bench/rulecost.py --proctrail bin/proctrail

# The results store's bench alone, on a capture you have (no auditd):
#   make bench-db DB_CAPTURE=/path/to/w32.zst
bench-db: build
	python3 bench/bench.py --proctrail bin/proctrail --only-db --db-capture $(DB_CAPTURE) $(BENCHFLAGS)

clean:
	rm -rf bin
