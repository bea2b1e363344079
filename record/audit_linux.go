//go:build linux

package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Audit session modes, as returned by [AuditSession.Mode].
const (
	// ModeDaemon: the recorder registered itself as the audit daemon (the
	// kernel's audit pid) and the kernel unicasts every record to it.
	ModeDaemon = "daemon"
	// ModeMulticast: another daemon (auditd) owns the audit pid; the
	// recorder reads the read-only multicast group AUDIT_NLGRP_READLOG.
	ModeMulticast = "multicast"
)

// stateFileName is the name of the saved audit state inside StateDir.
const stateFileName = "audit-state.json"

// ctlTimeout bounds the wait for a kernel reply on a control request.
const ctlTimeout = 5 * time.Second

// ErrRecorderRunning is returned by [RecoverStale] and [StartAudit] when the
// state file belongs to a recorder that is still running.
var ErrRecorderRunning = errors.New("record: another proctrail recorder is running")

// errSessionClosed is returned by Read after Interrupt or Close. It matches
// both net.ErrClosed and os.ErrClosed, so callers may test either.
var errSessionClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string { return "record: audit session closed" }

func (closedError) Is(target error) bool { return target == net.ErrClosed || target == os.ErrClosed }

// errOverrun is returned by Read on ENOBUFS. Preallocated: an overrun happens
// under load, when the reader can least afford garbage.
var errOverrun error = os.NewSyscallError("recvmmsg", unix.ENOBUFS)

// AuditSession is a running audit recording: the receive socket and the
// audit state changed for it. Read and Interrupt may be called from one
// goroutine while Lost and Close are called from others; Read itself is not
// safe for concurrent use.
type AuditSession struct {
	log       *slog.Logger
	mode      string
	statePath string
	saved     auditState

	conn *netlink.Conn // receive socket
	rc   syscall.RawConn

	// Read's scratch, used by readFn, which is created once so that Read
	// does not allocate a closure per call.
	readFn func(fd uintptr) bool
	rerr   error
	batch  recvBatch

	interrupted atomic.Bool

	mu          sync.Mutex // guards ctl and the restore bookkeeping below
	ctl         *libaudit.AuditClient
	added       []rule.WireFormat
	setPID      bool
	setBacklog  bool
	setWaitTime bool
	setEnabled  bool
	closed      bool
	closeErr    error
}

// StartAudit recovers what a killed earlier run left behind (see
// [RecoverStale]), saves the audit state to StateDir, then changes it for
// recording: it raises the backlog limit, sets the backlog wait time,
// enables audit, becomes the audit daemon unless another live process is,
// and installs a never rule for its own pid followed by cfg.Rules, all keyed
// [RuleKey]. Any error restores what was changed. Call [AuditSession.Close]
// to restore the state. It needs CAP_AUDIT_CONTROL and CAP_AUDIT_READ.
func StartAudit(cfg *AuditConfig) (_ *AuditSession, err error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rules, err := buildRules(c.Rules)
	if err != nil {
		return nil, err
	}
	if _, err := RecoverStale(c.StateDir, c.Logger); err != nil {
		return nil, err
	}

	ctl, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return nil, fmt.Errorf("record: audit control socket: %w", err)
	}
	s := &AuditSession{
		log:       c.Logger,
		statePath: filepath.Join(c.StateDir, stateFileName),
		ctl:       ctl,
	}
	s.readFn = s.readFd
	s.batch = newRecvBatch(auditBatchLen, MaxAuditMessage)
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()

	st, err := ctl.GetStatus()
	if err != nil {
		return nil, fmt.Errorf("record: audit status: %w", err)
	}
	if st.Enabled == 2 {
		return nil, errImmutable
	}
	current, err := ctl.GetRules()
	if err != nil {
		return nil, fmt.Errorf("record: listing audit rules: %w", err)
	}

	s.mode = ModeDaemon
	if st.PID != 0 && auditProcExists(int(st.PID)) {
		s.mode = ModeMulticast
	}
	if err := s.dial(c.ReadBuffer); err != nil {
		return nil, err
	}
	if err := s.saveState(c.StateDir, st, current); err != nil {
		return nil, err
	}
	// From here on every change is recorded in s so Close undoes it.
	if err := s.apply(&c, st, current, rules); err != nil {
		return nil, err
	}
	s.log.Info("audit recording started", "mode", s.mode, "rules", len(s.added),
		"audit_pid", st.PID, "backlog_limit", max(c.BacklogLimit, st.BacklogLimit))
	return s, nil
}

