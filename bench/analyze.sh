#!/usr/bin/env bash
# Analysis throughput against the zstd -dc floor, side by side, alternating,
# with CPU use and peak memory. Usage: bench/analyze.sh CAPTURE [RUNS [OLD]]
# CAPTURE is a capture file, or a directory holding a rotated set (its *.zst
# files, analyzed as one). CPU is (user+sys)/elapsed: above 100% when
# analysis uses the second core. OLD, another proctrail binary (the one
# before a change), is run in the same rounds, after the new one.
# (make a large capture with: sudo bin/proctrail record -o big.zst -- bench/storm.sh 4 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
cap=$1; runs=${2:-5}; old=${3:-}
if [ -d "$cap" ]; then files=("$cap"/*.zst); else files=("$cap"); fi
go build -o bin/proctrail ./cmd/proctrail
msgs=$(bin/proctrail info --json "${files[@]}" | python3 -c 'import json,sys; print(sum(s["messages"] for i in json.load(sys.stdin) for s in i["sources"].values()))')
size=$(cat "${files[@]}" | wc -c)
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
for i in $(seq "$runs"); do
	/usr/bin/time -f "zstd %e %M %U %S" -a -o "$tmp" zstd -qdc "${files[@]}" > /dev/null
	/usr/bin/time -f "analyze %e %M %U %S" -a -o "$tmp" bin/proctrail analyze "${files[@]}" > /dev/null
	if [ -n "$old" ]; then
		/usr/bin/time -f "old %e %M %U %S" -a -o "$tmp" "$old" analyze "${files[@]}" > /dev/null
	fi
done
python3 - "$tmp" "$msgs" "$size" "${#files[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
msgs, size, nfiles = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def col(name, i): return sorted(float(r[i]) for r in rows if r[0] == name)
def cpu(name): return sorted(100*(float(r[3])+float(r[4]))/max(float(r[1]), 1e-9) for r in rows if r[0] == name)
print(f"capture: {size/1e6:.1f} MB in {nfiles} file(s), {msgs:,} messages, {len(col('zstd',1))} runs each, alternating")
print("| tool | median s | min–max s | msgs/s | MB/s of capture | CPU % (median) | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for name in ("zstd", "analyze", "old"):
    t, m = col(name, 1), col(name, 2)
    if not t:
        continue
    med = statistics.median(t)
    print(f"| {name} | {med:.3f} | {t[0]:.3f}–{t[-1]:.3f} | {msgs/med:,.0f} | {size/1e6/med:.1f} | {statistics.median(cpu(name)):.0f} | {max(m)/1024:.0f} |")
z, a = statistics.median(col('zstd',1)), statistics.median(col('analyze',1))
print(f"analyze / zstd -dc: {a/z:.1f}x")
if col('old', 1):
    o = statistics.median(col('old', 1))
    print(f"old analyze / zstd -dc: {o/z:.1f}x; analyze / old: {a/o:.2f}x")
PY
