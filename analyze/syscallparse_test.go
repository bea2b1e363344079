package analyze

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"

	"proctrail/internal/corpus"
	"proctrail/replay"
)

// syscallRead is what parseSyscall takes from a SYSCALL record.
type syscallRead struct {
	A                    [4]uint64
	Exit                 int64
	ExitNum, Success     bool
	Comm, Exe            string
	PID, PPID, UID, Arch string
	Num                  string
}

func readSyscall(text string, kernel bool) (syscallRead, bool) {
	var c call
	var ids syscallIDs
	var arch, num string
	ok := true
	if kernel {
		arch, num, ok = parseSyscallKernel(&c, &ids, text)
	} else {
		arch, num = parseSyscallFields(&c, &ids, text)
	}
	return syscallRead{c.a, c.exit, c.exitNum, c.success, c.comm, c.exe, ids.pid, ids.ppid, ids.uid, arch, num}, ok
}

// syscallKeys are the keys parseSyscall reads.
var syscallKeys = map[string]bool{"arch": true, "syscall": true, "success": true, "exit": true, "a0": true, "a1": true,
	"a2": true, "a3": true, "ppid": true, "pid": true, "uid": true, "comm": true, "exe": true}

// checkSyscallKernel fails when parseSyscallKernel reads a record and
// parseSyscallFields reads it otherwise, or when it leaves the call
// touched after declining one. Records that repeat a wanted key are
// outside the contract (the kernel writes each once): they are only
// checked for not panicking. It returns whether the fast path read it.
func checkSyscallKernel(t *testing.T, text string) bool {
	t.Helper()
	got, ok := readSyscall(text, true)
	if !ok {
		if got != (syscallRead{}) {
			t.Fatalf("parseSyscallKernel(%q) declined but set %+v", text, got)
		}
		return false
	}
	seen := map[string]bool{}
	f := newFields(text)
	for f.next() {
		if syscallKeys[f.key] {
			if seen[f.key] {
				return true
			}
			seen[f.key] = true
		}
	}
	want, _ := readSyscall(text, false)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("SYSCALL record %q read (-pair by pair +kernel layout):\n%s", text, diff)
	}
	return true
}

var syscallTexts = []struct {
	text string
	fast bool // read by the kernel-layout path
}{
	{`audit(1796570685.833:27319750): arch=c000003e syscall=46 success=yes exit=60 a0=b a1=e68ec5a64b0 a2=0 a3=0 items=0 ppid=21041 pid=21043 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="pt-cur" exe="/tmp/pt-cur" key=(null)`, true},
	{`audit(1.2:3): arch=c000003e syscall=231 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=2 auid=4294967295 uid=1000 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="true" exe="/usr/bin/true" subj=unconfined key="proctrail"`, true},
	{`arch=c000003e syscall=257 success=no exit=-2 a0=ffffff9c a1=7ffd a2=80000 a3=0 items=1 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=3 comm=6120622063 exe=(null) key=(null)`, true},
	{`audit(1.2:3): arch=40000003 syscall=11 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=5 pid=6 auid=7 uid=8 gid=9 euid=1 suid=1 fsuid=1 egid=1 sgid=1 fsgid=1 tty=(none) ses=1 comm="sh" exe="/bin/sh"`, true},
	// Not the kernel's layout: read pair by pair.
	{`audit(1.2:3): syscall=59 arch=c000003e success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{"arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6\tauid=7 uid=8 comm=\"x\" exe=\"/x\"", false},
	{`arch=c000003e syscall=59 success=maybe exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=x a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=-6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm='x' exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 gid=0`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x"`, false},
	{`arch=c000003e syscall=59 success=yes exit= a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=0 a0=10000000000000000 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, true},
	{`arch=c000003e syscall=59 success=yes exit=99999999999999999999 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{``, false},
	{`audit(1.2:3`, false},
}

func TestParseSyscallKernel(t *testing.T) {
	for _, tc := range syscallTexts {
		if got := checkSyscallKernel(t, tc.text); got != tc.fast {
			t.Errorf("parseSyscallKernel(%q) read it: %v, want %v", tc.text, got, tc.fast)
		}
	}
}

// TestParseSyscallKernelCorpus reads every SYSCALL record of the public
// corpus both ways; the kernel-layout path must read most of them.
func TestParseSyscallKernelCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	var total, fast int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			rec, err := replay.ParseLogLine(strings.TrimLeft(sc.Text(), " "))
			if err != nil || rec.Type != auparse.AUDIT_SYSCALL {
				continue
			}
			total++
			if checkSyscallKernel(t, rec.Text) {
				fast++
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d SYSCALL records, %d read in the kernel's layout", total, fast)
	if total == 0 || fast*2 < total {
		t.Errorf("%d of %d SYSCALL records read in the kernel's layout; want most", fast, total)
	}
}

func FuzzParseSyscallKernel(f *testing.F) {
	for _, tc := range syscallTexts {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) { checkSyscallKernel(t, text) })
}
