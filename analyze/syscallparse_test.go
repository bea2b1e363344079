package analyze

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
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

// checkSyscallMemo fails when parseSyscall reads a record's body from
// its memo otherwise than it read it the first time: the body again
// behind another header, and after a different body of the same length.
func checkSyscallMemo(t *testing.T, text string) {
	t.Helper()
	read := func(ps *parser, text string) (c call, ids syscallIDs) {
		ps.parseSyscall(&c, &ids, text)
		return c, ids
	}
	body := skipHeader(text)
	other := strings.Repeat("x", len(body)) // a body of the same length
	for _, again := range []string{text, "audit(1.002:3): " + body, "audit(4.005:6): " + other, text} {
		var fresh, ps parser
		wantC, wantIDs := read(&fresh, again)
		read(&ps, text)
		gotC, gotIDs := read(&ps, again)
		if !reflect.DeepEqual(gotC, wantC) || gotIDs != wantIDs {
			t.Errorf("parseSyscall(%q) after parseSyscall(%q) = %+v %+v, want %+v %+v", again, text, gotC, gotIDs, wantC, wantIDs)
		}
	}
}

// checkPathMemo is checkSyscallMemo for parsePath.
func checkPathMemo(t *testing.T, text string) {
	t.Helper()
	read := func(ps *parser, text string) (it pathItem) {
		ps.parsePath(&it, text)
		return it
	}
	body := skipHeader(text)
	other := strings.Repeat("x", len(body))
	for _, again := range []string{text, "audit(1.002:3): " + body, "audit(4.005:6): " + other, text} {
		var fresh, ps parser
		want := read(&fresh, again)
		read(&ps, text)
		if got := read(&ps, again); got != want {
			t.Errorf("parsePath(%q) after parsePath(%q) = %+v, want %+v", again, text, got, want)
		}
	}
}

// syscallKeys are the keys parseSyscall reads.
var syscallKeys = map[string]bool{"arch": true, "syscall": true, "success": true, "exit": true, "a0": true, "a1": true,
	"a2": true, "a3": true, "ppid": true, "pid": true, "uid": true, "comm": true, "exe": true}

// checkSyscallKernel is checkKernel for SYSCALL records, and
// checkSyscallMemo.
func checkSyscallKernel(t *testing.T, text string) bool {
	t.Helper()
	checkSyscallMemo(t, text)
	return checkKernel(t, "SYSCALL", text, syscallKeys,
		func(text string) (syscallRead, bool) { return readSyscall(text, true) },
		func(text string) syscallRead { r, _ := readSyscall(text, false); return r })
}

// checkKernel fails when the kernel-layout reader fast reads a record
// and the pair-by-pair reader slow reads it otherwise, or when fast
// declines a record but returns something (parseSyscallKernel must
// leave the call untouched). Records that repeat one of keys are outside
// the contract (the kernel writes each once): they are only checked for
// not panicking. It returns whether fast read the record.
func checkKernel[T comparable](t *testing.T, typ, text string, keys map[string]bool,
	fast func(string) (T, bool), slow func(string) T) bool {
	t.Helper()
	got, ok := fast(text)
	if !ok {
		var zero T
		if got != zero {
			t.Fatalf("%s record %q declined by the kernel-layout reader, which set %+v", typ, text, got)
		}
		return false
	}
	if repeatsKey(text, keys) {
		return true
	}
	if want := slow(text); want != got {
		t.Fatalf("%s record %q read (-pair by pair +kernel layout):\n%s", typ, text,
			cmp.Diff(want, got, cmp.Exporter(func(reflect.Type) bool { return true })))
	}
	return true
}

