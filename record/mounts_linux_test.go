package record

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"proctrail/formats"
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

// movingFIFO makes root's 42/mountinfo a FIFO that serves table to the
// first reader, and before that points 42/ns/mnt at moveTo: a process
// that moves to another mount namespace between the reader's look at its
// link and its open of mountinfo. Before it writes table, mountinfo
// becomes a file holding next, if any, for a second reader (the first
// reader stops at its first short read, and a FIFO's second round could
// reach it). It returns a function that waits for the writer to finish.
func movingFIFO(t *testing.T, root, moveTo, table, next string) func() {
	t.Helper()
	fifo := filepath.Join(root, "42", "mountinfo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "42", "ns", "mnt")
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the reader
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if err := os.Symlink(moveTo, link+".new"); err != nil {
			t.Error(err)
		}
		if err := os.Rename(link+".new", link); err != nil {
			t.Error(err)
		}
		if next != "" {
			if err := os.WriteFile(fifo+".new", []byte(next), 0o644); err != nil {
				t.Error(err)
			}
			if err := os.Rename(fifo+".new", fifo); err != nil {
				t.Error(err)
			}
		}
		f.WriteString(table)
	}()
	return func() { <-done }
}

// TestReadMountsMoved: a process that joins another mount namespace
// while its table is read (runc exec's child, between two setns) does
// not get that namespace's table recorded as the one it left's; the
// table is read again, for the namespace it is in.
func TestReadMountsMoved(t *testing.T) {
	root := fakeProc(t, map[string]string{"42/ns/mnt": "->mnt:[111]"})
	wait := movingFIFO(t, root, "mnt:[222]", "1 0 8:1 / / rw - ext4 /dev/a rw\n", "2 0 8:1 /c / rw - ext4 /dev/a rw\n")
	p := NewProcReader(root)
	var rec formats.ProcRecord
	write, gone, err := p.ReadMounts(42, "setns", &rec)
	wait()
	if err != nil || gone || !write {
		t.Fatalf("ReadMounts = %v, %v, %v; want a record", write, gone, err)
	}
	if ns := rec.MountNS(); ns != 222 || rec.Mountinfo != "2 0 8:1 /c / rw - ext4 /dev/a rw\n" {
		t.Errorf("record of namespace %d with table %q; want 222's, read after the move", ns, rec.Mountinfo)
	}
	if p.mounts.seen(111) {
		t.Error("the table read across the move was noted as namespace 111's")
	}
}

// TestReadMovedTable: the same for the table the first record of a
// namespace carries (an exec's read): a process that moved while it
// was read leaves it out, and the namespace's next record carries it.
func TestReadMovedTable(t *testing.T) {
	root := fakeProc(t, map[string]string{
		"42/stat":   fakeStat(42, "x", 7, 1),
		"42/status": fakeStatus,
		"42/ns/mnt": "->mnt:[111]",
	})
	wait := movingFIFO(t, root, "mnt:[222]", "1 0 8:1 / / rw - ext4 /dev/a rw\n", "")
	p := NewProcReader(root)
	var rec formats.ProcRecord
	err := p.Read(42, formats.ReasonExec, &rec)
	wait()
	if err != nil {
		t.Fatal(err)
	}
	if ns := rec.MountNS(); ns != 111 || rec.Mountinfo != "" {
		t.Errorf("record of namespace %d with table %q; want 111 and no table", ns, rec.Mountinfo)
	}
	if p.mounts.seen(111) || p.mounts.seen(222) {
		t.Error("a table read across the move was noted")
	}
}
