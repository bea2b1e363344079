package procstore

import (
	"bytes"
	"iter"
	"math"

	"proctrail/analyze/internal/spool"
)

// Options configure a Store.
type Options struct {
	// RetireAfter is how long, in capture time, a process's State stays
	// in memory after its end before it goes to the spool.
	RetireAfter int64
	// FinalizeAfter is how long, in capture time, after its end a
	// process is finalized: Finalize is called, its fd table dropped, and
	// then it goes to the spool whole.
	FinalizeAfter int64
	// Finalize is called when a process is finalized, before its fd
	// table is dropped: the filter closes what it left open. It must not
	// get other processes.
	Finalize func(p *Stub)
	// InMemory keeps every process in memory: tests compare the two ways.
	InMemory bool
	// KeepStates is how many of the processes that ended RetireAfter ago
	// keep their State in memory all the same, the last ones to end, and
	// Seal sends none of them to the spool: an analysis of fewer
	// processes never brings a State back from it, and its output phase
	// decodes none (there it decoded each State twice, a fifth of the
	// phase). Memory grows by at most KeepStates States; the output is
	// the same.
	KeepStates int
	// Track has each Update note the processes it got or added: see
	// [Store.Touched].
	Track bool
}

// Store holds the processes of one analysis. It is used in two phases:
// the replay, in which each event runs in an [Store.Update], and, after
// [Store.Seal], the output, which reads in [Store.View]s. Processes are
// got by Ref; a *Proc or *Stub is valid until the end of the Update or
// View it was got in, and getting one outside of them panics (it is a
// mistake of the program, never of its input). A Store is not safe for
// concurrent use.
type Store struct {
	procs  []*Proc // by index; nil while frozen
	frozen []int64 // by index: the offset+1 of a frozen stub's record
	spool  *spool.Spool
	opts   Options
	// The processes that ended, in the order they ended, until
	// RetireAfter and FinalizeAfter have passed.
	retireQ, finalizeQ queue
	// kept are the processes RetireAfter passed for whose State stayed
	// (Options.KeepStates), in the order they came, from keptHead on,
	// each with its end then: a process revived since has an entry of an
	// end that is no longer its own, which is skipped.
	kept     []keptProc
	keptHead int
	// back are the processes whose State came back from the spool in
	// the current Update or View; thawed those whose stub did, or that
	// were finalized.
	back, thawed []*Proc
	scope        int
	sealed       bool
	touched      []Ref  // with Track: the processes the last Update got or added
	buf          []byte // encoding's
	reloads      int    // States brought back during the replay
	thaws        int    // stubs brought back during the replay
}

// The scopes processes are got in.
const (
	outside = iota
	inUpdate
	inView
)

// New returns an empty Store that keeps what it sends away in sp.
func New(sp *spool.Spool, opts Options) *Store {
	return &Store{spool: sp, opts: opts}
}

// Len is how many processes the Store holds.
func (s *Store) Len() int { return len(s.procs) }

// Update runs f, the application of one event of the replay at capture
// time now: f may Add, Get and change processes. After f, the processes
// that ended RetireAfter or FinalizeAfter before now move on, and those f
// brought back from the spool go back, with their changes.
func (s *Store) Update(now int64, f func()) {
	if s.sealed {
		panic("procstore: Update after Seal")
	}
	s.enter(inUpdate)
	s.touched = s.touched[:0]
	f()
	s.expire(now)
	s.settle()
	s.scope = outside
}

// Touched returns, with Options.Track, the processes the last Update's f
// got or added, each once, in the order it first did; the slice is
// overwritten by the next Update.
func (s *Store) Touched() []Ref { return s.touched }

// touch notes that the current Update got or added r.
func (s *Store) touch(r Ref) {
	if !s.opts.Track || s.scope != inUpdate {
		return
	}
	for _, t := range s.touched {
		if t == r {
			return
		}
	}
	s.touched = append(s.touched, r)
}

// Seal ends the replay: every process that ended is finalized, and its
// State goes to the spool. From then on processes are only read, in
// View.
func (s *Store) Seal() {
	s.enter(inUpdate)
	s.expire(math.MaxInt64)
	s.settle()
	for _, p := range s.procs {
		if p != nil && !p.kept {
			s.retire(p)
		}
	}
	s.retireQ, s.finalizeQ, s.kept, s.keptHead = queue{}, queue{}, nil, 0
	s.scope, s.sealed = outside, true
}

// View runs f, which may Get processes and read them, after Seal.
func (s *Store) View(f func()) {
	if !s.sealed {
		panic("procstore: View before Seal")
	}
	s.enter(inView)
	f()
	s.leave()
}