// repeatsKey says whether the record has one of keys twice.
func repeatsKey(text string, keys map[string]bool) bool {
	seen := map[string]bool{}
	f := newFields(text)
	for f.next() {
		if keys[f.key] {
			if seen[f.key] {
				return true
			}
			seen[f.key] = true
		}
	}
	return false
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
	{`arch=c000003e syscall=59 success=yes exit=0 a0=10000000000000000 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	{`arch=c000003e syscall=59 success=yes exit=99999999999999999999 a0=1 a1=2 a2=3 a3=4 items=1 ppid=5 pid=6 auid=7 uid=8 comm="x" exe="/x"`, false},
	// A quote, tab or newline among the fields skipped before comm=.
	{`arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 0=" comm=0 exe=00`, false},
	{`arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 tty='x comm=0 exe=00`, false},
	{"arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 tty=x\tpid=9 comm=\"x\" exe=\"/x\"", false},
	// success= and exit= are left out when the call did not return; a
	// record that has them elsewhere is not the kernel's.
	{`arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 comm="x" exe="/x" success=yes exit=3`, false},
	{`arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 tty=x exit=3 comm="x" exe="/x"`, false},
	{`arch=0 syscall=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=0 pid=0 auid=0 uid=0 comm="x" exe="/x" key="success=yes"`, false},
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

// corpusRecords calls fn with the text of every record of type typ in the
// public corpus.
func corpusRecords(t *testing.T, typ auparse.AuditMessageType, fn func(text string)) {
	t.Helper()
	err := filepath.WalkDir(corpus.Dir(t), func(path string, d fs.DirEntry, err error) error {
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
			if err == nil && rec.Type == typ {
				fn(rec.Text)
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKernelLayoutCorpus reads every SYSCALL and PATH record of the
// public corpus both ways; the kernel-layout readers must read most of
// them (the others are interpreted logs).
func TestKernelLayoutCorpus(t *testing.T) {
	for _, tc := range []struct {
		typ   auparse.AuditMessageType
		check func(*testing.T, string) bool
	}{{auparse.AUDIT_SYSCALL, checkSyscallKernel}, {auparse.AUDIT_PATH, checkPathKernel}} {
		var total, fast int
		corpusRecords(t, tc.typ, func(text string) {
			total++
			if tc.check(t, text) {
				fast++
			}
		})
		t.Logf("%d %v records, %d read in the kernel's layout", total, tc.typ, fast)
		if total == 0 || fast*2 < total {
			t.Errorf("%d of %d %v records read in the kernel's layout; want most", fast, total, tc.typ)
		}
	}
}

func FuzzParseSyscallKernel(f *testing.F) {
	for _, tc := range syscallTexts {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) { checkSyscallKernel(t, text) })
}

// pathKeys are the keys parsePath reads.
var pathKeys = map[string]bool{"item": true, "name": true, "nametype": true, "dev": true, "inode": true, "mode": true}

// checkPathKernel is checkKernel for PATH records, and checkPathMemo.
func checkPathKernel(t *testing.T, text string) bool {
	t.Helper()
	checkPathMemo(t, text)
	// parsePathKernel may leave part of an item it declines: parsePath
	// empties it.
	fast := func(text string) (it pathItem, ok bool) {
		if ok = parsePathKernel(&it, text); !ok {
			it = pathItem{}
		}
		return it, ok
	}
	slow := func(text string) (it pathItem) {
		parsePathFields(&it, text)
		return it
	}
	return checkKernel(t, "PATH", text, pathKeys, fast, slow)
}

var pathTexts = []struct {
	text string
	fast bool
}{
	{`audit(1796570685.833:27319750): item=0 name="/etc/passwd" inode=1234 dev=fe:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`, true},
	{`audit(1.2:3): item=1 name="/tmp/" inode=2 dev=00:1f mode=041777 ouid=0 ogid=0 rdev=00:00 obj=system_u:object_r:tmp_t:s0 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0`, true},
	{`item=0 name=(null) nametype=UNKNOWN cap_fp=0`, true},
	{`item=2 name=2F746D702F6120622063 inode=5 dev=08:02 mode=0100600 ouid=1000 ogid=1000 rdev=00:00 nametype=CREATE`, true},
	{`item=0 name="x" nametype=DELETE`, true},
	// Not the kernel's layout: read pair by pair.
	{`name="/x" item=0 nametype=NORMAL`, false},
	{`item=0 name="/x" inode=5 mode=0100644 dev=08:02 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL`, false},
	{"item=0 name=\"/x\" inode=5 dev=08:02\tmode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL", false},
	{`item=0 name='/x' nametype=NORMAL`, false},
	{`item=0 name="/x nametype=NORMAL`, false},
	{`item=x name="/x" nametype=NORMAL`, false},
	{`item=99999999999999999999 name="/x" nametype=NORMAL`, false},
	{`item=0 name="/x"`, false},
	{`item=0 name= nametype=NORMAL`, false},
	{`item=0 name="/x" nametype="NORMAL"`, false},
	// inode= to rdev= are left out when there is no inode; a record that
	// has them after nametype= is not the kernel's.
	{`item=0 name=0 nametype=0 inode=0`, false},
	{`item=0 name="/x" nametype=NORMAL cap_fp=0 x="a"mode=0100644`, false},
	{`item=0 name="/x" nametype=NORMAL dev=08:02`, false},
	{``, false},
}

func TestParsePathKernel(t *testing.T) {
	for _, tc := range pathTexts {
		if got := checkPathKernel(t, tc.text); got != tc.fast {
			t.Errorf("parsePathKernel(%q) read it: %v, want %v", tc.text, got, tc.fast)
		}
	}
}

func FuzzParsePathKernel(f *testing.F) {
	for _, tc := range pathTexts {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) { checkPathKernel(t, text) })
}

// TestSWARScans compares the eight-bytes-at-a-time scans with the
// standard library's, at every length and position, with bytes next to
// the ones looked for in value.
func TestSWARScans(t *testing.T) {
	for n := 0; n <= 20; n++ {
		for at := -1; at < n; at++ {
			for _, c := range []byte{' ', '"', '\'', '\t', '\n', '!', '&', 0x80, 0xa2, 0x1f} {
				b := bytes.Repeat([]byte{'x'}, n)
				if at >= 0 {
					b[at] = c
				}
				s := string(b)
				if got, want := plainTokens(s), !strings.ContainsAny(s, "\"'\t\n"); got != want {
					t.Errorf("plainTokens(%q) = %v, want %v", s, got, want)
				}
				want := strings.IndexByte(s, ' ')
				if want < 0 {
					want = len(s)
				}
				if got := indexSpace(s); got != want {
					t.Errorf("indexSpace(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}

// TestReadsAuditTextCoversParse guards ReadsAuditText against the parser
// itself rather than against the record types some captures hold: an
// execve's event gets a second record of each type from 1000 to 2999, its
// text holding every key the parser's readers look for, and parse must
// read the same with that text emptied unless ReadsAuditText names the
// type. Each type it names must make a difference, or the text would not
// be one the readers take.
func TestReadsAuditTextCoversParse(t *testing.T) {
	const head = "audit(1700000000.000:42): "
	sys := replay.AuditRecord{Type: auparse.AUDIT_SYSCALL, Serial: 42, Text: head +
		`arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="x" exe="/x" key=(null)`}
	// The keys of CWD, PATH, EXECVE, SOCKADDR, OBJ_PID and FD_PAIR.
	text := head + `cwd="/c" item=0 name="/n" inode=5 dev=08:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL ` +
		`argc=1 a0="y" saddr=02000050C0A80001 opid=7 oauid=0 oses=1 obj=unconfined ocomm="z" fd0=3 fd1=4`
	type result struct {
		ok    bool
		c     call
		items []pathItem
	}
	parse := func(typ auparse.AuditMessageType, txt string) result {
		var ps parser
		var r result
		ev := &replay.AuditEvent{Serial: 42, Records: []replay.AuditRecord{sys, {Type: typ, Serial: 42, Text: txt}}}
		r.ok, r.items = ps.parse(&r.c, ev, 1_700_000_000_000_000_000, nil)
		return r
	}
	var named int
	for typ := auparse.AuditMessageType(1000); typ < 3000; typ++ {
		differs := !reflect.DeepEqual(parse(typ, text), parse(typ, ""))
		switch {
		case differs && !ReadsAuditText(typ):
			t.Errorf("parse reads the text of %v records, which ReadsAuditText does not name", typ)
		case !differs && ReadsAuditText(typ) && typ != auparse.AUDIT_SYSCALL: // the event's first SYSCALL is the one read
			t.Errorf("parse read nothing of a %v record's text: the test's text is not one its reader takes", typ)
		case ReadsAuditText(typ):
			named++
		}
	}
	if named != 7 {
		t.Errorf("ReadsAuditText names %d types between 1000 and 2999, want 7", named)
	}
}
