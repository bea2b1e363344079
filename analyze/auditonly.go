package analyze

import (
	"cmp"
	"slices"

	"proctrail/analyze/internal/procstore"
)

// From audit alone (an auditd log, or a capture imported from one) there
// is no fork event: a process is known from its own records, and its
// creation from its creator's clone record, whose exit is the new task's
// id. Three things make that hard, each met here:
//
//   - Threads: a thread's syscalls carry its process's pid, so only the
//     clone record shows it. clone's flags say CLONE_THREAD; clone3's are
//     in a struct audit does not print, so a clone3 whose task never
//     shows a record of its own within pendingWindow is a thread
//     (pthread_create uses clone3; posix_spawn's child execs at once).
//   - Pid namespaces: a creator inside one (busybox sh in a runc
//     container) gets the child's pid in its namespace, which the child's
//     records (host pids) do not match. The child's record names its
//     parent (ppid=), whose recent unclaimed clone is its creation.
//   - CLONE_PARENT (runc's nsexec): the child's ppid is its creator's
//     parent; the creator's clone says so, or may (clone3).

// claimByCreator finds the pending clone that created a process whose
// first record names parent ppid at t, when its pid did not match one:
// an unclaimed clone made within pendingWindow by ppid (or, with
// CLONE_PARENT in clone's flags, by a child of ppid: a clone3, whose
// flags are unknown, is a thread far more often), the nearest in time, a
// clone or fork before a clone3 (which may have made a thread). It
// removes it.
func (b *builder) claimByCreator(ppid int32, t int64) (pendingClone, bool) {
	if !b.auditOnly || ppid <= 0 || len(b.pending) == 0 {
		return pendingClone{}, false
	}
	var best pendingClone
	bestPID, found := int32(0), false
	better := func(k int32, v pendingClone) bool {
		if !found {
			return true
		}
		if v.clone3 != best.clone3 {
			return !v.clone3
		}
		return cmp.Or(cmp.Compare(absDiff(v.t, t), absDiff(best.t, t)), cmp.Compare(k, bestPID)) < 0
	}
	for k, v := range b.pending {
		if absDiff(v.t, t) >= pendingWindow {
			continue
		}
		cr := b.procs.Stub(v.creator)
		ok := cr.PID == ppid
		if !ok && v.parent && !v.clone3 && !cr.Parent.None() {
			ok = b.procs.Stub(cr.Parent).PID == ppid
		}
		if ok && better(k, v) {
			best, bestPID, found = v, k, true
		}
	}
	if found {
		delete(b.pending, bestPID)
	}
	return best, found
}

// expirePending drops the pending clones older than pendingWindow at
// now; from audit alone, a clone3 whose task never showed is a thread of
// its creator. In the order of the clones, so that the output does not
// depend on the map's.
func (b *builder) expirePending(now int64) {
	type old struct {
		pid int32
		pc  pendingClone
	}
	var gone []old
	for k, v := range b.pending {
		if now-v.t > pendingWindow {
			gone = append(gone, old{k, v})
		}
	}
	slices.SortFunc(gone, func(x, y old) int { return cmp.Or(cmp.Compare(x.pc.t, y.pc.t), cmp.Compare(x.pid, y.pid)) })
	for _, g := range gone {
		delete(b.pending, g.pid)
		if b.auditOnly && g.pc.clone3 {
			if p := b.procs.Get(g.pc.creator); p != nil {
				addThread(p, g.pid, g.pc.t)
			}
		}
	}
}

// addThread adds task tid, started at t, to p, unless p has it. A tid
// below its process's pid is one of a pid namespace's (runc's init makes
// its threads in the container's): its host tid is unknown, and the
// thread is left out rather than named by a wrong id. (A wrap of the
// host's pids, after pid_max, would be left out too.)
func addThread(p *proc, tid int32, t int64) {
	if tid <= 0 || tid < p.PID || p.Finalized() || slices.ContainsFunc(p.Tasks, func(tk procstore.Task) bool { return tk.TID == tid }) {
		return
	}
	p.Tasks = append(p.Tasks, procstore.Task{TID: tid, Start: t})
}
