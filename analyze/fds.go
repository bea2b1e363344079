package analyze

import (
	"slices"

	"proctrail/analyze/internal/procstore"
)

// The fd table of a process holds the fds it opened or changed since its
// creation was seen; an fd it inherited is looked up in its parent's table
// as it stood at the fork (entries set before the child started), unless
// the child closed or replaced it, or exec'd and the entry was
// close-on-exec. Only fds from audited syscalls are known: paths (a
// directory's with its inode, see resolve), sockets (their family,
// protocol and bound address; see net.go), pipes, memfds and pidfds, and
// their copies (dup, fcntl's F_DUPFD, pidfd_getfd). An fd replaced out of
// view becomes unknown rather than keep a stale path, and a dirfd whose
// entry disagrees with the PARENT record of the call that used it is
// not believed.

// lookupFD returns the entry of fd in p when it names a path (or is a
// memfd, whose Path is empty), or nil when unknown, a socket, a pipe or
// a pidfd.
func (b *builder) lookupFD(p *proc, fd int32) *procstore.FD {
	if e := b.lookupEntry(p, fd); e != nil && e.Sock == nil && !e.Pipe && e.Pidfd.None() {
		return e
	}
	return nil
}

// lookupEntry returns the entry of fd in p, a path or a socket, or nil
// when unknown.
func (b *builder) lookupEntry(p *proc, fd int32) *procstore.FD {
	if fd < 0 {
		return nil
	}
	q := p
	cutoff := int64(1<<63 - 1)
	execed := false
	for depth := 0; q != nil && depth < maxFDDepth; depth++ {
		if e := q.FDs.Get(fd); e != nil {
			if e.Time > cutoff || (e.Cloexec && execed) {
				return nil
			}
			return e
		}
		if q.FDs.Closed(fd) || !q.ForkSeen || q.Finalized() {
			return nil
		}
		cutoff = min(cutoff, q.Start)
		execed = execed || q.ExecedInAudit
		q = b.procs.Get(q.Parent)
	}
	return nil
}

// setFD makes fd refer to e, closing what it referred to before.
func (b *builder) setFD(p *proc, fd int32, e *procstore.FD, t int64) {
	b.closeFD(p, fd, t)
	if p.Finalized() {
		// A late event of an exited process: the access ended with it.
		if f := e.File; f != nil && f.Owner == p.Ref() && f.Close == 0 {
			b.closeFile(f, p.End())
		}
		return
	}
	if p.FDs == nil {
		p.FDs = &procstore.FDTable{}
	}
	p.FDs.Set(fd, e)
	if f := e.File; f != nil && f.Owner == p.Ref() {
		f.Refs++
	}
}

// closeFD closes fd in p at t; the access it referred to closes with its
// last fd in p.
func (b *builder) closeFD(p *proc, fd int32, t int64) {
	if p.Finalized() {
		return
	}
	if e := p.FDs.Delete(fd); e != nil {
		if f := e.File; f != nil && f.Owner == p.Ref() {
			f.Refs--
			if f.Refs <= 0 && f.Close == 0 {
				b.closeFile(f, t)
			}
		}
	}
	if p.ForkSeen {
		// Hide an inherited entry of the same number.
		if p.FDs == nil {
			p.FDs = &procstore.FDTable{}
		}
		p.FDs.MarkClosed(fd)
	}
}

// dupFD makes newfd a copy of oldfd (dup, dup2, dup3).
func (b *builder) dupFD(p *proc, oldfd, newfd int32, cloexec bool, t int64) {
	old := b.lookupEntry(p, oldfd)
	if old == nil {
		b.closeFD(p, newfd, t)
		return
	}
	e := *old
	e.Cloexec, e.Time = cloexec, t
	b.setFD(p, newfd, &e, t)
}

// pidfdGetFD makes newfd of p a copy of fd targetfd of the process that
// pidfd refers to (pidfd_getfd: close-on-exec).
func (b *builder) pidfdGetFD(p *proc, pidfd, targetfd, newfd int32, t int64) {
	var old *procstore.FD
	if e := b.lookupEntry(p, pidfd); e != nil && !e.Pidfd.None() {
		if q := b.procs.Get(e.Pidfd); q != nil {
			old = b.lookupEntry(q, targetfd)
		}
	}
	if old == nil {
		b.closeFD(p, newfd, t)
		return
	}
	e := *old
	e.Cloexec, e.Time = true, t
	b.setFD(p, newfd, &e, t)
}

