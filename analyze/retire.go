package analyze

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Retiring processes. A capture of a busy host describes far more
// processes than are alive at any time; the output needs them all, but a
// process that ended retireDelay ago is all but final: only a late record
// still changes it. Such a process is retired: its procState goes to the
// spool and its stub stays (the tree, the output's memos, the chain of its
// files, what finalize needs: end, tasks, fd table). So the builder's
// memory follows the processes alive, plus a stub of about 200 bytes for
// each it has seen.
//
// Whatever reaches a proc through a link calls get, which brings a
// retired state back; during the replay a state that came back is
// retired again, as it is then, at the end of the event (settle). The
// output phase brings each state back for as long as it needs it. The
// output is the same either way (TestRetireLate, FuzzBuildJSON).

// get returns the proc of l, its state in memory.
func (b *builder) get(l procLink) *proc {
	if p := l.p; p != nil && p.procState == nil {
		b.load(p)
	}
	return l.p
}

// use is get for a proc at hand (b.procs, the end phase).
func (b *builder) use(p *proc) *proc { return b.get(link(p)) }

// load brings p's state back from the spool. A spool that fails (its
// error is the analysis's) gives an empty state, never a nil one.
func (b *builder) load(p *proc) {
	st := b.decodeState(p.retired - 1)
	if st == nil {
		st = &procState{}
	}
	p.procState = st
	b.loaded = append(b.loaded, p)
	if b.byPID != nil {
		b.reloads++
	}
}

// noRetire keeps every state in memory: tests compare the two ways.
var noRetire = false

// retire sends p's state to the spool.
func (b *builder) retire(p *proc) {
	if noRetire || p.procState == nil || p.end == 0 {
		return
	}
	b.stateBuf = b.encodeState(b.stateBuf[:0], p.procState)
	if p.retired == 0 || !bytes.Equal(b.spool.blob(p.retired-1), b.stateBuf) {
		// A state that came back unchanged (an fd looked up in a retired
		// parent) keeps its record: the spool grows only with changes.
		p.retired = b.spool.addBlob(b.stateBuf) + 1
	}
	p.procState = nil
}

// settle retires again the states that came back since the last call:
// during the replay with what changed in them (encode), in the output
// phase as they were.
func (b *builder) settle(encode bool) {
	for _, p := range b.loaded {
		if p.procState == nil {
			continue
		}
		if encode {
			b.retire(p)
		} else {
			p.procState = nil
		}
	}
	clear(b.loaded)
	b.loaded = b.loaded[:0]
}

// The state's encoding: varints, strings as a length and bytes, a nil
// []string as length -1, links as the seq of the proc (-1: none).

type stateEnc []byte

func (e *stateEnc) int(v int64)   { *e = binary.AppendVarint(*e, v) }
func (e *stateEnc) uint(v uint64) { *e = binary.AppendUvarint(*e, v) }
func (e *stateEnc) str(s string)  { e.uint(uint64(len(s))); *e = append(*e, s...) }
func (e *stateEnc) strs(ss []string) {
	if ss == nil {
		e.int(-1)
		return
	}
	e.int(int64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}
func (e *stateEnc) bools(bs ...bool) {
	var v uint64
	for i, x := range bs {
		if x {
			v |= 1 << i
		}
	}
	e.uint(v)
}
func (e *stateEnc) link(l procLink) {
	if l.p == nil {
		e.int(-1)
	} else {
		e.int(int64(l.p.seq))
	}
}
func (e *stateEnc) identity(id *identity) {
	e.str(id.exe)
	e.strs(id.argv)
	e.str(id.cwd)
	e.str(id.comm)
}

func (b *builder) encodeState(dst []byte, st *procState) []byte {
	e := stateEnc(dst)
	e.bools(st.forkSeen, st.auditCreated, st.snapshot, st.exited, st.core, st.auditExit,
		st.baseSet, st.cgroupSeen, st.command, st.auditExeced)
	e.int(int64(st.ppid))
	e.int(int64(st.parentSrc))
	e.link(st.kparent)
	e.link(st.prev)
	e.int(st.start)
	e.int(st.firstSeen)
	e.uint(st.startTicks)
	e.uint(st.forkTS)
	e.int(int64(st.exitCode))
	e.int(int64(st.signal))
	e.int(int64(st.auditExitCode))
	e.int(st.auditExitT)
	e.int(st.uid)
	e.int(st.uidT)
	e.identity(&st.base)
	e.str(st.firstComm)
	e.str(st.firstExe)
	e.int(int64(st.forkExecs))
	e.uint(uint64(len(st.execs)))
	for _, x := range st.execs {
		e.int(x.t)
		e.bools(x.conn, x.audit, x.pfs, x.hasArgv)
		e.str(x.exe)
		e.str(x.cwd)
		e.str(x.comm)
		e.strs(x.argv)
		e.str(x.path)
		e.str(x.pExe)
		e.str(x.pCwd)
		e.str(x.pComm)
		e.strs(x.pArgv)
	}
	e.uint(uint64(len(st.comms)))
	for _, c := range st.comms {
		e.int(c.t)
		e.str(c.comm)
	}
	e.str(st.cwd)
	e.str(st.firstCwd)
	e.str(st.pivot)
	e.str(st.containerID)
	e.link(st.setnsTarget)
	return e
}

// stateDec reads a state's encoding; a bad one sets bad, and what it
// returns from then on is zero.
type stateDec struct {
	b   *builder
	r   []byte
	bad bool
}

func (d *stateDec) int() int64 {
	v, n := binary.Varint(d.r)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.r = d.r[n:]
	return v
}

func (d *stateDec) uint() uint64 {
	v, n := binary.Uvarint(d.r)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.r = d.r[n:]
	return v
}

// n reads a count, at most what the rest of the record can hold.
func (d *stateDec) n() int {
	v := d.uint()
	if v > uint64(len(d.r)) {
		d.bad = true
		return 0
	}
	return int(v)
}

func (d *stateDec) int32() int32 {
	v := d.int()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.bad = true
	}
	return int32(v)
}

