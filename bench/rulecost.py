#!/usr/bin/env python3
"""bench/rulecost.py: what the grown forensic preset costs (issue 14, item 6).

Runs the issue-4 workload's two halves, the open/read/close flood
(openloop, 20,000 iterations) and the fork storm (bench/storm.sh 1 2000),
bare and under `proctrail record` with the preset before the coverage issue
(bench/forensic-v1.rules) and with the current one, in rotated order, and
prints medians: the slowdown against the bare run, audit messages, capture
bytes and bytes per audit event, and the recorder's CPU. As root.
Usage: bench/rulecost.py [--rounds 5] [--proctrail bin/proctrail]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--proctrail", default=os.path.join(ROOT, "bin", "proctrail"))
    ap.add_argument("--open-n", type=int, default=20000)
    ap.add_argument("--storm-n", type=int, default=2000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/rulecost.py: run as root")
    work = tempfile.mkdtemp(prefix="proctrail-rulecost.")
    openloop = os.path.join(work, "openloop")
    run(["gcc", "-O2", "-o", openloop, os.path.join(BENCH, "openloop.c")])
    data = os.path.join(work, "openloop.dat")
    with open(data, "w") as f:
        f.write("proctrail bench: read by openloop\n" * 8)
    storm = ["bash", "-c", 's=$(date +%s%N); "$0" 1 "$1"; e=$(date +%s%N); echo $((e-s))',
             os.path.join(BENCH, "storm.sh"), str(a.storm_n)]
    loads = {"open/close flood": [openloop, str(a.open_n), data], "fork storm": storm}
    variants = {"bare": None, "preset before": os.path.join(BENCH, "forensic-v1.rules"), "preset now": ""}
    res = {}  # (load, variant) -> list of dicts
    names = list(variants)
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for load, cmd in loads.items():
            for v in order:
                rules = variants[v]
                out = os.path.join(work, "c.zst")
                if rules is None:
                    ns = int(run(cmd).stdout.split()[-1])
                    m = {"ns": ns}
                else:
                    args = [a.proctrail, "record", "-o", out]
                    if rules:
                        args += ["--rules-file", rules]
                    p = run(args + ["--"] + cmd)
                    ns = int(p.stdout.split()[-1])
                    cpu = 0.0
                    for line in p.stderr.splitlines():
                        if "recorder CPU" in line:
                            v_ = line.split("recorder CPU ")[1].rstrip(")")
                            cpu = float(v_[:-2]) / 1e3 if v_.endswith("ms") else float(v_[:-1])
                    info = json.loads(run([a.proctrail, "info", "--json", out]).stdout)[0]
                    au = info["sources"]["audit"]
                    m = {"ns": ns, "audit": au["messages"], "events": au.get("events", 0), "lost": au["lost"],
                         "bytes": os.path.getsize(out), "cpu": cpu}
                res.setdefault((load, v), []).append(m)
        print(f"round {r + 1} done", file=sys.stderr)
    med = lambda xs: statistics.median(xs)
    print(f"| workload | rules | slowdown | audit messages | capture bytes | bytes per audit message | recorder CPU s | lost |")
    print("|---|---|---|---|---|---|---|---|")
    for load in loads:
        bare = med([m["ns"] for m in res[(load, "bare")]])
        for v in names[1:]:
            ms = res[(load, v)]
            au, b = med([m["audit"] for m in ms]), med([m["bytes"] for m in ms])
            print(f"| {load} | {v} | {med([m['ns'] for m in ms]) / bare:.2f}× | {au:,.0f} | {b:,.0f} | "
                  f"{b / au:.1f} | {med([m['cpu'] for m in ms]):.3f} | {max(m['lost'] for m in ms)} |")
    print(f"\n({a.rounds} rounds, medians; bare: open/close flood {med([m['ns'] for m in res[('open/close flood', 'bare')]]) / 1e6:.0f} ms, "
          f"fork storm {med([m['ns'] for m in res[('fork storm', 'bare')]]) / 1e6:.0f} ms)")


if __name__ == "__main__":
    main()
