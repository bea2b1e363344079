package analyze

import (
	"slices"
	"time"

	"proctrail/analyze/internal/procstore"
	"proctrail/replay"
)

// The process connector is the authority on lifetimes, parentage and
// threads: this file applies its events, and holds what every source
// uses to find, create and end processes.

// newProc starts a new incarnation of pid at t.
func (b *builder) newProc(pid int32, t int64) *proc {
	p := b.procs.Add()
	p.PID = pid
	p.Tasks = []procstore.Task{{TID: pid, Start: t}}
	p.Start, p.FirstSeen, p.UID = t, t, -1
	if old := b.procs.Get(b.byPID[pid]); old != nil {
		old.PrevIncarnation = 0 // one incarnation back is enough for late audit
		p.PrevIncarnation = old.Ref()
	}
	b.byPID[pid] = p.Ref()
	return p
}

// current returns the current process of pid, nil when there is none.
func (b *builder) current(pid int32) *proc { return b.procs.Get(b.byPID[pid]) }

// implicit returns the current process of pid, creating one whose creation
// was not seen when there is none.
func (b *builder) implicit(pid int32, t int64) *proc {
	if p := b.current(pid); p != nil {
		return p
	}
	return b.newProc(pid, t)
}

// setParent makes parent the parent of p, learned from src.
func setParent(p, parent *proc, src int) {
	if parent == p {
		return
	}
	p.Parent, p.ParentSource = refOf(parent), src
	if parent != nil {
		p.PPID = parent.PID
	}
}

// reportedParent records a parent the kernel or procfs reports now, used
// only when nothing better is known.
func (b *builder) reportedParent(p *proc, ppid int32, t int64) {
	if p.ParentSource > procstore.ParentReported || ppid <= 0 || ppid == p.PID {
		return
	}
	if p.ParentSource == procstore.ParentReported && p.PPID == ppid {
		return
	}
	p.PPID = ppid
	setParent(p, b.implicit(ppid, t), procstore.ParentReported)
}

// setUID records p's uid as of t, unless a later one is known.
func setUID(p *proc, uid int64, t int64) {
	if t >= p.UIDTime || p.UID < 0 {
		p.UID, p.UIDTime = uid, t
	}
}

// live reports whether some task of p is alive.
func live(p *proc) bool {
	for _, tk := range p.Tasks {
		if tk.End == 0 {
			return true
		}
	}
	return false
}

// revive undoes an end that proved premature (a task of p acted later).
func (b *builder) revive(p *proc) {
	if b.procs.Revive(p) {
		p.Exited = false
	}
}

// finalize closes what p left open at its end, finalizeGrace after it
// (the Store then drops its fd table), and forgets its threads.
func (b *builder) finalize(p *procstore.Stub) {
	for _, e := range p.FDs.All {
		if f := e.File; f != nil && f.Owner == p.Ref() && f.Close == 0 {
			b.closeFile(f, p.End())
		}
	}
	for _, tk := range p.Tasks {
		if b.byTID[tk.TID] == p.Ref() {
			delete(b.byTID, tk.TID)
		}
	}
}

// connector applies one process connector event.
func (b *builder) connector(e *replay.ProcEvent, t int64) {
	switch e.Kind {
	case replay.ProcFork:
		if e.ChildPID != e.ChildTGID {
			b.forkThread(e, t)
		} else {
			b.forkProcess(e, t)
		}
	case replay.ProcExec:
		b.connExec(e, t)
	case replay.ProcExit:
		b.exit(e, t)
	case replay.ProcComm:
		if e.PID == e.TGID {
			p := b.implicit(e.TGID, t)
			p.CommChanges = append(p.CommChanges, procstore.CommChange{Time: t, Comm: b.strs.intern(e.Comm)})
		}
	case replay.ProcUID:
		setUID(b.implicit(e.TGID, t), int64(e.RealID), t)
	case replay.ProcCoredump:
		b.implicit(e.TGID, t).CoreDumped = true
	}
}

func (b *builder) forkProcess(e *replay.ProcEvent, t int64) {
	pid := e.ChildTGID
	var parent *proc
	if e.ParentTGID > 0 && e.ParentTGID != pid {
		parent = b.implicit(e.ParentTGID, t)
	}
	if old := b.current(pid); old != nil {
		if !old.ForkSeen && old.End() == 0 && sameStart(old, e, t) {
			// Its snapshot or an early record came before its fork event.
			old.ForkSeen, old.ForkTimestamp = true, e.Timestamp
			if old.InSnapshot {
				old.Start = t
			} else {
				old.Start = min(old.Start, t) // its audit records came first
			}
			old.Tasks[0].Start = old.Start
			// The connector reports its threads from its fork on: a
			// snapshot's list, read later, is redundant, and its threads
			// would be counted twice.
			old.Tasks = slices.DeleteFunc(old.Tasks, func(tk procstore.Task) bool {
				if tk.FromSnapshot && b.byTID[tk.TID] == old.Ref() {
					delete(b.byTID, tk.TID)
				}
				return tk.FromSnapshot
			})
			creator := b.procs.Get(old.Parent)
			fromClone := old.ParentSource == procstore.ParentClone
			setParent(old, parent, procstore.ParentConnector)
			old.KernelParent = refOf(parent)
			if fromClone && creator != nil {
				// Its creator's clone record and its own records came
				// first (the sources race).
				cloneParent(old, creator)
			}
			inherit(old, b.procs.Get(old.Parent))
			return
		}
		if old.End() == 0 {
			// Its exit was lost: the pid is new again.
			for i := range old.Tasks {
				if old.Tasks[i].End == 0 {
					old.Tasks[i].End = t
				}
			}
			b.procs.End(old, t)
		}
	}
	p := b.newProc(pid, t)
	p.ForkSeen, p.ForkTimestamp = true, e.Timestamp
	p.PPID = e.ParentTGID
	setParent(p, parent, procstore.ParentConnector)
	p.KernelParent = refOf(parent)
	if pc, ok := b.pending[pid]; ok {
		delete(b.pending, pid)
		if absDiff(pc.t, t) < pendingWindow && pc.parent {
			cloneParent(p, b.procs.Get(pc.creator))
		}
	}
	inherit(p, b.procs.Get(p.Parent))
}

