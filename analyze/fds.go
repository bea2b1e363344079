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
		if e := q.fds[fd]; e != nil {
			if e.t > cutoff || (e.cloexec && execed) {
				return nil
			}
			return e
		}
		if q.fdClosed[fd] || !q.forkSeen || q.finalized {
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
		if e.acc != nil && e.acc.owner == p && e.acc.close == 0 {
			b.closeAccess(e.acc, p.end)
		}
		return
	}
	if p.fds == nil {
		p.fds = map[int32]*fdEntry{}
	}
	p.fds[fd] = e
	delete(p.fdClosed, fd)
	if e.acc != nil && e.acc.owner == p {
		e.acc.refs++
	}
}

// closeFD closes fd in p at t; the access it referred to closes with its
// last fd in p.
func (b *builder) closeFD(p *proc, fd int32, t int64) {
	if p.finalized {
		return
	}
	if e := p.fds[fd]; e != nil {
		delete(p.fds, fd)
		if a := e.acc; a != nil && a.owner == p {
			a.refs--
			if a.refs <= 0 && a.close == 0 {
				b.closeAccess(a, t)
			}
		}
	}
	if p.forkSeen {
		// Hide an inherited entry of the same number.
		if p.fdClosed == nil {
			p.fdClosed = map[int32]bool{}
		}
		p.fdClosed[fd] = true
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
