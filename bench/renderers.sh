#!/usr/bin/env bash
# Peak memory and time of each output of analyze on one capture, the
# binaries given side by side, alternating, medians of RUNS runs.
# Usage: bench/renderers.sh [--svg] CAPTURE [RUNS] [PROCTRAIL...]
# (default RUNS 3, PROCTRAIL bin/proctrail). Issue 18's target: every
# output within 100 MiB on the workload recorded at 32x (make bench
# records it). --svg adds --svg and --svg --files, whose figure is
# Graphviz's dot's as much as proctrail's (the larger of the two: time -v
# reports the largest process of the tree); dot itself needs more than
# that on a graph of 64,000 processes, and more than ten minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
svg=
if [ "${1:-}" = --svg ]; then
	svg=1
	shift
fi
cap=$1
runs=${2:-3}
shift $(($# < 2 ? $# : 2))
bins=("$@")
if [ ${#bins[@]} = 0 ]; then
	go build -o bin/proctrail ./cmd/proctrail
	bins=(bin/proctrail)
fi
outputs=("--json" "--tree" "--tree --files" "--dot" "--dot --files" "--prov" "--html")
if [ -n "$svg" ]; then
	outputs+=("--svg" "--svg --files")
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$runs"); do
	for o in "${outputs[@]}"; do
		for b in "${bins[@]}"; do
			# shellcheck disable=SC2086 # $o is one or two flags
			/usr/bin/time -f "%e %M" -o "$tmp/t" "$b" analyze "$cap" $o >"$tmp/out" 2>/dev/null
			echo "$b|$o|$(cat "$tmp/t")|$(stat -c %s "$tmp/out")" >>"$tmp/rows"
		done
	done
done
python3 - "$tmp/rows" "$cap" "$runs" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, o, t, size = line.rstrip("\n").split("|")
    s, kib = t.split()
    rows[(b, o)].append((float(s), int(kib), int(size)))
print(f"capture: {sys.argv[2]}, {sys.argv[3]} runs each, alternating")
print("| binary | output | median s | peak RSS MiB (max) | output MB |")
print("|---|---|---|---|---|")
for (b, o), v in rows.items():
    print(f"| {b} | {o} | {statistics.median(x[0] for x in v):.2f} | "
          f"{max(x[1] for x in v) / 1024:.0f} | {v[0][2] / 1e6:.1f} |")
PY
