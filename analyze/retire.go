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
// spool and its stub stays (the tree, the chain of its files, what
// finalize needs: end, tasks, fd table). Once finalized (finalizeGrace
// after its end) the stub follows (freeze, below), and 8 bytes stay: the
// builder's memory follows the processes alive or ended in the last
// finalizeGrace, not the processes seen.
//
// Whatever reaches a proc through a link calls get, which brings a
// retired state back; during the replay a state that came back is
// retired again, as it is then, at the end of the event (settle). The
// output phase brings each state back for as long as it needs it. The
// output is the same either way (TestRetireLate, FuzzBuildJSON).

// get returns the proc of l, its state in memory; nil for none.
func (b *builder) get(l procLink) *proc {
	p := b.stub(l)
	if p != nil && p.procState == nil {
		b.load(p)
	}
	return p
}

// stub returns the proc of l, its stub in memory (not its state); nil for
// none.
func (b *builder) stub(l procLink) *proc {
	if l.none() {
		return nil
	}
	return b.at(l.seq())
}

// at returns the proc of seq i, its stub in memory.
func (b *builder) at(i int) *proc {
	if p := b.procs[i]; p != nil {
		return p
	}
	return b.thaw(i)
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

// noRetire keeps every state and stub in memory: tests compare the two
// ways.
var noRetire = false

// retire sends p's state to the spool.
func (b *builder) retire(p *proc) {
	if noRetire || p.procState == nil || p.end == 0 {
		return
	}
	b.stateBuf = b.encodeState(b.stateBuf[:0], p.procState)
	p.retired = b.keep(p.retired, b.stateBuf)
	p.procState = nil
}

// keep returns the offset+1 of rec in the spool: old, when the record at
// old-1 is rec already (a state or stub that came back unchanged keeps its
// record, so the spool grows only with changes), else a new record's.
func (b *builder) keep(old int64, rec []byte) int64 {
	if old != 0 && bytes.Equal(b.spool.blob(old-1), rec) {
		return old
	}
	return b.spool.addBlob(rec) + 1
}

// Freezing. A process that is retired and finalized changes only when a
// late record comes, which is rare: then even its stub goes to the spool,
// and all that stays in memory is its record's offset (builder.frozen).
// This is what makes the builder's memory follow the processes alive and
// not the processes seen. Nothing holds a pointer to a stub for long:
// links and accesses name a proc by seq, and the queues and byTID hold
// only processes not yet finalized. A frozen proc comes back (thaw) as a
// new stub when a link or the output reaches it, and goes back at the end
// of the event (settle), or in the output phase after its use.

// freezable reports whether p may be frozen: retired, finalized, and in
// no queue and not in byTID (which hold pointers).
func (b *builder) freezable(p *proc) bool {
	if noRetire || !p.finalized || p.procState != nil || p.retired == 0 || p.queued || p.retireQueued {
		return false
	}
	for _, tk := range p.tasks {
		if b.byTID[tk.tid] == p {
			return false
		}
	}
	return true
}

// freeze sends p's stub to the spool.
func (b *builder) freeze(p *proc) {
	c := stateCodec{b: b, out: b.stateBuf[:0]}
	c.stub(p)
	b.stateBuf = c.out
	b.frozen[p.seq] = b.keep(b.frozen[p.seq], b.stateBuf)
	b.procs[p.seq] = nil
}

// thaw brings the stub of seq i back from the spool. A spool that fails
// (its error is the analysis's) gives a finalized stub with no state,
// parent or files, and one task, as every stub has.
func (b *builder) thaw(i int) *proc {
	p := &proc{seq: int32(i)}
	if r := b.spool.blob(b.frozen[i] - 1); r != nil {
		c := stateCodec{b: b, decode: true, r: r}
		c.stub(p)
		if c.bad || len(c.r) != 0 {
			b.spool.fail(b.frozen[i] - 1)
			*p = proc{seq: int32(i), finalized: true, tasks: []task{{}}}
		}
	}
	b.procs[i] = p
	b.unfrozen = append(b.unfrozen, p)
	if b.byPID != nil {
		b.thaws++
	}
	return p
}

// memo returns p's memos of the output phase.
func (b *builder) memo(p *proc) *procMemo {
	if b.memos == nil {
		b.memos = make([]procMemo, len(b.procs))
		b.conts = []string{""}
		b.contIndex = map[string]int32{"": 0}
	}
	return &b.memos[p.seq]
}

// procMemo is what the output phase memoizes of one process (see
// baseIdentity and containerOf), kept apart from the stubs, which come
// and go; 16 bytes.
type procMemo struct {
	base                    *identity
	cont                    int32 // the container id's index in builder.conts
	resolving, baseDone     bool
	contDone, contResolving bool
}

// container returns the memo of seq i's container id.
func (b *builder) container(i int) string { return b.conts[b.memos[i].cont] }

// contMemo returns the index of container id in b.conts, adding it.
func (b *builder) contMemo(id string) int32 {
	k, ok := b.contIndex[id]
	if !ok {
		k = int32(len(b.conts))
		b.conts = append(b.conts, id)
		b.contIndex[id] = k
	}
	return k
}

// settle retires again the states that came back since the last call:
// during the replay with what changed in them (encode), in the output
// phase as they were. Then it freezes the stubs that came back, and
// during the replay those finalized since.
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
	for _, p := range b.unfrozen {
		switch {
		case b.procs[p.seq] != p:
		case !encode:
			// The output phase changes no stub.
			if b.frozen[p.seq] != 0 {
				b.procs[p.seq] = nil
			}
		case b.freezable(p):
			b.freeze(p)
		}
	}
	clear(b.unfrozen)
	b.unfrozen = b.unfrozen[:0]
}

