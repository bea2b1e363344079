package procstore

// FD is one entry of a process's fd table: a path, or a socket.
type FD struct {
	Path string
	// File is the open file's access, nil when it is not tracked (a
	// directory opened for a dirfd is).
	File *OpenFile
	// Sock is set for a socket; its Path is empty.
	Sock    *Socket
	Cloexec bool
	// Memfd: the fd is a memfd_create's (its Path is empty).
	Memfd bool
	// Pipe: the fd is a pipe's end (its Path is empty).
	Pipe bool
	// Pidfd is the process a pidfd_open's fd refers to (its Path is
	// empty); zero for other fds.
	Pidfd Ref
	// Dev and Inode are a directory's, as audit printed them when it was
	// opened: a dirfd-relative call's PARENT record must show the same,
	// or the entry is stale. Empty for other files.
	Dev, Inode string
	// OtherRoot: the process moved its root or mount namespace
	// (pivot_root, setns) after the fd was opened, so Path names the
	// file as another view of the file systems did.
	OtherRoot bool
	Time      int64 // when the fd was set
}

// Socket is what the filter knows of a socket: its family and protocol
// from socket(), and the local address its bind gave (for listen's
// entry). Strings are as the analysis's network entries spell them.
type Socket struct {
	Family, Proto string
	// Bound is set once a bind succeeded: Addr and Port (inet, inet6,
	// netlink) or Path (unix) are its address.
	Bound      bool
	Addr, Path string
	Port       int
}

// OpenFile is a file access that is still open: its record in the spool,
// and how many fds of its owner refer to it. It closes with the last.
type OpenFile struct {
	Off, Close int64
	Owner      Ref // the process that opened it
	Refs       int
}

// FDTable is one process's fd table: the fds it set, and the fds it
// closed (which hide an entry of the same number it inherited). A table
// is kept for every process until it is finalized, and most processes
// touch a few low fds: those live in the table itself, the rest in maps.
// (Two maps per process were most of the memory of the processes that
// ended less than FinalizeAfter ago.) A nil *FDTable is empty.
type FDTable struct {
	inline    [fdInline]fdSlot
	more      map[int32]*FD
	closedLow uint64         // bit fd is set when fd < 64 is closed
	closedHi  map[int32]bool // closed fds from 64 up
}

type fdSlot struct {
	fd int32
	e  *FD // nil: the slot is free
}

// fdInline is how many fds a table holds without a map.
const fdInline = 4

// Get returns fd's entry, or nil.
func (t *FDTable) Get(fd int32) *FD {
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

// Set makes fd refer to e (not nil) and not closed.
func (t *FDTable) Set(fd int32, e *FD) {
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
			t.more = map[int32]*FD{}
		}
		t.more[fd] = e
		return
	}
	t.inline[free] = fdSlot{fd, e}
}

// Delete removes fd's entry and returns it, or nil.
func (t *FDTable) Delete(fd int32) *FD {
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

// All yields the table's entries: the inline ones in slot order, then the
// map's in no particular order (callers must not depend on it).
func (t *FDTable) All(yield func(int32, *FD) bool) {
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

// MarkClosed marks fd closed: an entry of the same number the process
// inherited is hidden.
func (t *FDTable) MarkClosed(fd int32) {
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
func (t *FDTable) reopen(fd int32) {
	if fd >= 0 && fd < 64 {
		t.closedLow &^= 1 << fd
		return
	}
	delete(t.closedHi, fd)
}

// Closed reports whether fd is marked closed.
func (t *FDTable) Closed(fd int32) bool {
	if t == nil {
		return false
	}
	if fd >= 0 && fd < 64 {
		return t.closedLow&(1<<fd) != 0
	}
	return t.closedHi[fd]
}
