package analyze

import (
	"cmp"
	"encoding/binary"
	"path"
	"strings"

	"proctrail/analyze/internal/procstore"
)

// What a process ran as: the identity it started with (its parent's, or
// what procfs read of it), then one per exec, each merged from audit and
// procfs; and the strings all of them share.

// Bounds of the builder's string table: strings longer than maxInternLen
// are copied, not shared, and the table is emptied when it holds
// maxInterned strings, so that hostile input cannot make it the larger
// part of memory.
const (
	maxInternLen = 256
	maxInterned  = 1 << 16
)

// interner holds one copy of the strings the builder keeps.
type interner struct{ strs map[string]string }

// intern returns a string equal to s in memory of the builder's own: one
// already held when an equal string was interned before (paths, exes,
// names and arguments repeat across processes), else a copy. The events'
// strings point into the replay's shared blocks, which must not be kept.
// The zero interner copies every string.
func (in *interner) intern(s string) string {
	if len(s) > maxInternLen || in.strs == nil {
		return strings.Clone(s)
	}
	if v, ok := in.strs[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(in.strs) >= maxInterned {
		clear(in.strs)
	}
	in.strs[v] = v
	return v
}

// internAll interns each of s into a new slice.
func (in *interner) internAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = in.intern(v)
	}
	return out
}

// memos are what the output phase works out once per process (its
// identity before its first exec, its container), kept apart from the
// processes, which come and go from the spool.
type memos struct {
	procs     []procMemo // by index
	conts     []string   // the container ids of procs
	contIndex map[string]int32
	ids       map[string]*procstore.Identity // interned identities; see internIdentity
	idKey     []byte                         // internIdentity's
	// The identity baseIdentity took last from a parent's exec: a
	// parent's children usually come one after another, and each would
	// otherwise bring the parent's State back from the spool.
	lastExec   execKey
	lastExecID *procstore.Identity
	pivots     []pivotMemo  // by index; see pivotRootOf
	rootfs     []rootfsMemo // by index; see rootfsOf
	walked     []ref        // rootfsOf's
}

// execKey names one exec of a process: its index in Execs, from 1.
type execKey struct {
	parent ref
	n      int
}

// procMemo is what the output phase memoizes of one process; 16 bytes.
type procMemo struct {
	base                    *procstore.Identity
	cont                    int32 // the container id's index in memos.conts
	resolving, baseDone     bool
	contDone, contResolving bool
}

// pivotMemo is whether the output phase knows that a process made no
// pivot_root (see pivotRootOf).
type pivotMemo uint8

const (
	pivotUnknown pivotMemo = iota
	pivotNone
)

// memo returns the memos of the process r names.
func (b *builder) memo(r ref) *procMemo {
	m := &b.memos
	if m.procs == nil {
		m.procs = make([]procMemo, b.procs.Len())
		m.conts = []string{""}
		m.contIndex = map[string]int32{"": 0}
	}
	return &m.procs[r.Index()]
}

// baseIdentity is what the process r names ran as before its first exec.
func (b *builder) baseIdentity(r ref) procstore.Identity {
	m := b.memo(r)
	if m.baseDone {
		return *m.base
	}
	if m.resolving {
		return procstore.Identity{}
	}
	p := b.procs.Get(r)
	m.resolving = true
	var id procstore.Identity
	if !p.Parent.None() && (p.ForkSeen || p.CreatedByClone) {
		id = b.inheritedIdentity(p)
	}
	if p.HasProcfsIdentity {
		// procfs read the process itself; what it could not read stays
		// inherited.
		id.Exe = cmp.Or(p.ProcfsIdentity.Exe, id.Exe)
		id.Cwd = cmp.Or(p.ProcfsIdentity.Cwd, id.Cwd)
		id.Comm = cmp.Or(p.ProcfsIdentity.Comm, id.Comm)
		if p.ProcfsIdentity.Argv != nil {
			id.Argv = p.ProcfsIdentity.Argv
		}
	}
	id.Comm = cmp.Or(id.Comm, p.FirstAuditComm)
	id.Exe = cmp.Or(id.Exe, p.FirstAuditExe)
	m.resolving = false
	m.baseDone, m.base = true, b.internIdentity(id)
	return id
}

// inheritedIdentity is what p ran as at its fork or clone: its parent's
// exec of that time, else what its parent ran as before its first exec.
func (b *builder) inheritedIdentity(p *proc) procstore.Identity {
	key := execKey{p.Parent, p.ParentExecsAtFork}
	if key.n > 0 && key == b.memos.lastExec {
		return *b.memos.lastExecID
	}
	par := b.procs.Get(p.Parent)
	if key.n > 0 && key.n <= len(par.Execs) {
		id := execIdentity(par.Execs[key.n-1])
		b.memos.lastExec, b.memos.lastExecID = key, &id
		return id
	}
	return b.baseIdentity(par.Ref())
}

// maxIdentityKey bounds the identities internIdentity shares: a longer one
// (a long argv) gets a memo of its own.
const maxIdentityKey = 4 << 10

// internIdentity returns a memo of id: one already held when an equal
// identity was interned before, else a new one. The processes a parent
// forks share their base identity, but each computes it afresh (often
// from the parent's state brought back from the spool, in strings of its
// own), so without sharing the memos were a third of the output phase's
// memory. The table is emptied as intern's is.
func (b *builder) internIdentity(id procstore.Identity) *procstore.Identity {
	m := &b.memos
	if m.ids == nil {
		m.ids = map[string]*procstore.Identity{}
	}
	key := m.idKey[:0]
	for _, s := range [...]string{id.Exe, id.Cwd, id.Comm} {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	key = binary.AppendUvarint(key, uint64(len(id.Argv)))
	if id.Argv == nil {
		key = append(key, 0) // nil and empty argv differ in the output
	}
	for _, s := range id.Argv {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	m.idKey = key
	if len(key) > maxIdentityKey {
		return &id
	}
	if v, ok := m.ids[string(key)]; ok {
		return v
	}
	if len(m.ids) >= maxInterned {
		clear(m.ids)
	}
	v := &id
	m.ids[string(key)] = v
	return v
}

// execIdentity merges what audit and procfs said of one exec; audit wins.
func execIdentity(x *procstore.Exec) procstore.Identity {
	id := x.Procfs
	if x.FromAudit {
		if x.Audit.Exe != "" {
			id.Exe = x.Audit.Exe
		}
		if x.AuditArgv {
			id.Argv = x.Audit.Argv
		}
		if x.Audit.Cwd != "" {
			id.Cwd = x.Audit.Cwd
		}
		if x.Audit.Comm != "" {
			id.Comm = x.Audit.Comm
		}
	}
	if id.Comm == "" {
		// The kernel names the task after the file execve was given.
		name := x.Path
		if name == "" {
			name = id.Exe
		}
		if name != "" {
			id.Comm = truncComm(path.Base(name))
		}
	}
	return id
}

func truncComm(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

// identityOf is what p ran as at its end, and every name it bore.
func (b *builder) identityOf(p *proc) (id procstore.Identity, names []string) {
	base := b.baseIdentity(p.Ref())
	names = append(names, base.Comm)
	id = base
	var lastExec int64 = -1 << 63
	for _, x := range p.Execs {
		xi := execIdentity(x)
		names = append(names, xi.Comm)
		id, lastExec = xi, x.Time
	}
	if len(p.Execs) == 0 && p.FirstCwd != "" {
		id.Cwd = p.FirstCwd
	}
	for _, c := range p.CommChanges {
		names = append(names, c.Comm)
		if c.Time >= lastExec {
			id.Comm = c.Comm
		}
	}
	return id, names
}
