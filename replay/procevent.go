package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The process connector's wire format, from include/uapi/linux/connector.h
// and include/uapi/linux/cn_proc.h. A datagram from NETLINK_CONNECTOR is
//
//	struct nlmsghdr   16 bytes, nlmsg_type NLMSG_DONE
//	struct cn_msg     20 bytes: id.idx, id.val, seq, ack (u32), len, flags (u16)
//	struct proc_event cn_msg.len bytes (40 on every kernel since 2.6.x):
//	    what u32, cpu u32, timestamp_ns u64, then a 24-byte union
//
// The union's largest members (comm and exit) are 24 bytes, so the kernel
// always sends 76 bytes; fields it does not fill are zero (it memsets the
// union first).
const (
	cnMsgLen        = 20
	procHeaderLen   = 16 // what, cpu, timestamp_ns
	cnIdxProc       = 1  // CN_IDX_PROC
	cnValProc       = 1  // CN_VAL_PROC
	procCommLen     = 16 // TASK_COMM_LEN
	procEventOffset = nlmsgHdrLen + cnMsgLen
)

// Values of proc_event.what (enum proc_cn_event).
const (
	procEventNone     = 0x00000000
	procEventFork     = 0x00000001
	procEventExec     = 0x00000002
	procEventUID      = 0x00000004
	procEventGID      = 0x00000040
	procEventSID      = 0x00000080
	procEventPtrace   = 0x00000100
	procEventComm     = 0x00000200
	procEventCoredump = 0x40000000
	procEventExit     = 0x80000000
	// PROC_EVENT_NONZERO_EXIT (0x20000000, Linux 6.6) only selects events
	// in a listener's filter; the kernel still reports them as EXIT, so it
	// is not a kind here and decodes as unknown if it ever appears.
)

// ProcKind names the kind of a process connector event. Its values are
// stable strings, fit for JSON and logs.
type ProcKind string

// The kinds of ProcEvent.
const (
	ProcNone     ProcKind = "none"     // PROC_EVENT_NONE: the ack to a listen request
	ProcFork     ProcKind = "fork"     // a task was created (process or thread)
	ProcExec     ProcKind = "exec"     // a task called execve
	ProcUID      ProcKind = "uid"      // real or effective uid changed
	ProcGID      ProcKind = "gid"      // real or effective gid changed
	ProcSID      ProcKind = "sid"      // the task called setsid
	ProcPtrace   ProcKind = "ptrace"   // ptrace attach or detach
	ProcComm     ProcKind = "comm"     // the task's comm (name) changed
	ProcCoredump ProcKind = "coredump" // the task dumped core
	ProcExit     ProcKind = "exit"     // the task exited
	ProcUnknown  ProcKind = "unknown"  // a what this package does not know; only the header is decoded
)

// procKinds maps what to its kind and the size of its union member.
var procKinds = map[uint32]struct {
	kind ProcKind
	size int
}{
	procEventNone:     {ProcNone, 4},
	procEventFork:     {ProcFork, 16},
	procEventExec:     {ProcExec, 8},
	procEventUID:      {ProcUID, 16},
	procEventGID:      {ProcGID, 16},
	procEventSID:      {ProcSID, 8},
	procEventPtrace:   {ProcPtrace, 16},
	procEventComm:     {ProcComm, 8 + procCommLen},
	procEventCoredump: {ProcCoredump, 16},
	procEventExit:     {ProcExit, 24},
}

