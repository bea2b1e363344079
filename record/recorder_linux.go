package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"proctrail/formats"
	"proctrail/internal/units"
)

// Record records until ctx is done, cfg.Duration has passed, or the command
// exits, and restores the audit state on every path. It returns what was
// recorded; Result.ExitCode is the command's.
func Record(ctx context.Context, cfg *Config) (*Result, error) {
	c := cfg.withDefaults()
	if err := checkPrivileges(c.Audit); err != nil {
		return nil, err
	}
	r := &recorder{cfg: c, log: c.Logger, procQ: make(chan procReq, procQueueLen), mountCalls: newMountCalls()}
	return r.run(ctx)
}

// checkPrivileges names what is missing in one line.
func checkPrivileges(audit bool) error {
	if os.Geteuid() == 0 {
		return nil
	}
	need := "CAP_NET_ADMIN for the process connector"
	if audit {
		need += ", CAP_AUDIT_CONTROL and CAP_AUDIT_READ for audit"
	}
	return fmt.Errorf("record: needs root (%s): %w", need, os.ErrPermission)
}

const (
	procQueueLen = 1 << 14
	// maxDatagram bounds one netlink datagram: audit records are at most
	// MAX_AUDIT_MESSAGE_LENGTH (8970) bytes, proc events far less.
	maxDatagram = 16 << 10
	// linger lets the kernel deliver the last records after the command
	// exits (its exit_group record, the connector's exit event).
	linger = 300 * time.Millisecond
)

type procReq struct {
	pid  int32
	kind formats.ProcReason
	// ppid is read instead of pid, for a mount table, when pid is gone;
	// after is the call after which it is read.
	ppid  int32
	after string
}

type recorder struct {
	cfg Config
	log *slog.Logger
	// mountCalls finds the audit records after which a mount table is
	// read again.
	mountCalls mountCalls

	mu  sync.Mutex // guards out
	out *output

	conn  *connector
	audit *AuditSession
	procQ chan procReq

	received   [formats.NumSources]atomic.Uint64
	overruns   [formats.NumSources]atomic.Uint64
	procDrops  atomic.Uint64
	writeErr   atomic.Pointer[error]
	start      time.Time
	commandPID int
	auditLost0 uint32 // the kernel's lost counter when recording started
}

func (r *recorder) run(ctx context.Context) (res *Result, err error) {
	hdr, err := hostHeader(r.cfg.Version, r.cfg.CommandLine)
	if err != nil {
		return nil, err
	}
	var own *owner
	if !r.cfg.AsRoot {
		own = sudoOwner()
	}
	r.start = time.Now()
	hdr.Start = r.start
	// The connector listens before the snapshot, so no process created in
	// between is missed.
	r.conn, err = openConnector(r.cfg.ReadBuffer)
	if err != nil {
		return nil, err
	}
	defer r.conn.Close()
	if r.cfg.Audit {
		r.audit, err = StartAudit(&r.cfg.AuditConfig)
		if err != nil {
			return nil, err
		}
		defer func() {
			if cerr := r.audit.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("record: restore audit state: %w", cerr)
			}
		}()
		r.auditLost0, _ = r.audit.Lost()
	}
	r.out, err = newOutput(r.cfg.Output, r.cfg.RotateSize, r.cfg.RotateCount, hdr, own)
	if err != nil {
		return nil, err
	}
	defer func() {
		// On the error paths before the end: keep what was written.
		r.mu.Lock()
		_ = r.out.close()
		r.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.Duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, r.cfg.Duration)
		defer c2()
	}

	var wg sync.WaitGroup
	wg.Go(func() { r.listen(formats.SourceConnector, r.conn.Read, cancel) })
	if r.audit != nil {
		wg.Go(func() { r.listen(formats.SourceAudit, r.audit.Read, cancel) })
	}
	procDone := make(chan struct{})
	go func() { defer close(procDone); r.procfsLoop(cancel) }()
	tickDone := make(chan struct{})
	tickStop := make(chan struct{})
	go func() { defer close(tickDone); r.ticker(tickStop, cancel) }()

	res = &Result{Files: nil}
	if len(r.cfg.Command) > 0 {
		res.ExitCode, err = r.runCommand(ctx, own)
		if err != nil {
			cancel()
		}
		select {
		case <-time.After(linger):
		case <-ctx.Done():
		}
	} else {
		r.dropPrivileges()
		<-ctx.Done()
	}

	// Stop: interrupt the readers, then drain the procfs queue.
	_ = r.conn.Interrupt()
	if r.audit != nil {
		_ = r.audit.Interrupt()
	}
	wg.Wait()
	close(r.procQ)
	<-procDone
	close(tickStop)
	<-tickDone

	final := r.collectStats()
	r.mu.Lock()
	r.setStats(final)
	if cerr := r.out.close(); cerr != nil && err == nil {
		err = cerr
	}
	r.mu.Unlock()
	if p := r.writeErr.Load(); p != nil {
		err = *p
	}
	for s, st := range final {
		res.Messages[s], res.Lost[s] = st.Received, st.Dropped
	}
	res.Duration = time.Since(r.start)
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	res.Files = append(res.Files, r.out.files...)
	res.Bytes = r.out.bytesWritten()
	if r.audit != nil {
		res.AuditMode = r.audit.Mode()
	}
	return res, err
}

