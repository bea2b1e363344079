#!/usr/bin/env python3
"""bench/rulecost.py: what the forensic preset costs, per syscall group (issues 14 and 15).

Each workload runs bare, and under three readers with the same settings as
bench/bench.py's (backlog limit 8192, backlog wait time 60000):
`proctrail record` with the preset before the coverage issue
(bench/forensic-v1.rules), `proctrail record` with today's preset, and
auditd (own config dir and log, RAW, no plugins) with today's preset
(bench/forensic.rules). The readers run in a rotated order, one start per
run, so that each run's capture or log holds that run alone.

The workloads: the open/read/close flood (openloop), the fork storm
(storm.sh), one loop per syscall group of the preset (groupload.c: file
system changes, network, sendto, signals, fcntl), three loops whose calls
the preset's filters leave out (send on a connected socket, kill 0,
fcntl F_GETFL: what a rule that does not match costs), container starts
(containers.sh: runc, where the recorder reads each new mount namespace's
mount table), and an empty run whose capture or log is the fixed part
(the procfs snapshot, the daemon's own records) taken off the others.

For each: the slowdown against the bare run (the workload's own clock),
the audit events per iteration, the drain rate (the run's audit events
over the time from the workload's start until the reader has received a
USER record sent with `auditctl -m` after it), losses (the kernel's lost
counter and the recorder's overruns) and the kernel's backlog waits, the
bytes per event of the capture or log, and the reader's CPU. Medians over
the rounds. As root; it saves the audit state and restores it after every
run (bench.py's AuditState), and never leaves auditd running.
Usage: bench/rulecost.py [--rounds 3] [--proctrail bin/proctrail] [--only fs,net]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import bench as B  # noqa: E402

V1 = os.path.join(BENCH, "forensic-v1.rules")
# The workloads run with this audit login uid (written to
# /proc/self/loginuid before exec; children inherit it), and every rule is
# scoped to it (-F auid=AUID), so that a run's events are the workload's
# alone on a host where other programs run meanwhile. The field costs one
# comparison, made only for a syscall the rule lists.
AUID = 4242


def scoped(path, work):
    """A copy of the rules file at path with -F auid=AUID in every rule."""
    out = os.path.join(work, "scoped-" + os.path.basename(path))
    with open(path) as f, open(out, "w") as o:
        for line in f:
            if line.startswith("-a "):
                line = line.replace(" -k ", f" -F auid={AUID} -k ", 1)
                assert f"auid={AUID}" in line, line
            o.write(line)
    return out


def set_auid():
    with open("/proc/self/loginuid", "w") as f:
        f.write(str(AUID))


VARIANTS = ("bare", "record, preset before", "record, preset now", "auditd, preset now")

# name -> (syscall group, audited calls per iteration under today's preset,
# iterations). The calls are those of one iteration that the preset audits.
LOADS = {
    "empty run": ("(fixed part)", "", 0),
    "open/close flood": ("open/close (before too)", "openat, close", 20000),
    "fork storm": ("exec, clone, exit (before too)", "clone, execve, exit_group ×2 (shell loop)", 2000),
    "fs": ("file-system changes", "mkdir, chmod, chown, utimensat, symlink, unlink, rmdir", 1000),
    "net": ("network", "socket, connect, close", 5000),
    "sendto": ("network: sendto with an address", "sendto", 10000),
    "kill": ("signals", "kill", 10000),
    "fcntl": ("fd table: fcntl F_DUPFD", "fcntl, close", 10000),
    "send": ("filtered out: send, no address", "–", 10000),
    "kill0": ("filtered out: kill 0", "–", 20000),
    "fcntlfl": ("filtered out: fcntl F_GETFL", "–", 20000),
    "containers": ("container start (mount tables)", "runc's and the container's", 20),
}


def load_cmd(name, tools, work):
    _, _, n = LOADS[name]
    if name == "open/close flood":
        return [tools["openloop"], str(n), tools["openfile"]]
    if name == "fork storm":
        return ["bash", "-c", 's=$(date +%s%N); "$0" 1 "$1"; e=$(date +%s%N); echo $((e-s))',
                os.path.join(BENCH, "storm.sh"), str(n)]
    if name == "containers":
        return ["sh", os.path.join(BENCH, "containers.sh"), str(n), os.path.join(work, "containers")]
    scratch = scratch_dir(work)
    os.makedirs(scratch, exist_ok=True)
    return [tools["groupload"], "fs" if name == "empty run" else name, str(n), scratch]


def scratch_dir(work):
    """Where groupload works: on tmpfs where there is one, for the file-system
    group's cost is audit's, not the disk's."""
    return os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else work, "proctrail-rulecost")


