package procstore

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"unsafe"

	"proctrail/analyze/internal/spool"
)

const (
	retireAfter   = 1000
	finalizeAfter = 10_000
)

// newStore returns a Store whose finalizations are listed in *finals,
// each with whether its fd table was still there.
func newStore(t *testing.T, finals *[]Ref) *Store {
	sp := spool.New(nil)
	t.Cleanup(sp.Close)
	return New(sp, Options{RetireAfter: retireAfter, FinalizeAfter: finalizeAfter, Finalize: func(p *Stub) {
		if finals != nil && p.FDs.Get(3) != nil {
			*finals = append(*finals, p.Ref())
		}
	}})
}

// where says where the Store holds process r: "memory" (State in
// memory), "retired" (stub in memory, State in the spool) or "frozen"
// (all in the spool).
func where(s *Store, r Ref) string {
	switch p := s.procs[r.Index()]; {
	case p == nil:
		return "frozen"
	case p.State == nil:
		return "retired"
	}
	return "memory"
}

// TestLifecycle follows a process through its tiers: in memory while
// alive and for RetireAfter after its end, then retired, then finalized
// and frozen; brought back by Get in later Updates, it is what it was,
// with the changes made to it, and it goes back at the end of each.
func TestLifecycle(t *testing.T) {
	var finals []Ref
	s := newStore(t, &finals)
	var r, other Ref
	s.Update(0, func() {
		p := s.Add()
		p.PID, p.Tasks = 7, []Task{{TID: 7, Start: 1}}
		p.Execs = []*Exec{{Time: 2, FromAudit: true, Audit: Identity{Exe: "/bin/true", Argv: []string{"true"}}}}
		p.FDs = &FDTable{}
		p.FDs.Set(3, &FD{Path: "/f"})
		r = p.Ref()
		other = s.Add().Ref()
	})
	s.Update(5, func() { s.End(s.Get(r), 5) })
	if got := where(s, r); got != "memory" {
		t.Fatalf("just ended: %s", got)
	}
	s.Update(5+retireAfter, func() {})
	if got := where(s, r); got != "retired" {
		t.Fatalf("ended RetireAfter ago: %s", got)
	}
	// A late record: the State comes back for the Update, with a change.
	s.Update(6+retireAfter, func() {
		p := s.Get(r)
		if p.Execs[0].Audit.Exe != "/bin/true" || p.FDs.Get(3) == nil {
			t.Errorf("retired process came back as %+v", p)
		}
		p.Cwd = "/late"
	})
	if got := where(s, r); got != "retired" {
		t.Fatalf("after a late record: %s", got)
	}
	if len(finals) != 0 {
		t.Fatalf("finalized too early: %v", finals)
	}
	s.Update(5+finalizeAfter, func() {})
	if got := where(s, r); got != "frozen" || !slices.Equal(finals, []Ref{r}) {
		t.Fatalf("ended FinalizeAfter ago: %s, finalized %v", got, finals)
	}
	s.Update(6+finalizeAfter, func() {
		if st := s.Stub(r); st.PID != 7 || !st.Finalized() || st.FDs != nil || st.End() != 5 {
			t.Errorf("thawed stub: %+v", st)
		}
		p := s.Get(r)
		if p.Cwd != "/late" || p.Execs[0].Audit.Argv[0] != "true" {
			t.Errorf("thawed process lost its state: %+v", p.State)
		}
	})
	if got := where(s, r); got != "frozen" {
		t.Fatalf("after a thaw: %s", got)
	}
	if states, stubs := s.Reloads(); states != 2 || stubs != 1 {
		t.Errorf("Reloads() = %d, %d; want 2, 1", states, stubs)
	}
	if got := where(s, other); got != "memory" {
		t.Errorf("a process alive: %s", got)
	}
	s.Seal()
	n := 0
	for p := range s.All() {
		n++
		if p.Ref() == r && p.Cwd != "/late" {
			t.Errorf("output phase: %+v", p.State)
		}
	}
	if n != 2 || where(s, r) != "frozen" {
		t.Errorf("All yielded %d, and left r %s", n, where(s, r))
	}
}