// All yields every process, in the order they were added, after Seal.
// Each is valid, as are the processes the loop's body gets, until the
// next.
func (s *Store) All() iter.Seq[*Proc] {
	return func(yield func(*Proc) bool) {
		if !s.sealed {
			panic("procstore: All before Seal")
		}
		for i := range s.procs {
			s.enter(inView)
			more := yield(s.Get(RefOf(i)))
			s.leave()
			if !more {
				return
			}
		}
	}
}

func (s *Store) enter(scope int) {
	if s.scope != outside {
		panic("procstore: Update or View within another")
	}
	s.scope = scope
}

// leave ends a View: the States and stubs that came back go again, as
// they were (the output phase changes none).
func (s *Store) leave() {
	for _, p := range s.back {
		p.State = nil
	}
	clear(s.back)
	s.back = s.back[:0]
	for _, p := range s.thawed {
		if i := p.ref.Index(); s.procs[i] == p && s.frozen[i] != 0 {
			s.procs[i] = nil
		}
	}
	clear(s.thawed)
	s.thawed = s.thawed[:0]
	s.scope = outside
}

// Add adds a new process, with an empty State, in an Update.
func (s *Store) Add() *Proc {
	if s.scope != inUpdate {
		panic("procstore: Add outside Update")
	}
	p := &Proc{State: &State{}}
	p.ref = RefOf(len(s.procs))
	s.procs = append(s.procs, p)
	s.frozen = append(s.frozen, 0)
	s.touch(p.ref)
	return p
}

// Get returns the process r names, State and all; nil for None.
func (s *Store) Get(r Ref) *Proc {
	p := s.stub(r)
	if p != nil && p.State == nil {
		s.load(p)
	}
	return p
}

// Stub returns the Stub of the process r names, without bringing its
// State back from the spool; nil for None.
func (s *Store) Stub(r Ref) *Stub {
	if p := s.stub(r); p != nil {
		return &p.Stub
	}
	return nil
}

// stub returns the process r names, its stub in memory.
func (s *Store) stub(r Ref) *Proc {
	if s.scope == outside {
		panic("procstore: a process got outside Update or View")
	}
	if r.None() {
		return nil
	}
	s.touch(r)
	if p := s.procs[r.Index()]; p != nil {
		return p
	}
	return s.thaw(r.Index())
}

// End ends p at t; see [Stub.End].
func (s *Store) End(p *Proc, t int64) {
	p.end = t
	if !p.finalizeQueued {
		p.finalizeQueued = true
		s.finalizeQ.q = append(s.finalizeQ.q, p)
	}
	if !p.retireQueued {
		p.retireQueued = true
		s.retireQ.q = append(s.retireQ.q, p)
	}
}

// Revive undoes the end of p, which proved premature (a task of it acted
// later), unless p is finalized already; it reports whether it did.
func (s *Store) Revive(p *Proc) bool {
	if p.finalized {
		return false
	}
	p.end = 0
	return true
}

// Reloads counts the States and stubs brought back from the spool during
// the replay.
func (s *Store) Reloads() (states, stubs int) { return s.reloads, s.thaws }

// expire retires the processes that ended more than RetireAfter before
// now and finalizes those that ended more than FinalizeAfter before.
func (s *Store) expire(now int64) {
	s.retireQ.expire(now, s.opts.RetireAfter, func(p *Proc) {
		p.retireQueued = false
		s.keepOrRetire(p)
	})
	s.finalizeQ.expire(now, s.opts.FinalizeAfter, func(p *Proc) {
		p.finalizeQueued = false
		if p.end != 0 {
			s.finalize(p)
		}
	})
}

// finalize has the filter close what p left open, and frees its fd table.
func (s *Store) finalize(p *Proc) {
	if s.opts.Finalize != nil {
		s.opts.Finalize(&p.Stub)
	}
	p.FDs = nil
	p.finalized = true
	s.thawed = append(s.thawed, p) // see settle
}

// settle ends an Update: the States that came back go to the spool again
// with what changed in them, then the stubs that came back or were
// finalized, when they may (see freezable).
func (s *Store) settle() {
	for _, p := range s.back {
		if p.State != nil {
			s.retire(p)
		}
	}
	clear(s.back)
	s.back = s.back[:0]
	for _, p := range s.thawed {
		if s.procs[p.ref.Index()] == p && s.freezable(p) {
			s.freeze(p)
		}
	}
	clear(s.thawed)
	s.thawed = s.thawed[:0]
}