// cloneParent makes creator the parent of ch when the kernel's parent of
// ch is the creator's own kernel parent: the mark of CLONE_PARENT.
func cloneParent(ch, creator *proc) {
	if creator == ch || ch.Parent == refOf(creator) || ch.KernelParent.None() || ch.KernelParent != creator.KernelParent {
		return
	}
	setParent(ch, creator, procstore.ParentClone)
	ch.ParentExecsAtFork = len(creator.Execs)
}

// sameStart reports whether p, known before its fork event, is the process
// that fork created: its procfs start time matches the fork's timestamp
// (both count from boot), or it was first seen just before.
func sameStart(p *proc, e *replay.ProcEvent, t int64) bool {
	if p.StartTicks != 0 && e.Timestamp != 0 {
		d := int64(p.StartTicks)*clockTick - int64(e.Timestamp)
		return d > -2*clockTick && d < 2*clockTick
	}
	return !p.InSnapshot && t-p.FirstSeen < int64(time.Second)
}

// inherit gives a new child what fork copies from its parent.
func inherit(p, parent *proc) {
	if parent == nil {
		return
	}
	p.UID, p.UIDTime = parent.UID, parent.UIDTime
	p.Cwd = parent.Cwd
	p.ParentExecsAtFork = len(parent.Execs)
}

func (b *builder) forkThread(e *replay.ProcEvent, t int64) {
	delete(b.pending, e.ChildPID)
	p := b.implicit(e.ChildTGID, t)
	if p.End() != 0 {
		b.revive(p)
	}
	if i := slices.IndexFunc(p.Tasks, func(tk procstore.Task) bool { return tk.FromSnapshot && tk.TID == e.ChildPID }); i >= 0 {
		p.Tasks[i] = procstore.Task{TID: e.ChildPID, Start: t}
	} else {
		p.Tasks = append(p.Tasks, procstore.Task{TID: e.ChildPID, Start: t})
	}
	b.byTID[e.ChildPID] = p.Ref()
}

func (b *builder) connExec(e *replay.ProcEvent, t int64) {
	p := b.implicit(e.TGID, t)
	if p.End() != 0 {
		b.revive(p)
	}
	// de_thread: every other thread died; the execing one is the leader now.
	for i := range p.Tasks {
		if i == 0 {
			p.Tasks[i].End = 0
		} else if p.Tasks[i].End == 0 {
			p.Tasks[i].End = t
		}
	}
	for i := lastIndex(p.Execs, func(x *procstore.Exec) bool { return x.FromConnector }) + 1; i < len(p.Execs); i++ {
		if x := p.Execs[i]; !x.FromConnector {
			x.FromConnector, x.Time = true, t
			return
		}
	}
	p.Execs = append(p.Execs, &procstore.Exec{Time: t, FromConnector: true})
}

func lastIndex[T any](s []T, f func(T) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}

// exit ends a task. The process ends with its last task, whose status is
// the process's: every task of an exit_group or a fatal signal carries the
// group status, a main thread that called pthread_exit carries 0 and the
// process lives on with its other threads.
func (b *builder) exit(e *replay.ProcEvent, t int64) {
	p := b.current(e.TGID)
	main := e.PID == e.TGID
	if p == nil || (main && p.End() != 0 && p.Tasks[0].End != 0 && p.Finalized()) {
		p = b.newProc(e.TGID, t)
	}
	b.reportedParent(p, e.ParentTGID, t)
	if main {
		p.Tasks[0].End = t
	} else {
		i := lastIndex(p.Tasks, func(tk procstore.Task) bool { return tk.TID == e.PID && tk.End == 0 })
		if i < 0 {
			p.Tasks = append(p.Tasks, procstore.Task{TID: e.PID})
			i = len(p.Tasks) - 1
		}
		p.Tasks[i].End = t
		if b.byTID[e.PID] == p.Ref() {
			delete(b.byTID, e.PID)
		}
	}
	code, sig := e.ExitStatus()
	// A main thread that dies of a signal or exits with a status other
	// than pthread_exit's 0 takes the whole group with it: threads whose
	// exit was lost end with it.
	group := main && (sig != 0 || code != 0 || p.ExitGroup.Seen)
	if (group || !live(p) || p.End() != 0) && (p.End() == 0 || t >= p.End()) {
		p.Exited = true
		p.ExitCode, p.Signal = code, sig
		p.CoreDumped = p.CoreDumped || e.CoreDumped()
		b.procs.End(p, t)
	}
}
