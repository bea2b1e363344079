package replay

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// procMsg builds a process connector datagram as the kernel sends it
// (cn_proc.c: nlmsg type NLMSG_DONE, cn_msg.len = sizeof(struct
// proc_event) = 40) with the given what, cpu, timestamp and union words.
func procMsg(what, cpu uint32, ts uint64, union ...uint32) []byte {
	var u [24]byte
	for i, w := range union {
		binary.LittleEndian.PutUint32(u[4*i:], w)
	}
	return procMsgRaw(what, cpu, ts, u[:])
}

// procMsgRaw is procMsg with the union given as bytes.
func procMsgRaw(what, cpu uint32, ts uint64, union []byte) []byte {
	ev := binary.LittleEndian.AppendUint32(nil, what)
	ev = binary.LittleEndian.AppendUint32(ev, cpu)
	ev = binary.LittleEndian.AppendUint64(ev, ts)
	ev = append(ev, union...)

	b := binary.LittleEndian.AppendUint32(nil, uint32(nlmsgHdrLen+cnMsgLen+len(ev)))
	b = binary.LittleEndian.AppendUint16(b, nlmsgDone)
	b = binary.LittleEndian.AppendUint16(b, 0) // flags
	b = binary.LittleEndian.AppendUint32(b, 7) // seq
	b = binary.LittleEndian.AppendUint32(b, 0) // pid: the kernel
	b = binary.LittleEndian.AppendUint32(b, 1) // CN_IDX_PROC
	b = binary.LittleEndian.AppendUint32(b, 1) // CN_VAL_PROC
	b = binary.LittleEndian.AppendUint32(b, 7) // seq
	b = binary.LittleEndian.AppendUint32(b, 0) // ack
	b = binary.LittleEndian.AppendUint16(b, uint16(len(ev)))
	b = binary.LittleEndian.AppendUint16(b, 0) // flags
	return append(b, ev...)
}

func commUnion(pid, tgid uint32, comm string) []byte {
	u := make([]byte, 24)
	binary.LittleEndian.PutUint32(u[0:], pid)
	binary.LittleEndian.PutUint32(u[4:], tgid)
	copy(u[8:], comm)
	return u
}

const ts = 123456789012

// neg is -n as the kernel's u32 field holds it.
func neg(n int32) uint32 { return uint32(-n) }