// auditNewFDs applies a successful call that makes fds that name no path:
// pipe and pipe2, socketpair (their FD_PAIR record), pidfd_open, and
// pidfd_getfd's copy of another process's fd.
func (b *builder) auditNewFDs(p *proc, c *call) {
	switch c.sc {
	case "pipe", "pipe2", "socketpair":
		if !c.hasFDPair {
			return
		}
		for _, fd := range c.fdPair {
			e := &procstore.FD{Pipe: true, Time: c.t}
			if c.sc == "pipe2" {
				e.Cloexec = c.a[1]&oCloexec != 0
			}
			if c.sc == "socketpair" {
				e = &procstore.FD{Sock: &procstore.Socket{Family: familyName(c.a[0]), Proto: protoName(c.a[0], c.a[1], c.a[2])},
					Cloexec: c.a[1]&sockCloexec != 0, Time: c.t}
			}
			b.setFD(p, fd, e, c.t)
		}
	case "pidfd_open":
		if !c.exitNum || c.exit < 0 {
			return
		}
		fd := int32(c.exit)
		target := b.current(int32(c.a[0]))
		if target == nil || int32(c.a[0]) <= 0 {
			b.closeFD(p, fd, c.t)
			return
		}
		b.setFD(p, fd, &procstore.FD{Pidfd: target.Ref(), Cloexec: true, Time: c.t}, c.t)
	case "pidfd_getfd":
		if c.exitNum && c.exit >= 0 {
			b.pidfdGetFD(p, fdArg(c.a[0]), fdArg(c.a[1]), int32(c.exit), c.t)
		}
	}
}

// rootMoved marks every fd p has (its own and those it inherited, copied
// into its table) as named from another root: p has just moved its root
// or mount namespace, and the paths were resolved before.
func (b *builder) rootMoved(p *proc) {
	if p.Finalized() {
		return
	}
	for _, fd := range b.visibleFDs(p, 0, 1<<31-1) {
		if e := b.ownEntry(p, fd); e != nil {
			e.OtherRoot = true
		}
	}
}

// ownEntry returns p's own entry of fd to change: an inherited one is
// copied into p's table first (its access stays the parent's, whose
// count does not change). nil when fd is unknown.
func (b *builder) ownEntry(p *proc, fd int32) *procstore.FD {
	if e := p.FDs.Get(fd); e != nil {
		return e
	}
	e := b.lookupEntry(p, fd)
	if e == nil {
		return nil
	}
	c := *e
	if p.FDs == nil {
		p.FDs = &procstore.FDTable{}
	}
	p.FDs.Set(fd, &c)
	return &c
}

// visibleFDs returns the fds from first to last that p's table or the
// tables it inherits from hold, sorted (at most maxCloseRange).
func (b *builder) visibleFDs(p *proc, first, last uint64) []int32 {
	var fds []int32
	seen := map[int32]bool{}
	q := p
	for depth := 0; q != nil && depth < maxFDDepth && len(fds) < maxCloseRange; depth++ {
		for fd := range q.FDs.All {
			if uint64(fd) >= first && uint64(fd) <= last && !seen[fd] {
				seen[fd] = true
				fds = append(fds, fd)
			}
		}
		if !q.ForkSeen || q.Finalized() {
			break
		}
		q = b.procs.Get(q.Parent)
	}
	slices.Sort(fds)
	return fds
}

// fcntl's duplications, and close_range's flag that marks instead of
// closing.
const (
	fDupFD            = 0
	fDupFDCloexec     = 1030
	closeRangeCloexec = 4
)

// maxCloseRange bounds the fds a close_range visits in the tables.
const maxCloseRange = 1 << 16

// closeRange closes, or with cloexec marks close-on-exec, p's fds from
// first to last (close_range): those of its table and those it inherited.
func (b *builder) closeRange(p *proc, first, last uint64, cloexec bool, t int64) {
	if first > last || first > 1<<31-1 {
		return
	}
	last = min(last, 1<<31-1)
	for _, fd := range b.visibleFDs(p, first, last) {
		if !cloexec {
			b.closeFD(p, fd, t)
		} else if e := b.ownEntry(p, fd); e != nil {
			e.Cloexec = true
		}
	}
}