def one_run(variant, name, tools, work, state, rnd):
    cmd = load_cmd(name, tools, work)
    state.wait_idle()
    if variant == "bare":
        ns = int(B.run(cmd, preexec_fn=set_auid).stdout.split()[-1])
        # Bare is bare only if nobody audited meanwhile.
        return {"ns": ns, "interfered": state.busy()}
    mode = "auditd" if variant.startswith("auditd") else "record"
    d = B.Daemon(mode, tools, work, rnd, "INCREMENTAL_ASYNC", tools["v1"] if "before" in variant else tools["now"])
    r = {}
    try:
        d.start()
        st0 = B.audit_status()
        c0 = B.cpu_ticks(d.proc.pid)
        log_start = os.path.getsize(d.log) if mode == "auditd" else 0
        t0 = time.time_ns()
        r["ns"] = int(B.run(cmd, preexec_fn=set_auid).stdout.split()[-1])
        B.run(["auditctl", "-m", f"proctrail-rulecost-end {rnd}"])
        if mode == "auditd":
            drain_end = d.marker_time(log_start)
        B.wait_drained()
        c1 = B.cpu_ticks(d.proc.pid)
        st1 = B.audit_status()
        r["interfered"] = d.check()
        if mode == "auditd":
            state.delete_added_rules()  # before auditd goes (bench.py's one_run says why)
        d.stop()
    finally:
        d.stop()
        diff = state.restore()
        if diff:
            raise SystemExit("rulecost: AUDIT STATE NOT RESTORED after " + variant + ": " + "; ".join(diff))
    path = d.log if mode == "auditd" else d.out
    s = B.capstat(tools, path, t0)
    if mode == "record":
        drain_end = s["marker_ns"]
    kernel_lost = st1.get("lost", 0) - st0.get("lost", 0)
    r.update(events=s["window_events"], bytes=s["bytes"], window_bytes=s["window_bytes"], cpu=sum(c1) - sum(c0), kernel_lost=kernel_lost,
             lost=kernel_lost + (0 if mode == "auditd" else max(0, s["audit_lost"] - kernel_lost) + s["connector_lost"]),
             waits=st1.get("backlog_wait_time_actual", 0) - st0.get("backlog_wait_time_actual", 0),
             span=(drain_end - t0) / 1e9, mount_tables=s.get("mount_tables", 0),
             mount_bytes=s.get("mount_table_bytes", 0), mount_zbytes=s.get("mount_table_zbytes", 0))
    if mode == "record":
        os.remove(path)
    return r


