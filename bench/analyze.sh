#!/usr/bin/env bash
# Analysis throughput against the zstd -dc floor, side by side, alternating,
# with peak memory. Usage: bench/analyze.sh CAPTURE [RUNS]
# (make a large capture with: sudo bin/proctrail record -o big.zst -- bench/storm.sh 4 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
cap=$1; runs=${2:-5}
go build -o bin/proctrail ./cmd/proctrail
msgs=$(bin/proctrail info --json "$cap" | python3 -c 'import json,sys; i=json.load(sys.stdin)[0]; print(sum(s["messages"] for s in i["sources"].values()))')
size=$(stat -c %s "$cap")
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
for i in $(seq "$runs"); do
	/usr/bin/time -f "zstd %e %M" -a -o "$tmp" zstd -qdc "$cap" > /dev/null
	/usr/bin/time -f "analyze %e %M" -a -o "$tmp" bin/proctrail analyze "$cap" > /dev/null
done
python3 - "$tmp" "$msgs" "$size" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
msgs, size = int(sys.argv[2]), int(sys.argv[3])
def col(name, i): return sorted(float(r[i]) for r in rows if r[0] == name)
print(f"capture: {size/1e6:.1f} MB, {msgs:,} messages, {len(col('zstd',1))} runs each, alternating")
print("| tool | median s | min–max s | msgs/s | MB/s of capture | peak RSS MiB |")
print("|---|---|---|---|---|---|")
for name in ("zstd", "analyze"):
    t, m = col(name, 1), col(name, 2)
    med = statistics.median(t)
    print(f"| {name} | {med:.3f} | {t[0]:.3f}–{t[-1]:.3f} | {msgs/med:,.0f} | {size/1e6/med:.1f} | {max(m)/1024:.0f} |")
z, a = statistics.median(col('zstd',1)), statistics.median(col('analyze',1))
print(f"analyze / zstd -dc: {a/z:.1f}x")
PY