// buildRules builds the never rule for the recorder's own pid, first,
// then lines.
func buildRules(lines []string) ([]rule.WireFormat, error) {
	rules := make([]rule.WireFormat, 0, len(lines)+1)
	never := fmt.Sprintf("-A never,exit -F pid=%d -k %s", os.Getpid(), RuleKey)
	for _, line := range append([]string{never}, lines...) {
		wf, err := buildRule(line)
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		rules = append(rules, wf)
	}
	return rules, nil
}

// saveState writes the audit state found (st, the rules current) to
// dir, for RecoverStale should the recorder be killed.
func (s *AuditSession) saveState(dir string, st *libaudit.AuditStatus, current [][]byte) error {
	start, err := auditProcStartTicks(os.Getpid())
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	s.saved = auditState{
		RecorderPID:     os.Getpid(),
		RecorderStart:   start,
		Mode:            s.mode,
		SavedAt:         time.Now().UTC().Format(time.RFC3339Nano),
		Enabled:         st.Enabled,
		Failure:         st.Failure,
		PID:             st.PID,
		RateLimit:       st.RateLimit,
		BacklogLimit:    st.BacklogLimit,
		BacklogWaitTime: st.BacklogWaitTime,
		Rules:           current,
	}
	return writeAuditState(dir, &s.saved)
}

// apply changes the audit state for the recording, noting each change in
// s for Close to undo: stale rules out, the backlog limit and wait time,
// enabled, the audit pid (daemon mode), then the rules.
func (s *AuditSession) apply(c *AuditConfig, st *libaudit.AuditStatus, current [][]byte, rules []rule.WireFormat) error {
	ctl := s.ctl
	if n, err := deleteKeyedRules(ctl, current); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("removed " + strconv.Itoa(n) + " stale proctrail audit rules left by an earlier run")
	}
	if c.BacklogLimit > st.BacklogLimit {
		s.setBacklog = true
		if err := ctl.SetBacklogLimit(c.BacklogLimit, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("record: setting audit backlog limit %d: %w", c.BacklogLimit, err)
		}
	}
	if st.FeatureBitmap&libaudit.AuditFeatureBitmapBacklogWaitTime == 0 {
		s.log.Warn("kernel cannot set the audit backlog wait time; leaving it", "feature_bitmap", st.FeatureBitmap)
	} else if uint32(c.BacklogWaitTime) != st.BacklogWaitTime {
		s.setWaitTime = true
		if err := ctl.SetBacklogWaitTime(c.BacklogWaitTime, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("record: setting audit backlog wait time %d: %w", c.BacklogWaitTime, err)
		}
	}
	if st.Enabled == 0 {
		s.setEnabled = true
		if err := ctl.SetEnabled(true, libaudit.WaitForReply); err != nil {
			return fmt.Errorf("record: enabling audit: %w", err)
		}
	}
	if s.mode == ModeDaemon {
		// Registered before the rules go in, so that their first records
		// reach us rather than the kernel log.
		if err := s.registerDaemon(); err != nil {
			return fmt.Errorf("record: registering as audit daemon: %w", err)
		}
		s.setPID = true
	}
	for _, wf := range rules {
		err := auditRequest(ctl, uint16(auditAddRule), wf)
		switch {
		case errors.Is(err, unix.EEXIST):
			// Already there: a duplicate in the rules, added just before.
		case err != nil:
			line, _ := rule.ToCommandLine(wf, false)
			return fmt.Errorf("record: adding audit rule %q: %w", line, err)
		default:
			s.added = append(s.added, wf)
		}
	}
	return nil
}

var errImmutable = errors.New("record: audit configuration is immutable (enabled=2): rules cannot be changed until reboot")

