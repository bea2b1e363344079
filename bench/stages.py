#!/usr/bin/env python3
"""Where an analysis's CPU goes, by stage: perf samples of `proctrail
analyze` grouped under the stage of the first frame that names one.

    bench/stages.py [--runs N] [--timeline] [--top K] -- BIN analyze CAPTURE [FLAGS]
    bench/stages.py --data perf.data [--timeline] [--top K]

Runs the command N times (default 8) under `perf record -F 4999 -g`
(output to /dev/null), then prints each stage's share of the samples, and
the functions of this module (or zstd's) that the samples of each stage
first reach. With --timeline it also prints, per 50 ms of the first run,
how many cores were busy and with which stages: an analysis is a line of
goroutines on two cores, and a stage that holds one core whole bounds it.

The stages are the goroutines of replay.Stream and analyze.BuildJSON:
reader (decompress, pcapng, restore elided messages, decode headers, copy
texts), merge (merge by time, reassemble events), parser (read the records'
fields), builder (the model), output (processes, their lists, the JSON
encoder), gc, and the start (exec to main). Samples in none of them
(scheduler, sysmon, the kernel's exit) are "other". notes.md's shares
("reader 34%, parser 15%, …") come from this grouping.

Needs perf (Debian package linux-perf) and a binary with symbols (the
default go build). perf's own overhead is included in the first run's
timeline; the shares are of samples, so they do not depend on it.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile

# First match wins, in frame order from the leaf up: a stage is the first
# of its patterns found in a sample's stack.
STAGES = [
    ("gc", "runtime.gcBgMarkWorker"), ("gc", "runtime.bgsweep"), ("gc", "runtime.bgscavenge"),
    ("reader", "replay.Open.func"), ("reader", "replay.(*chain).read"),
    ("merge", "replay.(*Stream).merge"), ("merge", "replay.(*Stream).run"),
    ("parser", "analyze.readEvents"),
    ("output", "analyze.BuildJSON"), ("output", "analyze.makeProcs"), ("output", "analyze.makeOutputs"),
    ("output", "analyze.(*jsonEnc)"), ("output", "analyze.(*outline)"),
    ("builder", "analyze.(*builder)"), ("builder", "analyze.Build"),
    ("start", "runtime.main"), ("start", "runtime.rt0_go"), ("start", "runtime.schedinit"), ("start", "_dl_"),
]


def samples(data):
    """Yields (pid, time s, [frames from the leaf up]) of perf.data."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "pid,time,ip,sym"], capture_output=True, text=True,
                         check=True).stdout
    for block in out.split("\n\n"):
        lines = [l.strip() for l in block.strip().split("\n") if l.strip()]
        if len(lines) < 2:
            continue
        head = lines[0].split()
        try:
            pid, t = int(head[0]), float(head[1].rstrip(":"))
        except (ValueError, IndexError):
            continue
        yield pid, t, [l.split(" ", 1)[-1] for l in lines[1:]]


def stage_of(frames):
    for f in frames:
        for name, pat in STAGES:
            if pat in f:
                return name
    return "other"


def own(frames):
    for f in frames:
        if f.startswith("proctrail/") or "klauspost" in f:
            return f
    return frames[0] if frames else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=8, help="runs of the command (default 8)")
    ap.add_argument("--data", help="read this perf.data instead of running a command")
    ap.add_argument("--timeline", action="store_true", help="cores busy per 50 ms of the first run, by stage")
    ap.add_argument("--top", type=int, default=6, help="functions listed per stage (default 6)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- BIN analyze CAPTURE [FLAGS]")
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not args.data and not cmd:
        ap.error("give a command after --, or --data")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not data:
            data = os.path.join(tmp, "perf.data")
            loop = "; ".join(" ".join(map(sh_quote, cmd)) + " >/dev/null" for _ in range(args.runs))
            subprocess.run(["perf", "record", "-q", "-F", "4999", "-g", "-o", data, "--", "sh", "-c", loop],
                           check=True, stderr=subprocess.DEVNULL)
        rows = [(pid, t, stage_of(fr), own(fr)) for pid, t, fr in samples(data)]
    if not rows:
        sys.exit("stages: no samples")
    total = len(rows)
    by = collections.Counter(s for _, _, s, _ in rows)
    funcs = collections.defaultdict(collections.Counter)
    for _, _, s, f in rows:
        funcs[s][f] += 1
    print(f"{total} samples")
    for s, n in by.most_common():
        print(f"{s:8s} {100 * n / total:5.1f}%")
        for f, m in funcs[s].most_common(args.top):
            print(f"           {100 * m / total:5.2f}%  {f}")
    if args.timeline:
        # The first run: the samples of the first process with a stage
        # that reaches the replay (not the shell that runs the loop).
        rows.sort(key=lambda r: r[1])
        pid = next((r[0] for r in rows if r[2] not in ("other", "start")), rows[0][0])
        first = [r for r in rows if r[0] == pid]
        t0 = first[0][1]
        w = 0.05
        buckets = collections.defaultdict(collections.Counter)
        for _, t, s, _ in first:
            buckets[int((t - t0) / w)][s] += 1
        print("\nfirst run, per 50 ms: cores busy (samples / (4999 Hz × 50 ms)), then samples by stage")
        for k in sorted(buckets):
            c = buckets[k]
            print(f"{k * w:6.2f}s {sum(c.values()) / (4999 * w):4.2f}  "
                  + " ".join(f"{s}={n}" for s, n in c.most_common()))


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    main()
