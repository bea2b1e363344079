package analyze

import (
	"slices"

	"proctrail/analyze/internal/procstore"
	"proctrail/formats"
)

// procfs applies one of the recorder's procfs records: the snapshot of
// the processes alive at the start, and the reads at forks and execs.
func (b *builder) procfs(r *formats.ProcRecord, t int64) {
	call, called := b.mounts.calls[r.PID]
	ns := b.mounts.record(r, t)
	switch r.Kind {
	case formats.ReasonSelected:
		// A cut's mark: the process current at the pid is of its
		// selection. It changes nothing else.
		b.cutMarked = true
		if p := b.current(r.PID); p != nil {
			p.CutSelected = true
		}
		return
	case formats.ReasonSnapshot:
		if r.Gone {
			return
		}
		p := b.implicit(r.PID, t)
		if !p.ForkSeen {
			p.InSnapshot = true
		}
		b.enrich(p, r, t, true)
		setMountNS(p, ns, 0, false)
		b.mounts.container(p.CgroupContainer, p.MountNS)
		return
	case formats.ReasonMounts:
		// The table after a mount, umount2, pivot_root, setns or
		// unshare of the process: record took it.
		if p := b.current(r.PID); p != nil {
			setMountNS(p, ns, call, called)
		}
		return
	}
	p := b.current(r.PID)
	if p == nil {
		if r.Gone {
			return
		}
		p = b.newProc(r.PID, t)
	} else if q := b.procs.Get(p.PrevIncarnation); q != nil && r.StartTicks != 0 && q.ForkTimestamp != 0 && p.ForkTimestamp != 0 {
		// A read queued for the previous incarnation of a reused pid.
		at := int64(r.StartTicks) * clockTick
		if absDiff(at, int64(q.ForkTimestamp)) < absDiff(at, int64(p.ForkTimestamp)) {
			p = q
		}
	}
	if r.Kind == formats.ReasonCommand {
		p.Command = true
		b.commands = append(b.commands, p.Ref())
	}
	if r.Gone {
		return
	}
	b.enrich(p, r, t, !p.ForkSeen)
	setMountNS(p, ns, call, called)
	b.mounts.container(p.CgroupContainer, p.MountNS)
	if r.Kind == formats.ReasonExec || r.Kind == formats.ReasonCommand {
		if len(p.Execs) > 0 {
			x := p.Execs[len(p.Execs)-1]
			if !x.FromProcfs {
				x.FromProcfs = true
				x.Procfs = b.procIdentity(r)
			}
		}
	}
}

// enrich takes from a procfs record what the other sources may lack.
// ident says whether its exe, cmdline and cwd describe p's identity
// before any exec (a snapshot, or a process whose creation was not seen).
func (b *builder) enrich(p *proc, r *formats.ProcRecord, t int64, ident bool) {
	if p.StartTicks == 0 {
		p.StartTicks = r.StartTicks
	}
	if p.UID < 0 {
		p.UID, p.UIDTime = int64(r.UIDs[0]), t
	}
	if !p.ForkSeen {
		b.reportedParent(p, r.PPID, t)
	}
	if ident && !p.HasProcfsIdentity && len(p.Execs) == 0 {
		p.HasProcfsIdentity = true
		p.ProcfsIdentity = b.procIdentity(r)
	}
	if r.Cgroup != "" {
		if id, rt := b.containerFromCgroup(r.Cgroup); id != "" {
			p.CgroupContainer = b.strs.intern(id)
			if _, ok := b.runtimes[id]; !ok {
				b.runtimes[id] = rt
			}
		} else if r.Kind != formats.ReasonFork {
			// A fork's record is read as soon as the child exists,
			// before its creator can move it: runc exec's last process
			// is read in the host's cgroup, then joined to the
			// container's (and a short one is gone before its exec's
			// record). It shows nothing the child does not inherit, so
			// only a later read says "no container".
			p.CgroupNamesNone = true
		}
	}
	if r.Kind == formats.ReasonSnapshot && !p.ForkSeen {
		for _, tid := range r.TIDs {
			if tid == p.PID || slices.ContainsFunc(p.Tasks, func(tk procstore.Task) bool { return tk.TID == tid }) {
				continue
			}
			p.Tasks = append(p.Tasks, procstore.Task{TID: tid, FromSnapshot: true})
			b.byTID[tid] = p.Ref()
		}
	}
}

// procIdentity is the identity a procfs record shows.
func (b *builder) procIdentity(r *formats.ProcRecord) procstore.Identity {
	id := procstore.Identity{Exe: b.procExe(r.Exe), Cwd: b.strs.intern(r.Cwd), Comm: b.strs.intern(r.Comm)}
	if len(r.Cmdline) > 0 && !(len(r.Cmdline) == 1 && r.Cmdline[0] == "") {
		id.Argv = b.strs.internAll(r.Cmdline)
	}
	return id
}

// procExe is readlink /proc/PID/exe, or "" for the "/" a process
// executed from an fd of an unlinked bind mount or a memfd shows.
func (b *builder) procExe(s string) string {
	if s == "/" {
		return ""
	}
	return b.strs.intern(s)
}

// setMountNS notes that procfs found p in mount namespace ns (0: not
// read). Entering another than the one known is dated by its last
// setns or unshare (call, if called), else by nothing: a process first
// read is taken to have been there all along.
func setMountNS(p *proc, ns uint64, call int64, called bool) {
	if ns == 0 || ns == p.MountNS {
		return
	}
	if called {
		p.MountNSSince = call
	}
	p.MountNS = ns
}