// Audit netlink message types not exported by go-libaudit as constants.
const (
	auditAddRule = 1011 // AUDIT_ADD_RULE
	auditDelRule = 1012 // AUDIT_DEL_RULE
	nlmsgHdrLen  = unix.SizeofNlMsghdr
)

// dial opens the receive socket: unicast in daemon mode, joined to the
// read-only multicast group otherwise.
func (s *AuditSession) dial(readBuffer int) error {
	var groups uint32
	if s.mode == ModeMulticast {
		groups = 1 << (unix.AUDIT_NLGRP_READLOG - 1)
	}
	conn, err := netlink.Dial(unix.NETLINK_AUDIT, &netlink.Config{Groups: groups})
	if err != nil {
		return fmt.Errorf("record: audit receive socket: %w", err)
	}
	s.conn = conn
	// mdlayher/socket tries SO_RCVBUFFORCE first, then SO_RCVBUF; the
	// explicit FORCE below makes sure a privileged recorder gets the full
	// size even above net.core.rmem_max.
	if err := conn.SetReadBuffer(readBuffer); err != nil {
		s.log.Warn("cannot set audit socket receive buffer", "bytes", readBuffer, "err", err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("record: audit receive socket: %w", err)
	}
	s.rc = rc
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, readBuffer)
	}); err == nil && serr != nil {
		s.log.Debug("SO_RCVBUFFORCE refused", "err", serr)
	}
	if n, err := conn.ReadBuffer(); err == nil {
		s.log.Debug("audit receive socket", "mode", s.mode, "rcvbuf", n)
	}
	return nil
}

// registerDaemon sends AUDIT_SET pid from the receive socket: the kernel
// remembers the port id of the socket that registered and unicasts records
// to it. Records arriving before the ack (the kernel flushes its hold queue
// at once) predate the recording and are dropped.
func (s *AuditSession) registerDaemon() error {
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(libaudit.AuditSet),
			Flags: netlink.Request | netlink.Acknowledge,
		},
		Data: marshalAuditStatus(libaudit.AuditStatusPID, uint32(os.Getpid())),
	}
	sent, err := s.conn.Send(req)
	if err != nil {
		return err
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(ctlTimeout)); err != nil {
		return err
	}
	defer s.conn.SetReadDeadline(time.Time{})
	buf := make([]byte, MaxAuditMessage)
	skipped := 0
	for {
		n, err := s.read(buf)
		if errors.Is(err, unix.ENOBUFS) {
			continue
		}
		if err != nil {
			return err
		}
		if n < nlmsgHdrLen+4 {
			continue
		}
		typ := binary.NativeEndian.Uint16(buf[4:6])
		seq := binary.NativeEndian.Uint32(buf[8:12])
		if typ != unix.NLMSG_ERROR || seq != sent.Header.Sequence {
			skipped++
			continue
		}
		if skipped > 0 {
			s.log.Debug("dropped audit records queued before registration", "count", skipped)
		}
		if errno := int32(binary.NativeEndian.Uint32(buf[nlmsgHdrLen:])); errno != 0 {
			return unix.Errno(-errno)
		}
		return nil
	}
}

// MaxAuditMessage is the largest datagram the kernel sends on the audit
// socket: a netlink header and MAX_AUDIT_MESSAGE_LENGTH bytes of text.
// A buffer this size never truncates a record.
const MaxAuditMessage = nlmsgHdrLen + libaudit.AuditMessageMaxLength

// Mode reports how records are received: [ModeDaemon] ("daemon") or
// [ModeMulticast] ("multicast").
func (s *AuditSession) Mode() string { return s.mode }

// Read blocks until one netlink datagram arrives on the receive socket,
// copies it, untouched (nlmsghdr and audit text), into buf and returns its
// length. A buf of [MaxAuditMessage] bytes always suffices; a longer
// datagram is truncated to len(buf) and reported with io.ErrShortBuffer.
// After a receive buffer overrun it returns an error matching
// errors.Is(err, unix.ENOBUFS) and reading can continue (records were
// lost). After Interrupt or Close it returns the datagrams already
// received (one system call takes up to 16), then an error matching both
// net.ErrClosed and os.ErrClosed. Read does not allocate; it is not safe
// for concurrent use.
func (s *AuditSession) Read(buf []byte) (int, error) {
	if len(buf) < nlmsgHdrLen {
		return 0, io.ErrShortBuffer
	}
	if !s.batch.pending() && s.interrupted.Load() {
		return 0, errSessionClosed
	}
	n, err := s.read(buf)
	if err != nil && s.interrupted.Load() && err != errOverrun {
		return 0, errSessionClosed
	}
	return n, err
}

