package analyze

// The fd table of a process holds the fds it opened or changed since its
// creation was seen; an fd it inherited is looked up in its parent's table
// as it stood at the fork (entries set before the child started), unless
// the child closed or replaced it, or exec'd and the entry was
// close-on-exec. Only fds from audited syscalls are known: pipes, sockets
// and F_DUPFD copies are not, and an fd replaced by one of those (dup2 of
// a pipe onto stdout) becomes unknown rather than keep a stale path.

// lookupFD returns the entry of fd in p, or nil when unknown.
func (b *builder) lookupFD(p *proc, fd int32) *fdEntry {
	if fd < 0 {
		return nil
	}
	q := p
	cutoff := int64(1<<63 - 1)
	execed := false
	for depth := 0; q != nil && depth < maxFDDepth; depth++ {
		if e := q.fds.get(fd); e != nil {
			if e.t > cutoff || (e.cloexec && execed) {
				return nil
			}
			return e
		}
		if q.fds.closed(fd) || !q.forkSeen || q.finalized {
			return nil
		}
		cutoff = min(cutoff, q.start)
		execed = execed || q.auditExeced
		q = b.get(q.parent)
	}
	return nil
}

// setFD makes fd refer to e, closing what it referred to before.
func (b *builder) setFD(p *proc, fd int32, e *fdEntry, t int64) {
	b.closeFD(p, fd, t)
	if p.finalized {
		// A late event of an exited process: the access ended with it.
		if e.acc != nil && e.acc.owner == p.seq && e.acc.close == 0 {
			b.closeAccess(e.acc, p.end)
		}
		return
	}
	if p.fds == nil {
		p.fds = &fdTable{}
	}
	p.fds.set(fd, e)
	if e.acc != nil && e.acc.owner == p.seq {
		e.acc.refs++
	}
}

// closeFD closes fd in p at t; the access it referred to closes with its
// last fd in p.
func (b *builder) closeFD(p *proc, fd int32, t int64) {
	if p.finalized {
		return
	}
	if e := p.fds.del(fd); e != nil {
		if a := e.acc; a != nil && a.owner == p.seq {
			a.refs--
			if a.refs <= 0 && a.close == 0 {
				b.closeAccess(a, t)
			}
		}
	}
	if p.forkSeen {
		// Hide an inherited entry of the same number.
		if p.fds == nil {
			p.fds = &fdTable{}
		}
		p.fds.close(fd)
	}
}

// dupFD makes newfd a copy of oldfd (dup, dup2, dup3).
func (b *builder) dupFD(p *proc, oldfd, newfd int32, cloexec bool, t int64) {
	old := b.lookupFD(p, oldfd)
	if old == nil {
		b.closeFD(p, newfd, t)
		return
	}
	b.setFD(p, newfd, &fdEntry{path: old.path, acc: old.acc, cloexec: cloexec, t: t}, t)
}

// fdTable is one process's fd table: the fds it set, and the fds it closed
// (which hide an inherited entry of the same number). A table is kept for
// every process until finalizeGrace after its end, and most processes
// touch a few low fds: those live in the table itself, the rest in maps.
// Two maps per process were most of the memory of the processes that
// ended less than finalizeGrace ago.
type fdTable struct {
	inline    [fdInline]fdSlot
	more      map[int32]*fdEntry
	closedLow uint64         // bit fd is set when fd < 64 is closed
	closedHi  map[int32]bool // closed fds from 64 up
}

type fdSlot struct {
	fd int32
	e  *fdEntry // nil: the slot is free
}

// fdInline is how many fds a table holds without a map.
const fdInline = 4

// get returns fd's entry, or nil. A nil table is empty.
func (t *fdTable) get(fd int32) *fdEntry {
	if t == nil {
		return nil
	}
	for i := range t.inline {
		if s := &t.inline[i]; s.e != nil && s.fd == fd {
			return s.e
		}
	}
	return t.more[fd]
}

// set makes fd refer to e (not nil) and not closed.
func (t *fdTable) set(fd int32, e *fdEntry) {
	t.reopen(fd)
	free := -1
	for i := range t.inline {
		s := &t.inline[i]
		if s.e != nil && s.fd == fd {
			s.e = e
			return
		}
		if s.e == nil && free < 0 {
			free = i
		}
	}
	if _, ok := t.more[fd]; ok || free < 0 {
		if t.more == nil {
			t.more = map[int32]*fdEntry{}
		}
		t.more[fd] = e
		return
	}
	t.inline[free] = fdSlot{fd, e}
}

// del removes fd's entry and returns it, or nil.
func (t *fdTable) del(fd int32) *fdEntry {
	if t == nil {
		return nil
	}
	for i := range t.inline {
		if s := &t.inline[i]; s.e != nil && s.fd == fd {
			e := s.e
			*s = fdSlot{}
			return e
		}
	}
	if e, ok := t.more[fd]; ok {
		delete(t.more, fd)
		return e
	}
	return nil
}

// all yields the table's entries: the inline ones in slot order, then the
// map's in no particular order (callers must not depend on it).
func (t *fdTable) all(yield func(int32, *fdEntry) bool) {
	if t == nil {
		return
	}
	for _, s := range t.inline {
		if s.e != nil && !yield(s.fd, s.e) {
			return
		}
	}
	for fd, e := range t.more {
		if !yield(fd, e) {
			return
		}
	}
}

// close marks fd closed.
func (t *fdTable) close(fd int32) {
	if fd >= 0 && fd < 64 {
		t.closedLow |= 1 << fd
		return
	}
	if t.closedHi == nil {
		t.closedHi = map[int32]bool{}
	}
	t.closedHi[fd] = true
}

// reopen clears fd's closed mark.
func (t *fdTable) reopen(fd int32) {
	if fd >= 0 && fd < 64 {
		t.closedLow &^= 1 << fd
		return
	}
	delete(t.closedHi, fd)
}

// closed reports whether fd is marked closed.
func (t *fdTable) closed(fd int32) bool {
	if t == nil {
		return false
	}
	if fd >= 0 && fd < 64 {
		return t.closedLow&(1<<fd) != 0
	}
	return t.closedHi[fd]
}
