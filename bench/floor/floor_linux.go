package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"proctrail/record"
)

// Audit record types (linux/audit.h).
const (
	auditUser = 1005 // AUDIT_USER, sent by `auditctl -m`: the end-of-drain marker
	auditEOE  = 1320 // AUDIT_EOE, ends every multi-record (syscall) event
)

// Constants of linux/connector.h and linux/cn_proc.h.
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procCnMcastIgnore = 2
)

type result struct {
	Mode              string `json:"mode"`
	Batch             bool   `json:"batch"`
	AuditMessages     uint64 `json:"audit_messages"`
	AuditOverruns     uint64 `json:"audit_overruns"`
	ConnectorMessages uint64 `json:"connector_messages"`
	ConnectorOverruns uint64 `json:"connector_overruns"`
	// WindowEvents counts the EOE records received from SIGUSR1 (the
	// workload's start) to the last USER record, FloodEvents those from
	// SIGUSR2 (the open/close flood's start).
	WindowEvents uint64 `json:"window_events"`
	FloodEvents  uint64 `json:"flood_events"`
	// MarkerNs is when the last USER record arrived, ns since the Unix
	// epoch; 0 if none did.
	MarkerNs int64 `json:"marker_ns"`
}

func run(rules []string, stateDir string, connector, batch bool) (err error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sess, err := record.StartAudit(&record.AuditConfig{Rules: rules, StateDir: stateDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := sess.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	var cn *netlink.Conn
	if connector {
		if cn, err = dialConnector(); err != nil {
			return err
		}
	}
	res := result{Mode: sess.Mode(), Batch: batch}
	// eoe is the only counter another goroutine reads while the reader
	// runs (at SIGUSR1); the others are read after wg.Wait.
	var eoe, eoeAtStart, eoeAtFlood, eoeAtMarker, marker atomic.Int64
	var wg sync.WaitGroup
	var stop atomic.Bool
	count := func(typ uint16) {
		switch typ {
		case auditEOE:
			eoe.Add(1)
		case auditUser:
			marker.Store(time.Now().UnixNano())
			eoeAtMarker.Store(eoe.Load())
		}
	}
	if batch {
		fd, err := auditReceiveFD()
		if err != nil {
			return err
		}
		wg.Go(func() { readBatches(fd, &res, count, &stop) })
	} else {
		wg.Go(func() { readAudit(sess, &res, count) })
	}
	if cn != nil {
		wg.Go(func() { readConnector(cn, &res) })
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	fmt.Fprintln(os.Stderr, "floor: ready")
	for s := range sig {
		if s == syscall.SIGUSR1 {
			eoeAtStart.Store(eoe.Load())
			continue
		}
		if s == syscall.SIGUSR2 {
			eoeAtFlood.Store(eoe.Load())
			continue
		}
		break
	}
	stop.Store(true)
	_ = sess.Interrupt()
	if cn != nil {
		_ = cn.SetReadDeadline(time.Unix(1, 0))
	}
	wg.Wait()
	if cn != nil {
		// The kernel counts listeners: without IGNORE it would go on
		// building proc events for nobody.
		_ = connectorOp(cn, procCnMcastIgnore)
		_ = cn.Close()
	}
	res.MarkerNs = marker.Load()
	if res.MarkerNs != 0 {
		res.WindowEvents = uint64(eoeAtMarker.Load() - eoeAtStart.Load())
		res.FloodEvents = uint64(eoeAtMarker.Load() - eoeAtFlood.Load())
	}
	return json.NewEncoder(os.Stdout).Encode(&res)
}

// readAudit reads audit messages the recorder's way, with
// [record.AuditSession.Read], until the session is interrupted.
func readAudit(sess *record.AuditSession, res *result, count func(uint16)) {
	buf := make([]byte, record.MaxAuditMessage)
	for {
		n, err := sess.Read(buf)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			res.AuditOverruns++
			continue
		case err != nil:
			return
		}
		res.AuditMessages++
		if n >= 6 {
			count(binary.NativeEndian.Uint16(buf[4:6]))
		}
	}
}

// batchLen is how many datagrams one recvmmsg may return.
const batchLen = 64

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// readBatches is the leanest reader: on a thread of its own, outside the
// runtime poller, it waits with poll(2) and takes up to batchLen datagrams
// per recvmmsg(2). It returns once stop is set (poll wakes every 100 ms to
// look).
func readBatches(fd int, res *result, count func(uint16), stop *atomic.Bool) {
	runtime.LockOSThread()
	buf := make([]byte, batchLen*record.MaxAuditMessage)
	var iov [batchLen]unix.Iovec
	var hdrs [batchLen]mmsghdr
	for i := range hdrs {
		iov[i].Base = &buf[i*record.MaxAuditMessage]
		iov[i].SetLen(record.MaxAuditMessage)
		hdrs[i].hdr.Iov = &iov[i]
		hdrs[i].hdr.SetIovlen(1)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for !stop.Load() {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])),
			batchLen, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN, unix.EINTR:
			_, _ = unix.Poll(pfd, 100)
			continue
		case unix.ENOBUFS:
			res.AuditOverruns++
			continue
		default:
			return
		}
		res.AuditMessages += uint64(n)
		for i := range int(n) {
			if hdrs[i].len >= 6 {
				m := buf[i*record.MaxAuditMessage:]
				count(binary.NativeEndian.Uint16(m[4:6]))
			}
		}
	}
}