// read is Read without its checks: the next datagram of the batch,
// receiving more when none is left.
func (s *AuditSession) read(buf []byte) (int, error) {
	m, trunc := takeAudit(&s.batch)
	for m == nil {
		s.rerr = nil
		if err := s.rc.Read(s.readFn); err != nil {
			return 0, err
		}
		if s.rerr != nil {
			return 0, s.rerr
		}
		m, trunc = takeAudit(&s.batch)
	}
	return deliver(buf, m, trunc)
}

// deliver copies the datagram m, truncated (longer than its slot) or not,
// into buf, as Read returns it.
func deliver(buf, m []byte, trunc bool) (int, error) {
	if !trunc && len(m) <= len(buf) {
		return copy(buf, m), nil
	}
	return copy(buf, m), io.ErrShortBuffer
}

// auditBatchLen is how many datagrams one receive takes at most.
const auditBatchLen = 16

// takeAudit returns the next datagram of b sent by the kernel (port id 0;
// any other is skipped), and whether it was longer than its slot; nil
// when none is left.
func takeAudit(b *recvBatch) (m []byte, trunc bool) {
	for {
		m, port, trunc, ok := b.take()
		if !ok {
			return nil, false
		}
		if port != 0 {
			continue // not from the kernel
		}
		// The kernel's unicast to the audit daemon sets nlmsg_len to the
		// text's length alone (kernel/audit.c audit_log_end; the multicast
		// copy is corrected in kauditd_send_multicast_skb). Captures store
		// well-formed netlink messages, which Wireshark's dissector and any
		// LINKTYPE_NETLINK reader expect: cover the header.
		if n := len(m); !trunc && n >= nlmsgHdrLen {
			if l := binary.NativeEndian.Uint32(m); int(l) == n-nlmsgHdrLen {
				binary.NativeEndian.PutUint32(m, uint32(n))
			}
		}
		return m, trunc
	}
}

// readFd receives the datagrams queued, up to auditBatchLen, into s.batch
// (see recvBatch). It returns false on EAGAIN so that the runtime poller
// waits for the socket.
func (s *AuditSession) readFd(fd uintptr) bool {
	switch errno := s.batch.recv(fd); errno {
	case 0:
	case unix.EAGAIN:
		return false
	case unix.ENOBUFS:
		s.rerr = errOverrun
	default:
		s.rerr = os.NewSyscallError("recvmmsg", errno)
	}
	return true
}

// Interrupt makes a blocked Read return net.ErrClosed promptly, and every
// later Read too once the datagrams already received are handed out. Call
// it before Close from another goroutine than Read's.
func (s *AuditSession) Interrupt() error {
	s.interrupted.Store(true)
	if s.conn == nil {
		return nil
	}
	// A deadline in the past wakes the poller; Close of the socket would
	// too, but only once Read has left the fd, so it cannot be relied on.
	if err := s.conn.SetReadDeadline(time.Unix(1, 0)); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("record: interrupting audit read: %w", err)
	}
	return nil
}

// Lost returns the kernel's audit lost counter: records dropped because the
// backlog was full or the rate limit hit. It uses the control socket and is
// safe to call concurrently with Read.
func (s *AuditSession) Lost() (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSessionClosed
	}
	st, err := s.ctl.GetStatus()
	if err != nil {
		return 0, fmt.Errorf("record: audit status: %w", err)
	}
	return st.Lost, nil
}