// listen is a source's receive loop. It allocates nothing per message.
func (r *recorder) listen(src formats.Source, read func([]byte) (int, error), stop context.CancelFunc) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := read(buf)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				r.overruns[src].Add(1)
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, io.ErrShortBuffer) {
				r.overruns[src].Add(1) // a datagram we could not keep whole
				continue
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, errShortRead) {
				continue // nothing was lost
			}
			r.fail(fmt.Errorf("record: %s: %w", src, err), stop)
			return
		}
		now := time.Now().UnixNano()
		msg := buf[:n]
		r.received[src].Add(1)
		r.mu.Lock()
		werr := r.out.write(src, now, msg)
		r.mu.Unlock()
		if werr != nil {
			r.fail(werr, stop)
			return
		}
		if src == formats.SourceAudit {
			if call, pid, ppid, ok := r.mountCalls.match(msg); ok {
				select {
				case r.procQ <- procReq{pid: pid, kind: formats.ReasonMounts, ppid: ppid, after: call}:
				default:
					r.procDrops.Add(1)
				}
			}
		}
		if src == formats.SourceConnector {
			if pid, what, ok := procEventTarget(msg); ok {
				kind := formats.ReasonFork
				if what == procEventExec {
					kind = formats.ReasonExec
				}
				select {
				case r.procQ <- procReq{pid: pid, kind: kind}:
				default:
					r.procDrops.Add(1)
				}
			}
		}
	}
}

func (r *recorder) fail(err error, stop context.CancelFunc) {
	r.writeErr.CompareAndSwap(nil, &err)
	stop()
}

// procfsLoop writes the snapshot, then a record for every queued pid.
func (r *recorder) procfsLoop(stop context.CancelFunc) {
	pr := NewProcReader("")
	var rec formats.ProcRecord
	var buf []byte
	tablesVersion := 0
	r.mu.Lock()
	r.out.fileStartWritten = func() { r.received[formats.SourceProcfs].Add(1) }
	r.mu.Unlock()
	write := func(rec *formats.ProcRecord) error {
		var err error
		buf, err = rec.AppendBinary(buf[:0])
		if err != nil {
			return err
		}
		r.received[formats.SourceProcfs].Add(1)
		r.mu.Lock()
		defer r.mu.Unlock()
		if v := pr.mounts.version; v != tablesVersion {
			// The tables a new file of a rotated set begins with, so
			// that it is analyzed alone as in its set.
			tablesVersion = v
			var recs [][]byte
			if err := pr.mounts.each(func(m *formats.ProcRecord) error {
				b, err := m.AppendBinary(nil)
				recs = append(recs, b)
				return err
			}); err != nil {
				return err
			}
			r.out.fileStart = recs
		}
		return r.out.write(formats.SourceProcfs, time.Now().UnixNano(), buf)
	}
	if err := pr.Snapshot(write); err != nil {
		r.fail(fmt.Errorf("record: procfs snapshot: %w", err), stop)
	}
	for req := range r.procQ {
		if req.kind == formats.ReasonMounts {
			// A process gone already (a short mount command): its
			// parent's table, most often the same namespace.
			ok, gone, err := pr.ReadMounts(req.pid, req.after, &rec)
			if err == nil && gone && req.ppid > 0 {
				ok, _, err = pr.ReadMounts(req.ppid, req.after, &rec)
			}
			if err != nil {
				r.procDrops.Add(1)
			}
			if !ok {
				continue
			}
		} else if req.kind == formats.ReasonCommand {
			rec = formats.ProcRecord{Kind: formats.ReasonCommand, PID: req.pid}
			if err := pr.Read(req.pid, formats.ReasonCommand, &rec); err != nil {
				continue
			}
		} else if err := pr.Read(req.pid, req.kind, &rec); err != nil {
			r.procDrops.Add(1)
			continue
		}
		if err := write(&rec); err != nil {
			r.fail(err, stop)
			return
		}
	}
}

// ticker closes a frame every second, writing the counters first, and
// draws the status line.
func (r *recorder) ticker(stop <-chan struct{}, cancel context.CancelFunc) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last [formats.NumSources]uint64
	for {
		select {
		case <-stop:
			if r.cfg.Status != nil {
				fmt.Fprint(r.cfg.Status, "\r\x1b[K")
			}
			return
		case <-t.C:
		}
		// The counters are read outside the lock: reading the kernel's
		// (AUDIT_GET, /proc/net/netlink) must not hold up the listeners.
		st := r.collectStats()
		r.mu.Lock()
		r.setStats(st)
		err := r.out.flush()
		written := r.out.bytesWritten()
		r.mu.Unlock()
		if err != nil {
			r.fail(err, cancel)
			return
		}
		if r.cfg.Status != nil {
			var rate [formats.NumSources]uint64
			var lost uint64
			for s := range formats.NumSources {
				n := r.received[s].Load()
				rate[s], last[s] = n-last[s], n
				lost += st[s].Dropped
			}
			audit := "off"
			if r.audit != nil {
				audit = fmt.Sprintf("%d/s", rate[formats.SourceAudit])
			}
			fmt.Fprintf(r.cfg.Status, "\r\x1b[Kconnector %d/s  audit %s  procfs %d/s  written %s  lost %d",
				rate[formats.SourceConnector], audit, rate[formats.SourceProcfs], units.Bytes(written), lost)
		}
	}
}