// auditReceiveFD finds the audit session's receive socket among the
// process's descriptors: the NETLINK_AUDIT socket that is non-blocking (the
// control socket of go-libaudit blocks). The session's Read must not be
// used meanwhile.
func auditReceiveFD() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || domain != unix.AF_NETLINK {
			continue
		}
		if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || proto != unix.NETLINK_AUDIT {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
			return fd, nil
		}
	}
	return 0, errors.New("audit receive socket not found")
}

// readConnector reads and discards proc events until the socket's deadline
// passes or it is closed, the way the recorder reads them: through the
// runtime poller, a recvfrom with MSG_DONTWAIT made without entersyscall
// (RawSyscall6) into one reused buffer.
func readConnector(cn *netlink.Conn, res *result) {
	rc, err := cn.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	var rerr error
	readFn := func(fd uintptr) bool {
		for {
			_, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), unix.MSG_DONTWAIT, 0, 0)
			switch errno {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case 0:
				rerr = nil
			default:
				rerr = errno
			}
			return true
		}
	}
	for {
		if err := rc.Read(readFn); err != nil {
			return // the deadline set to stop
		}
		switch {
		case rerr == unix.ENOBUFS:
			res.ConnectorOverruns++
		case rerr != nil:
			return
		default:
			res.ConnectorMessages++
		}
	}
}

// dialConnector joins the process connector's multicast group and asks for
// events, as the recorder does, with the same 16 MiB receive buffer.
func dialConnector() (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_CONNECTOR, &netlink.Config{Groups: cnIdxProc})
	if err != nil {
		return nil, fmt.Errorf("connector: %w", err)
	}
	_ = c.SetReadBuffer(16 << 20)
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
		})
	}
	if err := connectorOp(c, procCnMcastListen); err != nil {
		c.Close()
		return nil, fmt.Errorf("connector listen: %w", err)
	}
	return c, nil
}

// connectorOp sends a struct cn_msg {idx, val, seq, ack, len u16, flags u16}
// carrying an enum proc_cn_mcast_op.
func connectorOp(c *netlink.Conn, op uint32) error {
	data := make([]byte, 24)
	ne := binary.NativeEndian
	ne.PutUint32(data[0:], cnIdxProc)
	ne.PutUint32(data[4:], cnValProc)
	ne.PutUint16(data[16:], 4)
	ne.PutUint32(data[20:], op)
	_, err := c.Send(netlink.Message{Header: netlink.Header{Type: netlink.Done}, Data: data})
	return err
}