// Retiring. A capture of a busy host describes far more processes than
// are alive at any time; the output needs them all, but a process that
// ended RetireAfter ago is all but final: only a late record still
// changes it. Such a process is retired: its State goes to the spool and
// its stub stays (the tree, the chain of its files, what finalize needs:
// end, tasks, fd table). Once finalized the stub follows (freeze), and 8
// bytes stay: memory follows the processes alive or ended in the last
// FinalizeAfter, not the processes seen. A late record brings a process
// back (Get) for the rest of its Update; the output is the same either
// way.

// keepOrRetire retires p, or keeps its State and retires the process
// kept longest when more than KeepStates are.
func (s *Store) keepOrRetire(p *Proc) {
	if s.opts.KeepStates <= 0 || p.State == nil || p.end == 0 {
		s.retire(p)
		return
	}
	p.kept = true
	s.kept = append(s.kept, keptProc{p, p.end})
	for len(s.kept)-s.keptHead > s.opts.KeepStates {
		k := s.kept[s.keptHead]
		s.kept[s.keptHead] = keptProc{}
		s.keptHead++
		if k.p.end == k.end {
			k.p.kept = false
			s.retire(k.p)
		}
	}
	if s.keptHead > 64 && s.keptHead*2 > len(s.kept) {
		n := copy(s.kept, s.kept[s.keptHead:])
		clear(s.kept[n:])
		s.kept, s.keptHead = s.kept[:n], 0
	}
}

// keptProc is an entry of Store.kept.
type keptProc struct {
	p   *Proc
	end int64
}

// retire sends p's State to the spool.
func (s *Store) retire(p *Proc) {
	if s.opts.InMemory || p.State == nil || p.end == 0 {
		return
	}
	s.buf = s.appendState(s.buf[:0], p.State)
	p.stateOff = s.keep(p.stateOff, s.buf)
	p.State = nil
}

// load brings p's State back from the spool. A spool that fails (its
// error is the analysis's) gives an empty State, never a nil one.
func (s *Store) load(p *Proc) {
	st := s.decodeState(p.stateOff - 1)
	if st == nil {
		st = &State{}
	}
	p.State = st
	s.back = append(s.back, p)
	if !s.sealed {
		s.reloads++
	}
}

// keep returns the offset+1 of rec in the spool: old, when the record at
// old-1 is rec already (a State or stub that came back unchanged keeps
// its record, so the spool grows only with changes), else a new record's.
func (s *Store) keep(old int64, rec []byte) int64 {
	if old != 0 && bytes.Equal(s.spool.Record(old-1), rec) {
		return old
	}
	return s.spool.Append(rec) + 1
}

// freezable reports whether p may be frozen: finalized, retired, and in
// no queue (the queues hold pointers to stubs).
func (s *Store) freezable(p *Proc) bool {
	return !s.opts.InMemory && p.finalized && p.State == nil && p.stateOff != 0 && !p.finalizeQueued && !p.retireQueued
}

// freeze sends p's stub to the spool.
func (s *Store) freeze(p *Proc) {
	s.buf = s.appendStub(s.buf[:0], &p.Stub)
	i := p.ref.Index()
	s.frozen[i] = s.keep(s.frozen[i], s.buf)
	s.procs[i] = nil
}

// thaw brings the stub of the process of index i back from the spool. A
// spool that fails (its error is the analysis's) gives a finalized stub
// with no State, parent or files, and one task, as every stub has.
func (s *Store) thaw(i int) *Proc {
	p := &Proc{}
	if !s.decodeStub(s.frozen[i]-1, &p.Stub) {
		p.Stub = Stub{finalized: true, Tasks: []Task{{}}}
	}
	p.ref = RefOf(i)
	s.procs[i] = p
	s.thawed = append(s.thawed, p)
	if !s.sealed {
		s.thaws++
	}
	return p
}

// queue holds processes in the order they ended, until a time after
// their end.
type queue struct {
	q    []*Proc
	head int
}

// expire takes out, oldest first, the processes that ended at least wait
// before now (all at the end of time) or are no longer ended, and calls f
// on each.
func (q *queue) expire(now, wait int64, f func(*Proc)) {
	for q.head < len(q.q) {
		p := q.q[q.head]
		if p.end != 0 && now-p.end < wait && now != math.MaxInt64 {
			break
		}
		q.q[q.head] = nil
		q.head++
		f(p)
	}
	if q.head > 64 && q.head*2 > len(q.q) {
		n := copy(q.q, q.q[q.head:])
		clear(q.q[n:])
		q.q, q.head = q.q[:n], 0
	}
}
