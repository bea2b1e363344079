package record

import (
	"encoding/binary"
	"testing"
)

// auditMsg is a netlink message of audit type typ holding text.
func auditMsg(typ uint16, text string) []byte {
	b := make([]byte, nlmsgHdrLen, nlmsgHdrLen+len(text))
	binary.LittleEndian.PutUint32(b, uint32(nlmsgHdrLen+len(text)))
	binary.LittleEndian.PutUint16(b[4:], typ)
	return append(b, text...)
}

// TestMountCalls: the recorder reads a mount table again after a
// successful mount, umount2, pivot_root, setns or unshare, and after
// nothing else, without allocating on the receive loop.
func TestMountCalls(t *testing.T) {
	m := newMountCalls()
	head := "audit(1796541015.862:6494387): arch=c000003e syscall="
	tail := " a0=1 a1=2 a2=3 a3=4 items=2 ppid=2922 pid=2941 auid=4294967295 uid=0 comm=\"runc:[2:INIT]\" key=\"proctrail\""
	for _, c := range []struct {
		nr, success string
		typ         uint16
		want        string
	}{
		{"155", "yes", auditSyscallType, "pivot_root"},
		{"165", "yes", auditSyscallType, "mount"},
		{"166", "yes", auditSyscallType, "umount2"},
		{"308", "yes", auditSyscallType, "setns"},
		{"272", "yes", auditSyscallType, "unshare"},
		{"165", "no", auditSyscallType, ""},   // failed: nothing changed
		{"59", "yes", auditSyscallType, ""},   // execve
		{"1650", "yes", auditSyscallType, ""}, // no such call
		{"165", "yes", 1302, ""},              // a PATH record
	} {
		msg := auditMsg(c.typ, head+c.nr+" success="+c.success+" exit=0"+tail)
		call, pid, ppid, ok := m.match(msg)
		if call != c.want || ok != (c.want != "") || (ok && (pid != 2941 || ppid != 2922)) {
			t.Errorf("syscall=%s success=%s type %d: %q %d %d %v, want %q", c.nr, c.success, c.typ, call, pid, ppid, ok, c.want)
		}
	}
	// The 32-bit ABI's numbers: i386's mount is 21.
	if call, _, _, _ := m.match(auditMsg(auditSyscallType, "audit(1.2:3): arch=40000003 syscall=21 success=yes exit=0 ppid=1 pid=2 ")); call != "mount" {
		t.Errorf("i386 mount: %q", call)
	}
	msg := auditMsg(auditSyscallType, head+"165 success=yes exit=0"+tail)
	if n := testing.AllocsPerRun(100, func() { m.match(msg) }); n != 0 {
		t.Errorf("match allocates %.0f times", n)
	}
	for _, c := range []struct {
		text string
		ok   bool
	}{{" pid=", false}, {" pid=12x ", false}, {" pid=99999999999999999999 ", false}, {" pid=7", true}} {
		if _, ok := fieldUint([]byte(c.text), keyPID, 10); ok != c.ok {
			t.Errorf("fieldUint(%q): %v", c.text, ok)
		}
	}
}