// TestRevive: a process whose end proved premature is not retired, and
// one that is finalized cannot be revived.
func TestRevive(t *testing.T) {
	s := newStore(t, nil)
	var r Ref
	s.Update(0, func() {
		p := s.Add()
		p.Tasks = []Task{{}}
		r = p.Ref()
		s.End(p, 1)
	})
	s.Update(2, func() {
		if !s.Revive(s.Get(r)) {
			t.Error("Revive refused")
		}
	})
	s.Update(2*finalizeAfter, func() {})
	if got := where(s, r); got != "memory" {
		t.Errorf("revived process: %s", got)
	}
	s.Update(2*finalizeAfter, func() { s.End(s.Get(r), 2*finalizeAfter) })
	s.Update(4*finalizeAfter, func() {})
	s.Update(4*finalizeAfter, func() {
		if s.Revive(s.Get(r)) {
			t.Error("a finalized process was revived")
		}
	})
}

// TestScope: processes are got only in an Update or a View, and each
// phase in its own.
func TestScope(t *testing.T) {
	s := newStore(t, nil)
	var r Ref
	s.Update(0, func() { r = s.Add().Ref() })
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	mustPanic("Get outside", func() { s.Get(r) })
	mustPanic("Stub outside", func() { s.Stub(r) })
	mustPanic("Add outside", func() { s.Add() })
	mustPanic("View before Seal", func() { s.View(func() {}) })
	mustPanic("All before Seal", func() {
		for range s.All() {
		}
	})
	s.scope = outside
	mustPanic("Update in Update", func() { s.Update(1, func() { s.Update(1, func() {}) }) })
	s.scope = outside
	s.Seal()
	mustPanic("Update after Seal", func() { s.Update(2, func() {}) })
	mustPanic("Add in View", func() { s.View(func() { s.Add() }) })
	s.scope = outside
	s.View(func() {
		if s.Get(r) == nil || s.Get(0) != nil {
			t.Error("Get in View")
		}
	})
}

// TestRetireUnchanged checks that a State brought back and retired again
// unchanged adds nothing to the spool, and a changed one does.
func TestRetireUnchanged(t *testing.T) {
	s := newStore(t, nil)
	var r Ref
	s.Update(0, func() {
		p := s.Add()
		p.Tasks = []Task{{}}
		p.Execs = append(p.Execs, &Exec{Time: 2, Audit: Identity{Exe: "/bin/x", Argv: []string{"x", ""}}, AuditArgv: true})
		s.End(p, 3)
		r = p.Ref()
	})
	s.Update(3+retireAfter, func() {})
	if where(s, r) != "retired" {
		t.Fatal("not retired")
	}
	size := s.spool.Size()
	for range 3 {
		s.Update(4+retireAfter, func() { s.Get(r) })
	}
	if where(s, r) != "retired" {
		t.Fatal("not retired again")
	}
	if grown := s.spool.Size() - size; grown != 0 {
		t.Errorf("unchanged state grew the spool by %d bytes", grown)
	}
	s.Update(4+retireAfter, func() { s.Get(r).Execs[0].Audit.Argv[1] = "y" })
	if s.spool.Size() == size {
		t.Error("a changed state was not written")
	}
	s.Update(4+retireAfter, func() {
		if got := s.Get(r).Execs[0].Audit.Argv; !slices.Equal(got, []string{"x", "y"}) {
			t.Errorf("argv = %q after coming back", got)
		}
	})
}

// TestInMemory: with InMemory nothing goes to the spool.
func TestInMemory(t *testing.T) {
	sp := spool.New(nil)
	defer sp.Close()
	s := New(sp, Options{RetireAfter: 1, FinalizeAfter: 2, InMemory: true})
	var r Ref
	s.Update(0, func() {
		p := s.Add()
		p.Tasks = []Task{{}}
		s.End(p, 1)
		r = p.Ref()
	})
	s.Update(100, func() {})
	s.Seal()
	if where(s, r) != "memory" || sp.Size() != 0 {
		t.Errorf("%s, spool %d bytes", where(s, r), sp.Size())
	}
}