func TestDecodeProcEvent(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		want ProcEvent
	}{
		{
			name: "ack",
			msg:  procMsg(procEventNone, neg(1), ts, 0),
			want: ProcEvent{Kind: ProcNone, CPU: 0xffffffff, Timestamp: ts},
		},
		{
			name: "ack error",
			msg:  procMsg(procEventNone, neg(1), ts, 1),
			want: ProcEvent{Kind: ProcNone, CPU: 0xffffffff, Timestamp: ts, Err: 1},
		},
		{
			name: "fork process",
			msg:  procMsg(procEventFork, 3, ts, 100, 100, 200, 200),
			want: ProcEvent{Kind: ProcFork, What: 1, CPU: 3, Timestamp: ts,
				ParentPID: 100, ParentTGID: 100, ChildPID: 200, ChildTGID: 200},
		},
		{
			name: "fork thread",
			msg:  procMsg(procEventFork, 0, ts, 1, 1, 201, 200),
			want: ProcEvent{Kind: ProcFork, What: 1, Timestamp: ts,
				ParentPID: 1, ParentTGID: 1, ChildPID: 201, ChildTGID: 200},
		},
		{
			name: "exec",
			msg:  procMsg(procEventExec, 1, ts, 200, 200),
			want: ProcEvent{Kind: ProcExec, What: 2, CPU: 1, Timestamp: ts, PID: 200, TGID: 200},
		},
		{
			name: "uid",
			msg:  procMsg(procEventUID, 0, ts, 200, 200, 1000, 0),
			want: ProcEvent{Kind: ProcUID, What: 4, Timestamp: ts, PID: 200, TGID: 200, RealID: 1000, EffectiveID: 0},
		},
		{
			name: "gid",
			msg:  procMsg(procEventGID, 0, ts, 200, 200, 100, 27),
			want: ProcEvent{Kind: ProcGID, What: 0x40, Timestamp: ts, PID: 200, TGID: 200, RealID: 100, EffectiveID: 27},
		},
		{
			name: "sid",
			msg:  procMsg(procEventSID, 0, ts, 200, 200),
			want: ProcEvent{Kind: ProcSID, What: 0x80, Timestamp: ts, PID: 200, TGID: 200},
		},
		{
			name: "ptrace attach",
			msg:  procMsg(procEventPtrace, 0, ts, 200, 200, 300, 300),
			want: ProcEvent{Kind: ProcPtrace, What: 0x100, Timestamp: ts, PID: 200, TGID: 200, TracerPID: 300, TracerTGID: 300},
		},
		{
			name: "ptrace detach",
			msg:  procMsg(procEventPtrace, 0, ts, 200, 200, 0, 0),
			want: ProcEvent{Kind: ProcPtrace, What: 0x100, Timestamp: ts, PID: 200, TGID: 200},
		},
		{
			name: "comm",
			msg:  procMsgRaw(procEventComm, 0, ts, commUnion(201, 200, "worker\x00junk")),
			want: ProcEvent{Kind: ProcComm, What: 0x200, Timestamp: ts, PID: 201, TGID: 200, Comm: "worker"},
		},
		{
			name: "comm full 16 bytes without NUL",
			msg:  procMsgRaw(procEventComm, 0, ts, commUnion(201, 200, "0123456789abcdef")),
			want: ProcEvent{Kind: ProcComm, What: 0x200, Timestamp: ts, PID: 201, TGID: 200, Comm: "0123456789abcdef"},
		},
		{
			name: "coredump",
			msg:  procMsg(procEventCoredump, 0, ts, 200, 200, 100, 100),
			want: ProcEvent{Kind: ProcCoredump, What: 0x40000000, Timestamp: ts, PID: 200, TGID: 200, ParentPID: 100, ParentTGID: 100},
		},
		{
			name: "exit",
			msg:  procMsg(procEventExit, 2, ts, 200, 200, 3<<8, 17, 100, 100),
			want: ProcEvent{Kind: ProcExit, What: 0x80000000, CPU: 2, Timestamp: ts, PID: 200, TGID: 200,
				ExitCode: 3 << 8, ExitSignal: 17, ParentPID: 100, ParentTGID: 100},
		},
		{
			name: "exit thread",
			msg:  procMsg(procEventExit, 2, ts, 201, 200, 0, neg(1), 1, 1),
			want: ProcEvent{Kind: ProcExit, What: 0x80000000, CPU: 2, Timestamp: ts, PID: 201, TGID: 200,
				ExitSignal: 0xffffffff, ParentPID: 1, ParentTGID: 1},
		},
		{
			name: "unknown what",
			msg:  procMsg(0x400, 5, ts, 1, 2, 3, 4),
			want: ProcEvent{Kind: ProcUnknown, What: 0x400, CPU: 5, Timestamp: ts},
		},
		{
			name: "nonzero exit filter bit is unknown",
			msg:  procMsg(0x20000000, 5, ts, 1, 2, 3, 4),
			want: ProcEvent{Kind: ProcUnknown, What: 0x20000000, CPU: 5, Timestamp: ts},
		},
		{
			name: "two messages in one datagram",
			msg:  append(procMsg(procEventExec, 1, ts, 200, 200), procMsg(procEventExec, 1, ts, 300, 300)...),
			want: ProcEvent{Kind: ProcExec, What: 2, CPU: 1, Timestamp: ts, PID: 200, TGID: 200},
		},
		{
			name: "alignment padding after an unaligned message",
			msg: func() []byte {
				b := procMsg(procEventExec, 1, ts, 200, 200)
				binary.LittleEndian.PutUint32(b, uint32(len(b)-2))
				binary.LittleEndian.PutUint16(b[32:], 38)
				return b
			}(),
			want: ProcEvent{Kind: ProcExec, What: 2, CPU: 1, Timestamp: ts, PID: 200, TGID: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeProcEvent(tt.msg)
			if err != nil {
				t.Fatalf("DecodeProcEvent: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DecodeProcEvent mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeProcEventErrors(t *testing.T) {
	exec := procMsg(procEventExec, 1, ts, 200, 200)
	withLen := func(b []byte, off int, v uint32, size int) []byte {
		b = append([]byte(nil), b...)
		if size == 2 {
			binary.LittleEndian.PutUint16(b[off:], uint16(v))
		} else {
			binary.LittleEndian.PutUint32(b[off:], v)
		}
		return b
	}
	// A fork event whose cn_msg.len says only 8 bytes of the union came.
	shortFork := procMsgRaw(procEventFork, 0, ts, make([]byte, 8))
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"nil", nil, ErrTruncated},
		{"nlmsg_len too large", withLen(exec, 0, 200, 4), ErrTruncated},
		{"nlmsg_len below header", withLen(exec, 0, 8, 4), ErrMalformed},
		{"cn_msg.len too large", withLen(exec, 32, 41, 2), ErrTruncated},
		{"cn_msg.len below proc_event header", withLen(exec, 32, 12, 2), ErrTruncated},
		{"union shorter than the kind needs", shortFork, ErrTruncated},
		{"foreign connector idx", withLen(exec, 16, 2, 4), ErrMalformed},
		{"foreign connector val", withLen(exec, 20, 9, 4), ErrMalformed},
		{"netlink error", withLen(exec, 4, nlmsgError, 2), ErrControl},
		{"netlink overrun", withLen(exec, 4, nlmsgOverrun, 2), ErrControl},
		{"stray bytes after the message", append(append([]byte(nil), exec...), 0, 0, 0), ErrMalformed},
		{"bad second header", append(append([]byte(nil), exec...), withLen(exec, 0, 500, 4)...), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeProcEvent(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeProcEvent error = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(ProcEvent{}, got); diff != "" {
				t.Errorf("DecodeProcEvent result on error not zero (-want +got):\n%s", diff)
			}
		})
	}
}

// Every prefix of every kind of message fails cleanly, and a prefix
// with nlmsg_len and cn_msg.len patched to fit fails or decodes, never
// panics.
func TestDecodeProcEventTruncated(t *testing.T) {
	msgs := map[string][]byte{
		"fork": procMsg(procEventFork, 3, ts, 100, 100, 200, 200),
		"comm": procMsgRaw(procEventComm, 0, ts, commUnion(201, 200, "worker")),
		"exit": procMsg(procEventExit, 2, ts, 200, 200, 3<<8, 17, 100, 100),
		"ack":  procMsg(procEventNone, 0, ts, 0),
	}
	for name, full := range msgs {
		t.Run(name, func(t *testing.T) {
			for n := range len(full) {
				got, err := DecodeProcEvent(full[:n])
				if err == nil {
					t.Fatalf("prefix of %d bytes decoded without error: %+v", n, got)
				}
				if !errors.Is(err, ErrTruncated) {
					t.Errorf("prefix of %d bytes: error %v does not wrap ErrTruncated", n, err)
				}
				// The same prefix with consistent lengths.
				if n >= nlmsgHdrLen+cnMsgLen {
					b := append([]byte(nil), full[:n]...)
					binary.LittleEndian.PutUint32(b, uint32(n))
					binary.LittleEndian.PutUint16(b[32:], uint16(n-nlmsgHdrLen-cnMsgLen))
					if ev, err := DecodeProcEvent(b); (err == nil) != (ev.Kind != "") {
						t.Errorf("patched prefix of %d bytes: kind %q with error %v", n, ev.Kind, err)
					}
				}
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		raw        uint32
		code, sig  int
		coreDumped bool
	}{
		{"exit 0", 0, 0, 0, false},
		{"exit 3", 3 << 8, 3, 0, false},
		{"exit 255", 255 << 8, 255, 0, false},
		{"SIGKILL", 9, 0, 9, false},
		{"SIGSEGV core", 11 | 0x80, 0, 11, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ProcEvent{Kind: ProcExit, ExitCode: tt.raw}
			code, sig := e.ExitStatus()
			got := []any{code, sig, e.CoreDumped()}
			want := []any{tt.code, tt.sig, tt.coreDumped}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ExitStatus, CoreDumped mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcEventComm(t *testing.T) {
	u := binary.LittleEndian.AppendUint32(nil, 41)
	u = binary.LittleEndian.AppendUint32(u, 40)
	u = append(u, "secret-name\x00\x00\x00\x00\x00"...)
	msg := procMsgRaw(procEventComm, 0, 0, u)
	c := ProcEventComm(msg)
	if string(c) != "secret-name\x00\x00\x00\x00\x00" {
		t.Fatalf("comm field %q", c)
	}
	copy(c, "******")
	if e, err := DecodeProcEvent(msg); err != nil || e.Comm != "******-name" || e.PID != 41 {
		t.Errorf("after a rewrite: %+v, %v", e, err)
	}
	if ProcEventComm(procMsg(procEventFork, 0, 0, 1, 1, 2, 2)) != nil || ProcEventComm([]byte("short")) != nil {
		t.Error("a comm field in a message without one")
	}
}