// lost returns src's messages lost so far.
func (r *recorder) lost(src formats.Source) uint64 {
	switch src {
	case formats.SourceConnector:
		return r.socketDrops(r.conn.netlinkSource, src)
	case formats.SourceAudit:
		if r.audit == nil {
			return 0
		}
		var kernel uint64
		if n, err := r.audit.Lost(); err == nil && n >= r.auditLost0 {
			kernel = uint64(n - r.auditLost0)
		}
		return kernel + r.overruns[src].Load()
	case formats.SourceProcfs:
		return r.procDrops.Load()
	}
	return 0
}

// socketDrops prefers the kernel's exact drop count of the socket; the
// number of ENOBUFS overruns is a lower bound when /proc is unavailable.
func (r *recorder) socketDrops(s *netlinkSource, src formats.Source) uint64 {
	if n, err := netlinkDrops(s.inode); err == nil {
		return max(n, r.overruns[src].Load())
	}
	return r.overruns[src].Load()
}

// collectStats reads every source's counters.
func (r *recorder) collectStats() (st [formats.NumSources]formats.Stats) {
	now := time.Now().UnixNano()
	for s := range formats.NumSources {
		if s == int(formats.SourceAudit) && r.audit == nil {
			continue
		}
		st[s] = formats.Stats{Time: now, Received: r.received[s].Load(), Dropped: r.lost(formats.Source(s))}
	}
	return st
}

// setStats hands the counters to the writer; mu must be held.
func (r *recorder) setStats(st [formats.NumSources]formats.Stats) {
	for s := range formats.NumSources {
		if st[s].Time != 0 {
			r.out.setStats(formats.Source(s), st[s])
		}
	}
}

// runCommand runs the command, as the invoking user under sudo unless
// AsRoot, and returns its exit code. A first SIGINT or SIGTERM (ctx done)
// is passed on to it; if it has not exited 5 s later it is killed, so a
// command that ignores signals cannot keep the recorder running.
func (r *recorder) runCommand(ctx context.Context, own *owner) (int, error) {
	cmd := exec.Command(r.cfg.Command[0], r.cfg.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r.cfg.Stdin, r.cfg.Stdout, r.cfg.Stderr
	if own != nil {
		cred := &syscall.Credential{Uid: uint32(own.uid), Gid: uint32(own.gid)}
		if u, err := user.LookupId(strconv.Itoa(own.uid)); err == nil {
			if gids, err := u.GroupIds(); err == nil {
				for _, g := range gids {
					if n, err := strconv.Atoi(g); err == nil {
						cred.Groups = append(cred.Groups, uint32(n))
					}
				}
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("record: start command: %w", err)
	}
	r.commandPID = cmd.Process.Pid
	r.procQ <- procReq{pid: int32(cmd.Process.Pid), kind: formats.ReasonCommand}
	r.dropPrivileges()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if errors.Is(ctx.Err(), context.Canceled) {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
		select {
		case werr = <-done:
		case <-time.After(5 * time.Second):
			r.log.Warn("command did not exit after a signal; killing it", "pid", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			werr = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if werr != nil {
		return 1, werr
	}
	return 0, nil
}

// dropPrivileges drops what the recorder no longer needs, once everything
// privileged has been opened and the command started.
func (r *recorder) dropPrivileges() {
	if err := dropPrivileges(); err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			r.log.Debug("capabilities kept: this binary was built with cgo")
			return
		}
		r.log.Warn("capabilities kept", "err", err)
	}
}

// sudoOwner returns the invoking user when run under sudo.
func sudoOwner() *owner {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || os.Geteuid() != 0 || uid == 0 {
		return nil
	}
	return &owner{uid: uid, gid: gid}
}

// hostHeader gathers the host facts for the section header.
func hostHeader(version string, cmdline []string) (formats.Header, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return formats.Header{}, fmt.Errorf("record: uname: %w", err)
	}
	var mono, real unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	boot := time.Unix(0, real.Nano()-mono.Nano())
	return formats.Header{
		Hostname:      unix.ByteSliceToString(u.Nodename[:]),
		KernelRelease: unix.ByteSliceToString(u.Release[:]),
		Machine:       unix.ByteSliceToString(u.Machine[:]),
		BootTime:      boot,
		Version:       version,
		CommandLine:   cmdline,
	}, nil
}