// TestKeepStates: with KeepStates, the last processes whose RetireAfter
// passed keep their State in memory, the others are retired in the
// order they ended; Seal sends none of the kept to the spool, and a View
// gets them as they were. A process revived while kept stays in memory
// and is kept again at its next end.
func TestKeepStates(t *testing.T) {
	sp := spool.New(nil)
	defer sp.Close()
	const keep = 3
	s := New(sp, Options{RetireAfter: retireAfter, FinalizeAfter: finalizeAfter, KeepStates: keep})
	var refs []Ref
	for i := range 8 {
		s.Update(int64(i+1), func() {
			p := s.Add()
			p.PID, p.Tasks, p.Cwd = int32(100+i), []Task{{TID: int32(100 + i)}}, fmt.Sprint("/d", i)
			refs = append(refs, p.Ref())
			s.End(p, int64(i+1))
		})
	}
	s.Update(8+retireAfter, func() {})
	var got []string
	for _, r := range refs {
		got = append(got, where(s, r))
	}
	want := []string{"retired", "retired", "retired", "retired", "retired", "memory", "memory", "memory"}
	if !slices.Equal(got, want) {
		t.Fatalf("after RetireAfter: %q, want %q", got, want)
	}
	// Revived while kept: it stays, and counts again when it ends again.
	s.Update(9+retireAfter, func() {
		if !s.Revive(s.Get(refs[5])) {
			t.Fatal("Revive refused")
		}
	})
	s.Update(10+retireAfter, func() {
		p := s.Add()
		p.Tasks = []Task{{}}
		refs = append(refs, p.Ref())
		s.End(p, 10+retireAfter)
		s.End(s.Get(refs[5]), 10+retireAfter)
	})
	s.Update(10+2*retireAfter, func() {})
	for i, w := range map[int]string{5: "memory", 6: "retired", 7: "memory", 8: "memory"} {
		if got := where(s, refs[i]); got != w {
			t.Errorf("process %d after a revival: %s, want %s", i, got, w)
		}
	}
	s.Seal()
	for _, i := range []int{5, 7, 8} {
		if got := where(s, refs[i]); got != "memory" {
			t.Errorf("process %d after Seal: %s, want memory", i, got)
		}
	}
	s.View(func() {
		for i, r := range refs[:8] {
			if p := s.Get(r); p.Cwd != fmt.Sprint("/d", i) {
				t.Errorf("process %d: cwd %q", i, p.Cwd)
			}
		}
	})
}

// TestProcSize guards the size of what the Store keeps for every
// process alive or ended in the last FinalizeAfter: a field that pushes
// a Proc into the next size class costs 16 bytes a process.
func TestProcSize(t *testing.T) {
	if n := unsafe.Sizeof(Proc{}); n > 96 {
		t.Errorf("Proc is %d bytes, more than 96", n)
	}
	if n := unsafe.Sizeof(Task{}); n > 24 {
		t.Errorf("Task is %d bytes, more than 24", n)
	}
}

// fill sets every field of the struct v points to a value that is not
// zero and differs between fields, recursively; Refs are to.
func fill(t *testing.T, v reflect.Value, to Ref, n *int, skip ...string) {
	t.Helper()
	for i := range v.NumField() {
		if slices.Contains(skip, v.Type().Field(i).Name) {
			continue
		}
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem() // unexported fields too
		*n++
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(*n) * 1001)
		case reflect.Int32:
			if f.Type() == reflect.TypeFor[Ref]() {
				f.SetInt(int64(to))
			} else {
				f.SetInt(int64(*n) * 1001)
			}
		case reflect.Uint64:
			f.SetUint(uint64(*n) * 1003)
		case reflect.String:
			f.SetString(fmt.Sprint("s", *n))
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), 2, 2)
			for j := range 2 {
				e := s.Index(j)
				switch e.Kind() {
				case reflect.String:
					e.SetString(fmt.Sprint("e", *n, j))
				case reflect.Struct:
					fill(t, e, to, n)
				case reflect.Pointer:
					e.Set(reflect.New(e.Type().Elem()))
					fill(t, e.Elem(), to, n)
				default:
					t.Fatalf("cannot fill %s", f.Type())
				}
			}
			f.Set(s)
		case reflect.Struct:
			fill(t, f, to, n)
		default:
			t.Fatalf("field %s of %s: cannot fill a %s", v.Type().Field(i).Name, v.Type(), f.Kind())
		}
	}
}