// ProcEvent is one decoded struct proc_event. It is flat: which fields are
// meaningful depends on Kind, and the others are zero. PIDs are the kernel's
// global (init namespace) ids; PID is a task (thread) id and TGID its
// process id.
type ProcEvent struct {
	Kind ProcKind
	// What is proc_event.what as sent, kept so an unknown kind can be
	// reported exactly.
	What uint32
	// CPU is the CPU that emitted the event (0xffffffff on the ack).
	CPU uint32
	// Timestamp is proc_event.timestamp_ns: ktime_get_ns(), the
	// CLOCK_MONOTONIC nanoseconds since boot. It does not advance while the
	// machine is suspended, so boot time + Timestamp is wall time only on a
	// machine that never slept.
	Timestamp uint64

	// PID and TGID are the subject task of every kind but fork (whose
	// subject is ChildPID/ChildTGID) and none.
	PID  int32
	TGID int32

	// ParentPID and ParentTGID: for fork, the new task's real_parent. That
	// is the caller of fork/clone only for a plain new process: with
	// CLONE_THREAD or CLONE_PARENT the kernel copies the caller's own
	// real_parent, so a new thread's fork event names its process's parent,
	// not the thread that created it (kernel/fork.c copy_process). For
	// coredump and exit, the real parent at that time, which may be init or
	// a subreaper after reparenting (older kernels leave exit's zero).
	ParentPID  int32
	ParentTGID int32

	// ChildPID and ChildTGID: fork's new task. ChildPID == ChildTGID for a
	// new process, ChildTGID == ParentTGID for a new thread.
	ChildPID  int32
	ChildTGID int32

	// RealID and EffectiveID: the new real and effective uid (Kind uid) or
	// gid (Kind gid).
	RealID      uint32
	EffectiveID uint32

	// TracerPID and TracerTGID: ptrace's tracer; both zero on detach.
	TracerPID  int32
	TracerTGID int32

	// Comm is comm's new value (Kind comm), up to its first NUL; at most
	// 15 bytes, not necessarily UTF-8.
	Comm string

	// ExitCode is exit's task->exit_code, the raw wait status:
	// (status&0xff)<<8 for exit(status), or the killing signal, with 0x80
	// set when it dumped core. See ExitStatus.
	ExitCode uint32
	// ExitSignal is exit's task->exit_signal: the signal the parent gets
	// (SIGCHLD, 17 on x86, for a process), or 0xffffffff (-1) for a thread
	// other than the group leader.
	ExitSignal uint32

	// Err is the ack's error (Kind none): 0 when the listen request
	// succeeded.
	Err uint32
}

// ExitStatus splits ExitCode the way wait(2)'s macros do: code is the exit
// status when the task exited normally (WEXITSTATUS), signal the
// terminating signal when it was killed (WTERMSIG), 0 otherwise. Only
// meaningful when Kind is ProcExit.
func (e ProcEvent) ExitStatus() (code int, signal int) {
	if sig := int(e.ExitCode & 0x7f); sig != 0 {
		return 0, sig
	}
	return int(e.ExitCode>>8) & 0xff, 0
}

// CoreDumped reports whether the exit status says the task dumped core
// (WCOREDUMP). Only meaningful when Kind is ProcExit.
func (e ProcEvent) CoreDumped() bool {
	return e.ExitCode&0x7f != 0 && e.ExitCode&0x80 != 0
}