func (d *stateDec) str() string {
	n := d.n()
	s := d.b.spool.str(d.r[:n])
	d.r = d.r[n:]
	return s
}

func (d *stateDec) strs() []string {
	n := d.int()
	if n < 0 || n > int64(len(d.r)) {
		d.bad = d.bad || n < -1 || n > int64(len(d.r))
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

func (d *stateDec) bools(bs ...*bool) {
	v := d.uint()
	for i, x := range bs {
		*x = v&(1<<i) != 0
	}
}

func (d *stateDec) link() procLink {
	i := d.int()
	if i < -1 || i >= int64(len(d.b.procs)) {
		d.bad = true
		return procLink{}
	}
	if i == -1 {
		return procLink{}
	}
	return link(d.b.procs[i])
}

func (d *stateDec) identity(id *identity) {
	id.exe = d.str()
	id.argv = d.strs()
	id.cwd = d.str()
	id.comm = d.str()
}

// decodeState reads the state at off in the spool; nil when it cannot.
func (b *builder) decodeState(off int64) *procState {
	r := b.spool.blob(off)
	if r == nil {
		return nil
	}
	d := &stateDec{b: b, r: r}
	st := &procState{}
	d.bools(&st.forkSeen, &st.auditCreated, &st.snapshot, &st.exited, &st.core, &st.auditExit,
		&st.baseSet, &st.cgroupSeen, &st.command, &st.auditExeced)
	st.ppid = d.int32()
	st.parentSrc = int(d.int())
	st.kparent = d.link()
	st.prev = d.link()
	st.start = d.int()
	st.firstSeen = d.int()
	st.startTicks = d.uint()
	st.forkTS = d.uint()
	st.exitCode = int(d.int())
	st.signal = int(d.int())
	st.auditExitCode = int(d.int())
	st.auditExitT = d.int()
	st.uid = d.int()
	st.uidT = d.int()
	d.identity(&st.base)
	st.firstComm = d.str()
	st.firstExe = d.str()
	st.forkExecs = int(d.int())
	if n := d.n(); n > 0 {
		st.execs = make([]*execEntry, n)
		xs := make([]execEntry, n)
		for i := range xs {
			x := &xs[i]
			x.t = d.int()
			d.bools(&x.conn, &x.audit, &x.pfs, &x.hasArgv)
			x.exe = d.str()
			x.cwd = d.str()
			x.comm = d.str()
			x.argv = d.strs()
			x.path = d.str()
			x.pExe = d.str()
			x.pCwd = d.str()
			x.pComm = d.str()
			x.pArgv = d.strs()
			st.execs[i] = x
		}
	}
	if n := d.n(); n > 0 {
		st.comms = make([]commChange, n)
		for i := range st.comms {
			st.comms[i] = commChange{t: d.int(), comm: d.str()}
		}
	}
	st.cwd = d.str()
	st.firstCwd = d.str()
	st.pivot = d.str()
	st.containerID = d.str()
	st.setnsTarget = d.link()
	if d.bad || len(d.r) != 0 {
		b.spool.fail(off)
		return nil
	}
	return st
}