// TestStateCodec checks that the spool keeps every field of a State: a
// field added to State and not to the codec fails it.
func TestStateCodec(t *testing.T) {
	s := newStore(t, nil)
	var other Ref
	s.Update(0, func() { other = s.Add().Ref() })
	var st State
	n := 0
	fill(t, reflect.ValueOf(&st).Elem(), other, &n)
	data := s.appendState(nil, &st)
	got := s.decodeState(s.spool.Append(data))
	if got == nil {
		t.Fatalf("decode failed: %v", s.spool.Err())
	}
	if !reflect.DeepEqual(*got, st) {
		t.Fatalf("state changed in the spool:\n got %+v\nwant %+v", *got, st)
	}
	// A nil argv and an empty one differ; both come back as they were.
	st = State{ProcfsIdentity: Identity{Argv: []string{}}}
	if got := s.decodeState(s.spool.Append(s.appendState(nil, &st))); got == nil || got.ProcfsIdentity.Argv == nil || got.Execs != nil {
		t.Fatalf("empty vs nil slices: %+v", got)
	}
	// A damaged record is an error, not a panic.
	for cut := range len(data) {
		if s.decodeState(s.spool.Append(data[:cut])) != nil {
			t.Fatalf("a record cut at %d of %d decoded", cut, len(data))
		}
	}
	// So is a Ref to no process.
	st = State{KernelParent: 99}
	if s.decodeState(s.spool.Append(s.appendState(nil, &st))) != nil {
		t.Fatal("a Ref to no process decoded")
	}
}

// TestStubCodec checks that a frozen stub keeps every field of a Stub
// but those freeze leaves out on purpose (its Ref, its fd table, and
// kept: a kept process has its State in memory, so is never frozen): a
// field added to Stub and not to the codec fails it.
func TestStubCodec(t *testing.T) {
	s := newStore(t, nil)
	var other, r Ref
	s.Update(0, func() {
		other = s.Add().Ref()
		r = s.Add().Ref()
	})
	want := Stub{ref: r}
	n := 0
	fill(t, reflect.ValueOf(&want).Elem(), other, &n, "ref", "FDs", "kept")
	data := s.appendStub(nil, &want)
	s.procs[r.Index()] = nil // no stub in memory, as when frozen
	s.frozen[r.Index()] = s.spool.Append(data) + 1
	s.Update(1, func() {
		got := s.Stub(r)
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("stub changed in the spool:\n got %+v\nwant %+v", *got, want)
		}
		if s.Stub(r) != got || len(s.thawed) != 1 {
			t.Fatal("a stub thawed twice")
		}
	})
	// A damaged record is an error, not a panic: a stub with no State.
	for cut := range len(data) {
		s.procs[r.Index()], s.thawed = nil, nil
		s.frozen[r.Index()] = s.spool.Append(data[:cut]) + 1
		s.Update(1, func() {
			if got := s.Stub(r); got.PID != 0 || got.stateOff != 0 || len(got.Tasks) != 1 || !got.Finalized() {
				t.Fatalf("a record cut at %d of %d decoded: %+v", cut, len(data), got)
			}
		})
	}
}

// TestTouched: with Track, Touched lists the processes an Update got or
// added, once each; the Seal's and a View's do not count.
func TestTouched(t *testing.T) {
	sp := spool.New(nil)
	defer sp.Close()
	s := New(sp, Options{RetireAfter: 1, FinalizeAfter: 2, Track: true})
	var a, b Ref
	s.Update(0, func() {
		a = s.Add().Ref()
		b = s.Add().Ref()
		s.Get(a)
	})
	if got := s.Touched(); !slices.Equal(got, []Ref{a, b}) {
		t.Errorf("after adding: %v", got)
	}
	s.Update(1, func() {
		s.Stub(b)
		s.Get(b)
		s.Get(0)
	})
	if got := s.Touched(); !slices.Equal(got, []Ref{b}) {
		t.Errorf("after getting b: %v", got)
	}
	s.Update(2, func() {})
	if got := s.Touched(); len(got) != 0 {
		t.Errorf("an Update that got nothing: %v", got)
	}
}