// DecodeProcEvent decodes one netlink datagram from the process connector,
// as received from the kernel (nlmsghdr included). Integers are decoded
// little-endian (netlink is host order, and capture hosts are
// little-endian).
//
// The connector sends one message per datagram. If msg holds several, the
// first is decoded and the others are only checked for consistent lengths.
// An unknown what decodes without error as Kind ProcUnknown with What, CPU
// and Timestamp set.
//
// On error the returned ProcEvent is the zero value; the error wraps
// ErrTruncated, ErrMalformed or ErrControl. DecodeProcEvent does not keep
// msg and never panics, whatever the input.
func DecodeProcEvent(msg []byte) (ProcEvent, error) {
	h, err := parseNLHeader(msg)
	if err != nil {
		return ProcEvent{}, fmt.Errorf("proc event: %w", err)
	}
	switch {
	case h.Len < nlmsgHdrLen:
		return ProcEvent{}, fmt.Errorf("%w: proc event: nlmsg_len %d is less than its header", ErrMalformed, h.Len)
	case uint64(h.Len) > uint64(len(msg)):
		return ProcEvent{}, fmt.Errorf("%w: proc event: nlmsg_len %d exceeds the %d bytes received", ErrTruncated, h.Len, len(msg))
	}
	switch h.Type {
	case nlmsgNoop, nlmsgError, nlmsgOverrun:
		return ProcEvent{}, fmt.Errorf("proc event: %w", controlError(h.Type, msg))
	}
	if err := checkTrailing(msg, int(h.Len)); err != nil {
		return ProcEvent{}, fmt.Errorf("proc event: %w", err)
	}

	body := msg[nlmsgHdrLen:h.Len]
	if len(body) < cnMsgLen {
		return ProcEvent{}, fmt.Errorf("%w: proc event: cn_msg needs %d bytes, have %d", ErrTruncated, cnMsgLen, len(body))
	}
	idx := binary.LittleEndian.Uint32(body[0:4])
	val := binary.LittleEndian.Uint32(body[4:8])
	if idx != cnIdxProc || val != cnValProc {
		return ProcEvent{}, fmt.Errorf("%w: connector id %d:%d is not the process connector", ErrMalformed, idx, val)
	}
	n := int(binary.LittleEndian.Uint16(body[16:18]))
	data := body[cnMsgLen:]
	if n > len(data) {
		return ProcEvent{}, fmt.Errorf("%w: proc event: cn_msg.len %d exceeds the %d bytes after it", ErrTruncated, n, len(data))
	}
	data = data[:n]
	if len(data) < procHeaderLen {
		return ProcEvent{}, fmt.Errorf("%w: proc event needs %d bytes, cn_msg.len is %d", ErrTruncated, procHeaderLen, len(data))
	}

	e := ProcEvent{
		What:      binary.LittleEndian.Uint32(data[0:4]),
		CPU:       binary.LittleEndian.Uint32(data[4:8]),
		Timestamp: binary.LittleEndian.Uint64(data[8:16]),
	}
	k, ok := procKinds[e.What]
	if !ok {
		e.Kind = ProcUnknown
		return e, nil
	}
	u := data[procHeaderLen:]
	if len(u) < k.size {
		return ProcEvent{}, fmt.Errorf("%w: proc %s event needs %d bytes, has %d", ErrTruncated, k.kind, procHeaderLen+k.size, len(data))
	}
	e.Kind = k.kind
	u32 := func(i int) uint32 { return binary.LittleEndian.Uint32(u[4*i:]) }
	i32 := func(i int) int32 { return int32(u32(i)) }

	switch e.What {
	case procEventNone:
		e.Err = u32(0)
	case procEventFork:
		e.ParentPID, e.ParentTGID = i32(0), i32(1)
		e.ChildPID, e.ChildTGID = i32(2), i32(3)
	case procEventExec, procEventSID:
		e.PID, e.TGID = i32(0), i32(1)
	case procEventUID, procEventGID:
		e.PID, e.TGID = i32(0), i32(1)
		e.RealID, e.EffectiveID = u32(2), u32(3)
	case procEventPtrace:
		e.PID, e.TGID = i32(0), i32(1)
		e.TracerPID, e.TracerTGID = i32(2), i32(3)
	case procEventComm:
		e.PID, e.TGID = i32(0), i32(1)
		comm := u[8 : 8+procCommLen]
		if i := bytes.IndexByte(comm, 0); i >= 0 {
			comm = comm[:i]
		}
		e.Comm = string(comm)
	case procEventCoredump:
		e.PID, e.TGID = i32(0), i32(1)
		e.ParentPID, e.ParentTGID = i32(2), i32(3)
	case procEventExit:
		e.PID, e.TGID = i32(0), i32(1)
		e.ExitCode, e.ExitSignal = u32(2), u32(3)
		e.ParentPID, e.ParentTGID = i32(4), i32(5)
	}
	return e, nil
}

// checkTrailing checks the lengths of any messages after the first one
// (of first bytes) in a datagram: each needs a whole header and a length
// that fits. Up to 3 bytes of alignment padding may end the datagram.
func checkTrailing(msg []byte, first int) error {
	for off := nlAlign(first); off < len(msg); {
		rest := msg[off:]
		if len(rest) < nlmsgHdrLen {
			return fmt.Errorf("%w: %d stray bytes after the message at offset %d", ErrMalformed, len(rest), off)
		}
		l := binary.LittleEndian.Uint32(rest)
		if l < nlmsgHdrLen || uint64(l) > uint64(len(rest)) {
			return fmt.Errorf("%w: message at offset %d has nlmsg_len %d, %d bytes remain", ErrMalformed, off, l, len(rest))
		}
		off += nlAlign(int(l))
	}
	return nil
}

// ProcEventComm returns the comm field of msg, a connector message holding
// a comm event, as a slice of msg (TASK_COMM_LEN bytes, NUL-padded) that a
// caller may rewrite in place (a cut masks names with it); nil for any
// other message.
func ProcEventComm(msg []byte) []byte {
	if e, err := DecodeProcEvent(msg); err != nil || e.Kind != ProcComm {
		return nil
	}
	off := procEventOffset + procHeaderLen + 8
	return msg[off : off+procCommLen : off+procCommLen]
}
