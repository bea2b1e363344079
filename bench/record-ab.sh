#!/usr/bin/env bash
# Alternating whole recordings of the issue-4 workload (2,000 /bin/true
# from a shell loop, then 20,000 open/read/close) with each proctrail
# binary given, ROUNDS times; prints each binary's recorder CPU (from its
# summary line) as median and sorted runs, and the audit messages lost.
# Run as root, serialized with other audit users:
#   flock /tmp/proctrail-audit.lock bench/record-ab.sh 8 OLD bin/proctrail
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/record-ab.sh: run as root" >&2; exit 1; }
[ $# -ge 2 ] || { echo "usage: bench/record-ab.sh ROUNDS BIN..." >&2; exit 2; }
rounds=$1; shift
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/openloop" bench/openloop.c
echo "proctrail bench: read by openloop" > "$tmp/file"
for _ in $(seq "$rounds"); do
	for b in "$@"; do
		"$b" record -o "$tmp/c.zst" --rules-file bench/forensic.rules -- /bin/sh -c \
			"i=0; while [ \$i -lt 2000 ]; do /bin/true; i=\$((i+1)); done; $tmp/openloop 20000 $tmp/file >/dev/null" \
			2> "$tmp/err" > /dev/null
		cpu=$(sed -n 's/.*recorder CPU \([0-9.]*\)\(m\?s\)).*/\1 \2/p' "$tmp/err")
		lost=$(sed -n 's/^ *audit *[0-9]* messages, \([0-9]*\) lost.*/\1/p' "$tmp/err")
		echo "$b $cpu ${lost:-?}" >> "$tmp/runs"
	done
done
python3 - "$tmp/runs" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
lost = collections.Counter()
for line in open(sys.argv[1]):
    b, v, unit, l = line.split()
    runs[b].append(float(v) / (1000 if unit == "ms" else 1))
    lost[b] += int(l) if l.isdigit() else 0
for b, v in runs.items():
    print(f"{b}: recorder CPU median {statistics.median(v):.3f} s, runs {' '.join(f'{x:.3f}' for x in sorted(v))}; audit lost {lost[b]}")
PY
