#!/usr/bin/env bash
# Fork-storm benchmark of the recorder (run as root): for each parallelism
# P, records bench/storm.sh P N and reports per-source rates over the
# capture's span, losses, bytes per message and recorder CPU per message.
# Usage: bench/record.sh [N] [P...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/record.sh: run as root" >&2; exit 1; }
n=${1:-3000}; shift || true
ps=${*:-1 2 4}
go build -o bin/proctrail ./cmd/proctrail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '| P×N | span s | connector msg/s | audit msg/s | procfs msg/s | lost (c/a/p) | bytes/msg | recorder CPU µs/msg |\n|---|---|---|---|---|---|---|---|\n'
for p in $ps; do
	./bin/proctrail record -o "$tmp/b.zst" -- bench/storm.sh "$p" "$n" 2> "$tmp/err" > /dev/null
	cpu=$(sed -n 's/.*recorder CPU \([0-9.]*\)\(m\?s\)).*/\1 \2/p' "$tmp/err")
	./bin/proctrail info --json "$tmp/b.zst" > "$tmp/info.json"
	python3 - "$tmp/info.json" "$p" "$n" "$cpu" <<'PY'
import json, sys, datetime
info = json.load(open(sys.argv[1]))[0]
p, n, cpu = sys.argv[2], sys.argv[3], sys.argv[4].split()
cpu_s = float(cpu[0]) / (1000 if cpu[1] == "ms" else 1)
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")[:26] + "+00:00")
span = (ts(info["end"]) - ts(info["start"])).total_seconds()
src = info["sources"]
msgs = sum(src[k]["messages"] for k in src)
rate = lambda k: f'{src[k]["messages"]/span:,.0f}'
lost = "/".join(str(src[k]["lost"]) for k in ("connector", "audit", "procfs"))
print(f'| {p}×{n} | {span:.2f} | {rate("connector")} | {rate("audit")} | {rate("procfs")} | {lost} | {info["bytes"]/msgs:.1f} | {cpu_s*1e6/msgs:.2f} |')
PY
done
