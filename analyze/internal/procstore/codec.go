package procstore

import (
	"encoding/binary"
	"math"
)

// The spool's records of States and stubs: varints, strings as a length
// and bytes, a nil []string as length -1, Refs as themselves. One codec
// visits the fields of a State or Stub in one order for both ways, so the
// two cannot disagree: encoding appends each field to out, decoding sets
// each from r. A bad record sets bad, and every field read after it is
// zero. TestStateCodec and TestStubCodec fail when a field is left out.
type codec struct {
	s      *Store
	decode bool
	out    []byte
	r      []byte
	bad    bool
}

// appendState appends the encoding of st to dst.
func (s *Store) appendState(dst []byte, st *State) []byte {
	c := codec{s: s, out: dst}
	c.state(st)
	return c.out
}

// decodeState reads the State whose record is at off; nil when it cannot.
func (s *Store) decodeState(off int64) *State {
	r := s.spool.Record(off)
	if r == nil {
		return nil
	}
	c := codec{s: s, decode: true, r: r}
	st := &State{}
	c.state(st)
	if c.bad || len(c.r) != 0 {
		s.spool.Corrupt(off)
		return nil
	}
	return st
}

// appendStub appends the encoding of p to dst.
func (s *Store) appendStub(dst []byte, p *Stub) []byte {
	c := codec{s: s, out: dst}
	c.stub(p)
	return c.out
}

// decodeStub reads the stub whose record is at off into p, and reports
// whether it could.
func (s *Store) decodeStub(off int64, p *Stub) bool {
	r := s.spool.Record(off)
	if r == nil {
		return false
	}
	c := codec{s: s, decode: true, r: r}
	c.stub(p)
	if c.bad || len(c.r) != 0 {
		s.spool.Corrupt(off)
		return false
	}
	return true
}

// state visits every field of st.
func (c *codec) state(st *State) {
	c.bools(&st.ForkSeen, &st.CreatedByClone, &st.InSnapshot, &st.Exited, &st.CoreDumped, &st.ExitGroup.Seen,
		&st.HasProcfsIdentity, &st.CgroupNamesNone, &st.Command, &st.ExecedInAudit, &st.CutSelected)
	c.i32(&st.PPID)
	c.int(&st.ParentSource)
	c.ref(&st.KernelParent)
	c.ref(&st.PrevIncarnation)
	c.i64(&st.Start)
	c.i64(&st.FirstSeen)
	c.u64(&st.StartTicks)
	c.u64(&st.ForkTimestamp)
	c.int(&st.ExitCode)
	c.int(&st.Signal)
	c.int(&st.ExitGroup.Code)
	c.i64(&st.ExitGroup.Time)
	c.i64(&st.ExitGroup.HeaderTime)
	c.i64(&st.UID)
	c.i64(&st.UIDTime)
	c.identity(&st.ProcfsIdentity)
	c.str(&st.FirstAuditComm)
	c.str(&st.FirstAuditExe)
	c.int(&st.ParentExecsAtFork)
	slice(c, &st.Execs)
	if c.decode && len(st.Execs) > 0 {
		xs := make([]Exec, len(st.Execs))
		for i := range xs {
			st.Execs[i] = &xs[i]
		}
	}
	for _, x := range st.Execs {
		c.i64(&x.Time)
		c.bools(&x.FromConnector, &x.FromAudit, &x.FromProcfs, &x.AuditArgv, &x.Fileless)
		c.identity(&x.Audit)
		c.str(&x.Path)
		c.identity(&x.Procfs)
	}
	slice(c, &st.CommChanges)
	for i := range st.CommChanges {
		c.i64(&st.CommChanges[i].Time)
		c.str(&st.CommChanges[i].Comm)
	}
	c.str(&st.Cwd)
	c.str(&st.FirstCwd)
	c.str(&st.PivotRoot)
	c.str(&st.CgroupContainer)
	c.ref(&st.JoinedMountNS)
	c.u64(&st.MountNS)
	c.i64(&st.MountNSSince)
	c.i64(&st.FirstSignal)
	c.i64(&st.LastSignal)
	c.i64(&st.FirstNet)
	c.i64(&st.LastNet)
}

// stub visits the fields of p that a frozen process keeps: not its Ref
// (the record's place) and not FDs (a finalized process has none).
func (c *codec) stub(p *Stub) {
	c.bools(&p.finalized, &p.finalizeQueued, &p.retireQueued)
	c.i32(&p.PID)
	c.ref(&p.Parent)
	c.i64(&p.stateOff)
	c.i64(&p.FirstFile)
	c.i64(&p.LastFile)
	c.i64(&p.end)
	slice(c, &p.Tasks)
	for i := range p.Tasks {
		tk := &p.Tasks[i]
		c.i64(&tk.Start)
		c.i64(&tk.End)
		c.i32(&tk.TID)
		c.bools(&tk.FromSnapshot)
	}
}

func (c *codec) i64(v *int64)  { varint(c, v, binary.AppendVarint, binary.Varint) }
func (c *codec) u64(v *uint64) { varint(c, v, binary.AppendUvarint, binary.Uvarint) }

// varint appends *v with put, or sets it from what get reads; get's n <= 0
// is a bad varint.
func varint[T int64 | uint64](c *codec, v *T, put func([]byte, T) []byte, get func([]byte) (T, int)) {
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

func (c *codec) int(v *int) {
	x := int64(*v)
	c.i64(&x)
	*v = int(x)
}

func (c *codec) i32(v *int32) {
	x := int64(*v)
	c.i64(&x)
	if x < math.MinInt32 || x > math.MaxInt32 {
		c.bad, x = true, 0
	}
	*v = int32(x)
}

// count is a length of what follows, at most what the rest of the record
// could hold.
func (c *codec) count(n *int) {
	x := uint64(*n)
	c.u64(&x)
	if c.decode && x > uint64(len(c.r)) {
		c.bad, x = true, 0
	}
	*n = int(x)
}

// slice visits the length of *s; decoding makes *s of that length (nil
// for 0), for the caller to visit the elements.
func slice[T any](c *codec, s *[]T) {
	n := len(*s)
	c.count(&n)
	if c.decode {
		*s = nil
		if n > 0 {
			*s = make([]T, n)
		}
	}
}

func (c *codec) str(v *string) {
	n := len(*v)
	c.count(&n)
	if !c.decode {
		c.out = append(c.out, *v...)
		return
	}
	*v = c.s.spool.Intern(c.r[:n])
	c.r = c.r[n:]
}

func (c *codec) strs(v *[]string) {
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

func (c *codec) bools(bs ...*bool) {
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

// ref visits a Ref, which must name a process of the Store.
func (c *codec) ref(r *Ref) {
	i := int64(*r)
	c.i64(&i)
	if c.decode {
		*r = 0
		if i < 0 || i > int64(len(c.s.procs)) {
			c.bad = true
		} else {
			*r = Ref(i)
		}
	}
}

func (c *codec) identity(id *Identity) {
	c.str(&id.Exe)
	c.strs(&id.Argv)
	c.str(&id.Cwd)
	c.str(&id.Comm)
}