def build(work, proctrail):
    tools = B.build(work, proctrail)
    tools["groupload"] = os.path.join(work, "bin", "groupload")
    B.run(["gcc", "-O2", "-o", tools["groupload"], os.path.join(BENCH, "groupload.c")])
    tools["v1"], tools["now"] = scoped(V1, work), scoped(B.RULES, work)
    return tools


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--proctrail", default=os.path.join(ROOT, "bin", "proctrail"))
    ap.add_argument("--only", default="", help="comma-separated workloads (default: all): " + ", ".join(LOADS))
    ap.add_argument("--work", default="/var/tmp/proctrail-rulecost", help="scratch directory (emptied)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("rulecost: run as root")
    for tool in ("auditd", "auditctl", "runc", "gcc", "go"):
        if not shutil.which(tool):
            sys.exit(f"rulecost: {tool} not found (scripts/install-deps)")
    if not os.path.exists("/bin/busybox"):
        sys.exit("rulecost: /bin/busybox not found (apt-get install busybox-static)")
    loads = [l for l in LOADS if not a.only or l in a.only.split(",") or l == "empty run"]
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    tools = build(a.work, a.proctrail)
    state = B.AuditState()
    st = state.status
    if st.get("enabled") == 2:
        sys.exit("rulecost: audit is immutable (enabled 2)")
    res = {}  # (load, variant) -> list of dicts
    try:
        for r in range(a.rounds):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for load in loads:
                for v in order:
                    # Someone else's audit use during a run (a test
                    # recording without the lock) voids it: again, a few
                    # times, then the run is left out.
                    for attempt in range(4):
                        m = one_run(v, load, tools, a.work, state, r)
                        if not m.get("interfered"):
                            res.setdefault((load, v), []).append(m)
                            break
                        B.log(f"{v}, {load}, round {r + 1}: {m['interfered']}; again")
                        time.sleep(2)
            B.log(f"rulecost: round {r + 1}/{a.rounds} done")
    finally:
        shutil.rmtree(scratch_dir(a.work), ignore_errors=True)
        diff = state.restore()
        if diff:
            print("rulecost: AUDIT STATE NOT RESTORED: " + "; ".join(diff), file=sys.stderr)
            sys.exit(3)
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump({f"{l} | {v}": ms for (l, v), ms in res.items()}, f, indent=1)
    report(res, loads, a)


def report(res, loads, a):
    med = statistics.median

    def m(load, v, k):
        xs = [x[k] for x in res.get((load, v), [])]
        return med(xs) if xs else float("nan")

    readers = VARIANTS[1:]
    short = {"record, preset before": "before", "record, preset now": "now", "auditd, preset now": "auditd"}
    print(f"`bench/rulecost.py --rounds {a.rounds}`: bare, then proctrail record with the preset before the "
          "coverage issue (before), with today's (now), and auditd with today's (auditd), rotated; medians.\n")
    print("| workload | syscall group | calls audited per iteration (now) | iterations | bare ms | "
          "slowdown before / now / auditd | added µs per iteration, now | audit events per iteration, before / now |")
    print("|---|---|---|---|---|---|---|---|")
    for load in loads:
        if load == "empty run":
            continue
        group, calls, n = LOADS[load]
        bare = m(load, "bare", "ns")
        slow = " / ".join(f"{m(load, v, 'ns') / bare:.2f}×" for v in readers)
        added = (m(load, "record, preset now", "ns") - bare) / n / 1e3
        ev = " / ".join(f"{max(0, m(load, v, 'events') - m('empty run', v, 'events')) / n:.1f}" for v in readers[:2])
        print(f"| {load} | {group} | {calls} | {n:,} | {bare / 1e6:,.0f} | {slow} | {added:.1f} | {ev} |")
    print()
    print("| workload | drain, events/s: before / now / auditd | lost (kernel + overruns), max of rounds: "
          "before / now / auditd | backlog waits: before / now / auditd | capture B/event now (audit part); auditd log B/event | "
          "reader CPU µs/event: now / auditd |")
    print("|---|---|---|---|---|---|")
    for load in loads:
        if load == "empty run":
            continue
        # No drain rate where the run made no events of its own (a group
        # the preset before did not audit, a filtered-out call).
        drain = " / ".join(f"{m(load, v, 'events') / m(load, v, 'span'):,.0f}"
                           if m(load, v, "events") - m("empty run", v, "events") >= LOADS[load][2] / 2 else "–"
                           for v in readers)
        lost = " / ".join(f"{max((x['lost'] for x in res.get((load, v), [])), default='–')}" for v in readers)
        waits = " / ".join(f"{m(load, v, 'waits'):,.0f}" for v in readers)

        def per_event(v, k):
            e = m(load, v, "events") - m("empty run", v, "events")
            return (m(load, v, k) - m("empty run", v, k)) / e if e > 0 else float("nan")
        cpu = " / ".join(f"{per_event(v, 'cpu') * 1e6:.1f}" for v in readers[1:])
        own = m(load, "record, preset now", "events") - m("empty run", "record, preset now", "events") >= LOADS[load][2] / 2
        bpe = [med([x["window_bytes"] / x["events"] for x in res.get((load, v), []) if x["events"]] or [float("nan")])
               for v in readers[1:]]
        if not own:  # a filtered-out call: no events of its own to share the bytes and the CPU
            print(f"| {load} | {drain} | {lost} | {waits} | – | – |")
            continue
        print(f"| {load} | {drain} | {lost} | {waits} | {bpe[0]:.1f}; {bpe[1]:,.0f} | {cpu} |")
    if "containers" in loads:
        n = LOADS["containers"][2]
        v = "record, preset now"
        print(f"\nContainer starts ({n} `runc run` of busybox `true`): {m('containers', 'bare', 'ns') / n / 1e6:.1f} ms "
              f"each bare, {m('containers', v, 'ns') / n / 1e6:.1f} ms recorded (preset before: "
              f"{m('containers', 'record, preset before', 'ns') / n / 1e6:.1f} ms, auditd: "
              f"{m('containers', 'auditd, preset now', 'ns') / n / 1e6:.1f} ms); the recorder wrote "
              f"{(m('containers', v, 'mount_tables') - m('empty run', v, 'mount_tables')) / n:.1f} mount tables per "
              f"start, {(m('containers', v, 'mount_bytes') - m('empty run', v, 'mount_bytes')) / n:,.0f} bytes of "
              f"mountinfo before compression, {(m('containers', v, 'mount_zbytes') - m('empty run', v, 'mount_zbytes')) / n:,.0f} "
              f"compressed (re-encoded alone); the capture grew by "
              f"{(m('containers', v, 'bytes') - m('empty run', v, 'bytes')) / n:,.0f} bytes per start.")
    print(f"\n(fixed part, the empty run: capture {m('empty run', 'record, preset now', 'bytes'):,.0f} bytes "
          f"with {m('empty run', 'record, preset now', 'mount_tables'):.0f} mount tables; auditd's log "
          f"{m('empty run', 'auditd, preset now', 'bytes'):,.0f} bytes)")


if __name__ == "__main__":
    main()
