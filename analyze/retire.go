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
	i := int64(-1)
	if l.p != nil {
		i = int64(l.p.seq)
	}
	c.i64(&i)
	if c.decode {
		*l = procLink{}
		if i < -1 || i >= int64(len(c.b.procs)) {
			c.bad = true
		} else if i >= 0 {
			*l = link(c.b.procs[i])
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
	c.i64(&st.uid)
	c.i64(&st.uidT)
	c.identity(&st.base)
	c.str(&st.firstComm)
	c.str(&st.firstExe)
	c.int(&st.forkExecs)
	n := len(st.execs)
	if c.count(&n); c.decode && n > 0 {
		xs := make([]execEntry, n)
		st.execs = make([]*execEntry, n)
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
	n = len(st.comms)
	if c.count(&n); c.decode && n > 0 {
		st.comms = make([]commChange, n)
	}
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