// Close restores the audit state saved at start: it deletes the rules it
// added, restores the backlog limit, backlog wait time and enabled flag,
// unregisters as audit daemon if it registered, closes the sockets and
// removes the state file. When a restore step fails the state file is kept
// so that the next run (RecoverStale) retries. Close is idempotent; later
// calls return the first call's result.
func (s *AuditSession) Close() error {
	_ = s.Interrupt()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	var errs []error
	for i := len(s.added) - 1; i >= 0; i-- {
		if err := auditRequest(s.ctl, auditDelRule, s.added[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			line, _ := rule.ToCommandLine(s.added[i], false)
			errs = append(errs, fmt.Errorf("deleting audit rule %q: %w", line, err))
		}
	}
	s.added = nil
	if s.setPID {
		if err := auditRequest(s.ctl, libaudit.AuditSet, marshalAuditStatus(libaudit.AuditStatusPID, 0)); err != nil {
			errs = append(errs, fmt.Errorf("unregistering as audit daemon: %w", err))
		}
	}
	if s.setEnabled {
		if err := s.ctl.SetEnabled(s.saved.Enabled == 1, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit enabled=%d: %w", s.saved.Enabled, err))
		}
	}
	if s.setBacklog {
		if err := s.ctl.SetBacklogLimit(s.saved.BacklogLimit, libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit backlog limit %d: %w", s.saved.BacklogLimit, err))
		}
	}
	if s.setWaitTime {
		if err := s.ctl.SetBacklogWaitTime(int32(s.saved.BacklogWaitTime), libaudit.WaitForReply); err != nil {
			errs = append(errs, fmt.Errorf("restoring audit backlog wait time %d: %w", s.saved.BacklogWaitTime, err))
		}
	}
	if s.conn != nil {
		if err := s.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing audit receive socket: %w", err))
		}
	}
	if err := s.ctl.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing audit control socket: %w", err))
	}
	if s.saved.RecorderPID != 0 { // the state file was written by us
		if len(errs) == 0 {
			if err := os.Remove(s.statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		} else {
			errs = append(errs, fmt.Errorf("kept %s for the next run to retry", s.statePath))
		}
	}
	if len(errs) > 0 {
		s.closeErr = fmt.Errorf("record: restoring audit state: %w", errors.Join(errs...))
	}
	return s.closeErr
}

// marshalAuditStatus encodes a struct audit_status with only mask and pid set.
func marshalAuditStatus(mask libaudit.AuditStatusMask, pid uint32) []byte {
	st := libaudit.AuditStatus{Mask: mask, PID: pid}
	b := make([]byte, unsafe.Sizeof(st))
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(st.Mask))
	ne.PutUint32(b[12:], st.PID) // after mask, enabled, failure
	return b
}

// auditRequest sends one request with NLM_F_ACK on the control client and
// returns the kernel's errno from the ack (nil for success). go-libaudit's
// DeleteRule ignores the errno and its AddRule hides EEXIST in a string.
func auditRequest(ctl *libaudit.AuditClient, typ uint16, data []byte) error {
	seq, err := ctl.Netlink.Send(syscall.NetlinkMessage{
		Header: syscall.NlMsghdr{Type: typ, Flags: syscall.NLM_F_REQUEST | syscall.NLM_F_ACK},
		Data:   data,
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(ctlTimeout)
	for {
		msgs, err := ctl.Netlink.Receive(true, parseAuditReply)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			if time.Now().After(deadline) {
				return fmt.Errorf("no reply from the kernel within %v", ctlTimeout)
			}
			time.Sleep(2 * time.Millisecond)
			continue
		case err != nil:
			return err
		}
		m := msgs[0]
		if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
			continue // a late reply to an earlier request
		}
		return libaudit.ParseNetlinkError(m.Data)
	}
}

// parseAuditReply is go-libaudit's parser for the control socket: one
// message per datagram, whose header length is not trusted.
func parseAuditReply(b []byte) ([]syscall.NetlinkMessage, error) {
	if len(b) < nlmsgHdrLen {
		return nil, unix.EINVAL
	}
	ne := binary.NativeEndian
	return []syscall.NetlinkMessage{{
		Header: syscall.NlMsghdr{
			Len:   ne.Uint32(b[0:]),
			Type:  ne.Uint16(b[4:]),
			Flags: ne.Uint16(b[6:]),
			Seq:   ne.Uint32(b[8:]),
			Pid:   ne.Uint32(b[12:]),
		},
		Data: b[nlmsgHdrLen:],
	}}, nil
}
