package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Constants of linux/connector.h and linux/cn_proc.h.
const (
	cnIdxProc          = 1
	cnValProc          = 1
	procCnMcastListen  = 1
	procCnMcastIgnore  = 2
	cnMsgLen           = 20 // struct cn_msg without data
	procEventFork      = 0x00000001
	procEventExec      = 0x00000002
	procEventHeaderLen = 16 // what, cpu, timestamp_ns
)

// netlinkSource is a netlink socket read without allocating: the closure
// handed to the runtime poller is made once, and unix.Read avoids the
// Sockaddr that Recvfrom would allocate.
type netlinkSource struct {
	conn   *netlink.Conn
	rc     syscall.RawConn
	readFn func(fd uintptr) bool
	buf    []byte
	n      int
	err    error
	inode  uint64 // socket inode, to find its drop counter in /proc/net/netlink
}

func newNetlinkSource(conn *netlink.Conn, readBuffer int) (*netlinkSource, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &netlinkSource{conn: conn, rc: rc}
	s.readFn = func(fd uintptr) bool {
		n, errno := recvDontWait(fd, s.buf, 0, nil, nil)
		switch errno {
		case 0:
			s.n, s.err = n, nil
		case unix.EAGAIN:
			return false
		default:
			s.n, s.err = 0, errno
		}
		return true
	}
	if readBuffer > 0 {
		_ = conn.SetReadBuffer(readBuffer)
		var serr error
		_ = rc.Control(func(fd uintptr) {
			// SO_RCVBUFFORCE passes rmem_max when we have CAP_NET_ADMIN.
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer)
		})
		_ = serr
	}
	_ = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil {
			s.inode = st.Ino
		}
	})
	return s, nil
}

// recvDontWait is recvfrom(2) of one datagram with MSG_DONTWAIT added to
// flags, retried on EINTR; from and fromLen may be nil. It never waits, so it
// is a raw system call (unix.RawSyscall6): it need not offer its P to the
// scheduler, and Syscall6's entersyscall wakes the runtime's sysmon thread
// whenever every P was idle, as at each burst of messages; sysmon then polls
// every 20 µs while any P is busy. That polling was a quarter of the CPU of
// the floor reader (bench/floor), which reads the recorder's way.
func recvDontWait(fd uintptr, buf []byte, flags int, from *unix.RawSockaddrNetlink, fromLen *uint32) (int, unix.Errno) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)),
			uintptr(flags|unix.MSG_DONTWAIT),
			uintptr(unsafe.Pointer(from)), uintptr(unsafe.Pointer(fromLen)))
		if errno != unix.EINTR {
			return int(n), errno
		}
	}
}

// Read blocks until a datagram arrives and copies it into buf. An overrun
// (the socket's receive queue was full and the kernel dropped messages)
// returns an error wrapping unix.ENOBUFS; reading can go on after it.
func (s *netlinkSource) Read(buf []byte) (int, error) {
	s.buf = buf
	if err := s.rc.Read(s.readFn); err != nil {
		return 0, err
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.n == 0 {
		return 0, errShortRead
	}
	return s.n, nil
}

var errShortRead = errors.New("record: empty netlink datagram")

// Interrupt makes a blocked Read return.
func (s *netlinkSource) Interrupt() error {
	return s.conn.SetReadDeadline(time.Unix(1, 0))
}

// connector listens to the process connector.
type connector struct {
	*netlinkSource
}

// openConnector subscribes to the process connector's multicast group and
// asks the kernel to send proc events (PROC_CN_MCAST_LISTEN).
func openConnector(readBuffer int) (*connector, error) {
	conn, err := netlink.Dial(unix.NETLINK_CONNECTOR, &netlink.Config{Groups: cnIdxProc})
	if err != nil {
		return nil, fmt.Errorf("record: process connector: %w", err)
	}
	src, err := newNetlinkSource(conn, readBuffer)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &connector{src}
	if err := c.control(procCnMcastListen); err != nil {
		conn.Close()
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("record: process connector listen: %w (needs CAP_NET_ADMIN)", os.ErrPermission)
		}
		return nil, fmt.Errorf("record: process connector listen: %w", err)
	}
	return c, nil
}

func (c *connector) control(op uint32) error {
	data := make([]byte, cnMsgLen+4)
	binary.NativeEndian.PutUint32(data[0:], cnIdxProc)
	binary.NativeEndian.PutUint32(data[4:], cnValProc)
	binary.NativeEndian.PutUint16(data[16:], 4)
	binary.NativeEndian.PutUint32(data[20:], op)
	_, err := c.conn.Send(netlink.Message{Header: netlink.Header{Type: netlink.Done}, Data: data})
	return err
}

// Close tells the kernel to stop sending and closes the socket.
func (c *connector) Close() error {
	_ = c.control(procCnMcastIgnore)
	return c.conn.Close()
}

// procEventTarget extracts from a connector datagram the process worth a
// procfs read: the child of a fork that made a new process (not a thread),
// or the process of an exec. It parses only fixed offsets and allocates
// nothing.
func procEventTarget(msg []byte) (pid int32, what uint32, ok bool) {
	const ev = unix.NLMSG_HDRLEN + cnMsgLen
	if len(msg) < ev+procEventHeaderLen+16 {
		return 0, 0, false
	}
	what = binary.NativeEndian.Uint32(msg[ev:])
	data := msg[ev+procEventHeaderLen:]
	switch what {
	case procEventFork:
		// parent_pid, parent_tgid, child_pid, child_tgid
		childPID := int32(binary.NativeEndian.Uint32(data[8:]))
		childTGID := int32(binary.NativeEndian.Uint32(data[12:]))
		if childPID != childTGID {
			return 0, what, false // a new thread
		}
		return childTGID, what, true
	case procEventExec:
		return int32(binary.NativeEndian.Uint32(data[4:])), what, true // process_tgid
	}
	return 0, what, false
}