// The state's encoding: varints, strings as a length and bytes, a nil
// []string as length -1, links as the seq of the proc (-1: none).
// stateCodec visits the fields of a state in one order for both ways, so
// the two cannot disagree: encoding appends each field to out, decoding
// sets each from r. A bad encoding sets bad, and every field read after it
// is zero.
type stateCodec struct {
	b      *builder
	decode bool
	out    []byte
	r      []byte
	bad    bool
}

func (c *stateCodec) i64(v *int64)  { varint(c, v, binary.AppendVarint, binary.Varint) }
func (c *stateCodec) u64(v *uint64) { varint(c, v, binary.AppendUvarint, binary.Uvarint) }

// varint appends *v with put, or sets it from what get reads; get's n <= 0
// is a bad varint.
func varint[T int64 | uint64](c *stateCodec, v *T, put func([]byte, T) []byte, get func([]byte) (T, int)) {
	if !c.decode {
		c.out = put(c.out, *v)
		return
	}
	x, n := get(c.r)
	if n <= 0 {
		c.bad = true
		return
	}
	c.r = c.r[n:]
	if !c.bad {
		*v = x
	}
}

func (c *stateCodec) int(v *int) {
	x := int64(*v)
	c.i64(&x)
	*v = int(x)
}

func (c *stateCodec) i32(v *int32) {
	x := int64(*v)
	c.i64(&x)
	if x < math.MinInt32 || x > math.MaxInt32 {
		c.bad, x = true, 0
	}
	*v = int32(x)
}

// count is a length of what follows, at most what the rest of the record
// could hold.
func (c *stateCodec) count(n *int) {
	x := uint64(*n)
	c.u64(&x)
	if c.decode && x > uint64(len(c.r)) {
		c.bad, x = true, 0
	}
	*n = int(x)
}

// slice visits the length of *s; decoding makes *s of that length (nil
// for 0), for the caller to visit the elements.
func slice[T any](c *stateCodec, s *[]T) {
	n := len(*s)
	c.count(&n)
	if c.decode {
		*s = nil
		if n > 0 {
			*s = make([]T, n)
		}
	}
}

func (c *stateCodec) str(v *string) {
	n := len(*v)
	c.count(&n)
	if !c.decode {
		c.out = append(c.out, *v...)
		return
	}
	*v = c.b.spool.str(c.r[:n])
	c.r = c.r[n:]
}

func (c *stateCodec) strs(v *[]string) {
	n := int64(-1)
	if *v != nil {
		n = int64(len(*v))
	}
	c.i64(&n)
	if c.decode {
		if n < -1 || n > int64(len(c.r)) {
			c.bad = true
		}
		*v = nil
		if n < 0 || c.bad {
			return
		}
		*v = make([]string, n)
	}
	for i := range *v {
		c.str(&(*v)[i])
	}
}

