package record

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvBatch receives netlink datagrams with one recvmmsg(2) per burst, and
// hands them out one by one. The kernel sends an audit event's records
// together, and on a VM a system call's entry and exit (with the audit
// context's reset at exit, which the audit daemon's threads pay too) cost
// about what receiving one datagram does. Whole recordings of the bench
// workload: one recvmmsg of up to 16 audit records instead of a recvfrom
// each took the recorder's CPU from 1.63 to 1.40 s (notes.md). The
// connector's few datagrams are still received one by one: batching them
// saved nothing measurable.
type recvBatch struct {
	slot int    // the bytes each datagram is received into
	buf  []byte // len(hdrs) slots
	iov  []unix.Iovec
	hdrs []mmsghdr
	from []unix.RawSockaddrNetlink
	n    int // datagrams received
	next int // the next one to hand out
}

// mmsghdr is struct mmsghdr, which x/sys/unix does not define.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// newRecvBatch returns a batch of slots datagrams of up to slot bytes each.
func newRecvBatch(slots, slot int) recvBatch {
	b := recvBatch{
		slot: slot,
		buf:  make([]byte, slots*slot),
		iov:  make([]unix.Iovec, slots),
		hdrs: make([]mmsghdr, slots),
		from: make([]unix.RawSockaddrNetlink, slots),
	}
	for i := range b.hdrs {
		b.iov[i].Base = &b.buf[i*slot]
		b.iov[i].SetLen(slot)
		b.hdrs[i].hdr.Iov = &b.iov[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.from[i]))
	}
	return b
}

// recv receives the datagrams queued on the socket fd, up to the batch's
// slots, replacing what the batch held, and returns recvmmsg's errno
// (EAGAIN when none is queued). MSG_TRUNC makes each datagram's length
// its real one, past its slot if it was cut.
//
// It never waits (MSG_DONTWAIT), so it is a raw system call, as
// recvDontWait is and for the same reason.
func (b *recvBatch) recv(fd uintptr) unix.Errno {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrNetlink
		b.hdrs[i].hdr.Flags = 0
	}
	b.n, b.next = 0, 0
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(len(b.hdrs)),
			unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno == 0 {
			b.n = int(n)
		}
		return errno
	}
}

// pending reports whether a datagram received is still to be taken.
func (b *recvBatch) pending() bool { return b.next < b.n }

// take returns the next datagram received, its sender's port id, and
// whether it was longer than its slot (m is then the slot, full); ok is
// false when every datagram has been taken. m is valid until the next
// recv.
func (b *recvBatch) take() (m []byte, port uint32, trunc, ok bool) {
	if b.next >= b.n {
		return nil, 0, false, false
	}
	i := b.next
	b.next++
	slot := b.buf[i*b.slot : (i+1)*b.slot]
	if n := int(b.hdrs[i].len); n <= len(slot) {
		return slot[:n], b.from[i].Pid, false, true
	}
	return slot, b.from[i].Pid, true, true
}