func (c *stateCodec) bools(bs ...*bool) {
	var v uint64
	for i, x := range bs {
		if *x {
			v |= 1 << i
		}
	}
	c.u64(&v)
	for i, x := range bs {
		*x = v&(1<<i) != 0
	}
}

func (c *stateCodec) link(l *procLink) {
	i := int64(l.i)
	c.i64(&i)
	if c.decode {
		*l = procLink{}
		if i < 0 || i > int64(len(c.b.procs)) {
			c.bad = true
		} else {
			*l = procLink{int32(i)}
		}
	}
}

func (c *stateCodec) identity(id *identity) {
	c.str(&id.exe)
	c.strs(&id.argv)
	c.str(&id.cwd)
	c.str(&id.comm)
}

// state visits every field of st; TestStateCodec fails when one is left
// out.
func (c *stateCodec) state(st *procState) {
	c.bools(&st.forkSeen, &st.auditCreated, &st.snapshot, &st.exited, &st.core, &st.auditExit,
		&st.baseSet, &st.cgroupSeen, &st.command, &st.auditExeced)
	c.i32(&st.ppid)
	c.int(&st.parentSrc)
	c.link(&st.kparent)
	c.link(&st.prev)
	c.i64(&st.start)
	c.i64(&st.firstSeen)
	c.u64(&st.startTicks)
	c.u64(&st.forkTS)
	c.int(&st.exitCode)
	c.int(&st.signal)
	c.int(&st.auditExitCode)
	c.i64(&st.auditExitT)
	c.i64(&st.auditExitH)
	c.i64(&st.uid)
	c.i64(&st.uidT)
	c.identity(&st.base)
	c.str(&st.firstComm)
	c.str(&st.firstExe)
	c.int(&st.forkExecs)
	slice(c, &st.execs)
	if c.decode && len(st.execs) > 0 {
		xs := make([]execEntry, len(st.execs))
		for i := range xs {
			st.execs[i] = &xs[i]
		}
	}
	for _, x := range st.execs {
		c.i64(&x.t)
		c.bools(&x.conn, &x.audit, &x.pfs, &x.hasArgv)
		c.str(&x.exe)
		c.str(&x.cwd)
		c.str(&x.comm)
		c.strs(&x.argv)
		c.str(&x.path)
		c.str(&x.pExe)
		c.str(&x.pCwd)
		c.str(&x.pComm)
		c.strs(&x.pArgv)
	}
	slice(c, &st.comms)
	for i := range st.comms {
		c.i64(&st.comms[i].t)
		c.str(&st.comms[i].comm)
	}
	c.str(&st.cwd)
	c.str(&st.firstCwd)
	c.str(&st.pivot)
	c.str(&st.containerID)
	c.link(&st.setnsTarget)
}

// stub visits the fields of p's stub that a frozen proc keeps: not seq
// (the record's place), not the state (retired names its record), and
// not fds (a finalized process has none). TestStubCodec fails when one is
// left out.
func (c *stateCodec) stub(p *proc) {
	c.bools(&p.finalized, &p.queued, &p.retireQueued)
	c.i32(&p.pid)
	c.link(&p.parent)
	c.i64(&p.retired)
	c.i64(&p.files)
	c.i64(&p.lastFile)
	c.i64(&p.end)
	slice(c, &p.tasks)
	for i := range p.tasks {
		tk := &p.tasks[i]
		c.i64(&tk.start)
		c.i64(&tk.end)
		c.i32(&tk.tid)
		c.bools(&tk.snap)
	}
}

// encodeState appends the encoding of st to dst.
func (b *builder) encodeState(dst []byte, st *procState) []byte {
	c := stateCodec{b: b, out: dst}
	c.state(st)
	return c.out
}

// decodeState reads the state at off in the spool; nil when it cannot.
func (b *builder) decodeState(off int64) *procState {
	r := b.spool.blob(off)
	if r == nil {
		return nil
	}
	c := stateCodec{b: b, decode: true, r: r}
	st := &procState{}
	c.state(st)
	if c.bad || len(c.r) != 0 {
		b.spool.fail(off)
		return nil
	}
	return st
}
