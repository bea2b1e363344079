package replay

import (
	"proctrail/internal/corpus"

	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// auditMsg builds a NETLINK_AUDIT message. The kernel's unicast to auditd
// sets nlmsg_len to the text length alone (quirk); its multicast copy to the
// whole message.
func auditMsg(typ uint16, text string, quirk bool) []byte {
	n := uint32(nlmsgHdrLen + len(text))
	if quirk {
		n = uint32(len(text))
	}
	b := binary.LittleEndian.AppendUint32(nil, n)
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	return append(b, text...)
}

var ignoreBody = cmpopts.IgnoreUnexported(AuditRecord{})

// Realistic record texts of one execve event (x86_64, Linux 6.x) and a
// userspace record.
const (
	textSyscall   = `audit(1700000000.123:4567): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c2e0b6a0 a1=55d0c2e0b5e0 a2=55d0c2e08e10 a3=8 items=2 ppid=1234 pid=5678 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="ls" exe="/usr/bin/ls" subj=unconfined key="exec"`
	textExecve    = `audit(1700000000.123:4567): argc=3 a0="ls" a1="-l" a2=2F746D702F6120622063`
	textCwd       = `audit(1700000000.123:4567): cwd="/home/user"`
	textPath      = `audit(1700000000.123:4567): item=0 name=2F746D702F612062 inode=1234 dev=08:01 mode=0100644 ouid=1000 ogid=1000 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`
	textPathNull  = `audit(1700000000.123:4567): item=1 name=(null) inode=131 dev=08:01 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`
	textProctitle = `audit(1700000000.123:4567): proctitle=6C73002D6C002F746D702F6120622063`
	textEOE       = `audit(1700000000.123:4567): `
	textUserAcct  = `audit(1700000001.000:4568): pid=999 uid=0 auid=1000 ses=3 subj=unconfined msg='op=PAM:accounting grantors=pam_permit acct="root" exe="/usr/bin/sudo" hostname=? addr=? terminal=/dev/pts/0 res=success'`
	textDenied    = `audit(1700000002.500:4569): arch=c000003e syscall=257 success=no exit=-13 a0=ffffff9c a1=7ffd1c0a a2=0 a3=0 items=1 ppid=1 pid=2 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="cat" exe="/usr/bin/cat" key=(null)`
)

var t0 = time.Date(2023, 11, 14, 22, 13, 20, 123e6, time.UTC)

func TestDecodeAuditMessage(t *testing.T) {
	tests := []struct {
		name       string
		typ        auparse.AuditMessageType
		text       string
		wantRecord AuditRecord
		wantFields map[string]string
	}{
		{
			name: "SYSCALL execve",
			typ:  auparse.AUDIT_SYSCALL,
			text: textSyscall,
			wantFields: map[string]string{
				"arch": "x86_64", "syscall": "execve", "result": "success", "exit": "0",
				"a0": "55d0c2e0b6a0", "a1": "55d0c2e0b5e0", "a2": "55d0c2e08e10", "a3": "8",
				"items": "2", "ppid": "1234", "pid": "5678", "auid": "1000", "uid": "1000",
				"gid": "1000", "euid": "1000", "suid": "1000", "fsuid": "1000", "egid": "1000",
				"sgid": "1000", "fsgid": "1000", "tty": "pts0", "ses": "3", "comm": "ls",
				"exe": "/usr/bin/ls", "subj_user": "unconfined",
			},
		},
		{
			name: "SYSCALL denied openat",
			typ:  auparse.AUDIT_SYSCALL,
			text: textDenied,
			wantRecord: AuditRecord{Type: auparse.AUDIT_SYSCALL, Serial: 4569,
				Time: time.Date(2023, 11, 14, 22, 13, 22, 500e6, time.UTC), Text: textDenied},
			wantFields: map[string]string{
				"arch": "x86_64", "syscall": "openat", "result": "fail", "exit": "EACCES",
				"a0": "ffffff9c", "a1": "7ffd1c0a", "a2": "0", "a3": "0",
				"items": "1", "ppid": "1", "pid": "2", "auid": "unset", "uid": "0",
				"gid": "0", "euid": "0", "suid": "0", "fsuid": "0", "egid": "0",
				"sgid": "0", "fsgid": "0", "tty": "(none)", "ses": "unset", "comm": "cat",
				"exe": "/usr/bin/cat",
			},
		},
		{
			name:       "EXECVE with a hex argument",
			typ:        auparse.AUDIT_EXECVE,
			text:       textExecve,
			wantFields: map[string]string{"argc": "3", "a0": "ls", "a1": "-l", "a2": "/tmp/a b c"},
		},
		{
			name:       "CWD",
			typ:        auparse.AUDIT_CWD,
			text:       textCwd,
			wantFields: map[string]string{"cwd": "/home/user"},
		},
		{
			name: "PATH with a hex name",
			typ:  auparse.AUDIT_PATH,
			text: textPath,
			wantFields: map[string]string{
				"item": "0", "name": "/tmp/a b", "inode": "1234", "dev": "08:01", "mode": "0100644",
				"ouid": "1000", "ogid": "1000", "rdev": "00:00", "nametype": "NORMAL",
				"cap_fp": "0", "cap_fi": "0", "cap_fe": "0", "cap_fver": "0", "cap_frootid": "0",
			},
		},
		{
			name: "PATH name=(null) is dropped",
			typ:  auparse.AUDIT_PATH,
			text: textPathNull,
			wantFields: map[string]string{
				"item": "1", "inode": "131", "dev": "08:01", "mode": "040755",
				"ouid": "0", "ogid": "0", "rdev": "00:00", "nametype": "PARENT",
				"cap_fp": "0", "cap_fi": "0", "cap_fe": "0", "cap_fver": "0", "cap_frootid": "0",
			},
		},
		{
			// auparse joins the NUL-separated argv with spaces: argument
			// boundaries are lost (use EXECVE for argv).
			name:       "PROCTITLE",
			typ:        auparse.AUDIT_PROCTITLE,
			text:       textProctitle,
			wantFields: map[string]string{"proctitle": "ls -l /tmp/a b c"},
		},
		{
			name:       "EOE",
			typ:        auparse.AUDIT_EOE,
			text:       textEOE,
			wantRecord: AuditRecord{Type: auparse.AUDIT_EOE, Serial: 4567, Time: t0, Text: strings.TrimSpace(textEOE)},
			wantFields: map[string]string{},
		},
		{
			name: "USER_ACCT flattens msg",
			typ:  auparse.AUDIT_USER_ACCT,
			text: textUserAcct,
			wantRecord: AuditRecord{Type: auparse.AUDIT_USER_ACCT, Serial: 4568,
				Time: time.Date(2023, 11, 14, 22, 13, 21, 0, time.UTC), Text: textUserAcct},
			wantFields: map[string]string{
				"pid": "999", "uid": "0", "auid": "1000", "ses": "3", "subj_user": "unconfined",
				"op": "PAM:accounting", "grantors": "pam_permit", "acct": "root",
				"exe": "/usr/bin/sudo", "terminal": "/dev/pts/0", "result": "success",
			},
		},
	}
	for _, tt := range tests {
		want := tt.wantRecord
		if want.Text == "" {
			want = AuditRecord{Type: tt.typ, Serial: 4567, Time: t0, Text: tt.text}
		}
		for _, variant := range []struct {
			name string
			msg  []byte
		}{
			{"multicast", auditMsg(uint16(tt.typ), tt.text, false)},
			{"unicast length quirk", auditMsg(uint16(tt.typ), tt.text, true)},
			{"trailing NUL and newline", auditMsg(uint16(tt.typ), tt.text+"\n\x00\x00", false)},
		} {
			t.Run(tt.name+"/"+variant.name, func(t *testing.T) {
				got, err := DecodeAuditMessage(variant.msg)
				if err != nil {
					t.Fatalf("DecodeAuditMessage: %v", err)
				}
				if diff := cmp.Diff(want, got, ignoreBody); diff != "" {
					t.Errorf("record mismatch (-want +got):\n%s", diff)
				}
				fields, err := got.Fields()
				if err != nil {
					t.Fatalf("Fields: %v", err)
				}
				if diff := cmp.Diff(tt.wantFields, fields); diff != "" {
					t.Errorf("Fields mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestDecodeAuditMessageErrors(t *testing.T) {
	tooLong := auditMsg(uint16(auparse.AUDIT_SYSCALL), textSyscall, false)
	binary.LittleEndian.PutUint32(tooLong, uint32(len(tooLong)+1))
	status := auditMsg(uint16(auparse.AUDIT_GET), "\x01\x00\x00\x00\x01\x00\x00\x00", false)
	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"half a header", make([]byte, 10), ErrTruncated},
		{"nlmsg_len beyond the datagram", tooLong, ErrTruncated},
		{"NLMSG_ERROR ack", auditMsg(nlmsgError, "\x00\x00\x00\x00", false), ErrControl},
		{"NLMSG_DONE", auditMsg(nlmsgDone, "", false), ErrControl},
		{"AUDIT_GET status reply", status, ErrControl},
		{"no text", auditMsg(uint16(auparse.AUDIT_SYSCALL), "", false), ErrMalformed},
		{"garbage", auditMsg(uint16(auparse.AUDIT_SYSCALL), "\xff\xfegarbage", false), ErrMalformed},
		{"no audit header", auditMsg(uint16(auparse.AUDIT_SYSCALL), "arch=c000003e syscall=59", false), ErrMalformed},
		{"serial beyond 32 bits", auditMsg(uint16(auparse.AUDIT_SYSCALL), "audit(1.000:4294967296): a=b", false), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAuditMessage(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeAuditMessage error = %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(AuditRecord{}, got, ignoreBody); diff != "" || got.body != nil {
				t.Errorf("record on error not zero (-want +got):\n%s", diff)
			}
		})
	}
}

// What auparse does with records it cannot enrich: the whole record fails,
// and RawFields still gives the pairs as written.
func TestFieldsAuparseFailures(t *testing.T) {
	tests := []struct {
		name    string
		typ     auparse.AuditMessageType
		text    string
		wantRaw map[string]string
	}{
		{
			// The kernel splits an argument longer than its record space
			// into a1[0], a1[1]… announced by a1_len; auparse looks for a1.
			name: "EXECVE with a split argument",
			typ:  auparse.AUDIT_EXECVE,
			text: `audit(1615150974.493:21028): argc=3 a0="/bin/echo" a1_len=8 a1[0]=41424344`,
			wantRaw: map[string]string{
				"argc": "3", "a0": "/bin/echo", "a1_len": "8", "a1[0]": "41424344",
			},
		},
		{
			// The continuation record of a split argument has no argc.
			name:    "EXECVE continuation",
			typ:     auparse.AUDIT_EXECVE,
			text:    `audit(1615150974.493:21028):  a1[1]=45464748 a2="x"`,
			wantRaw: map[string]string{"a1[1]": "45464748", "a2": "x"},
		},
		{
			name:    "SYSCALL without arch",
			typ:     auparse.AUDIT_SYSCALL,
			text:    `audit(1700000000.123:4567): syscall=59 success=yes`,
			wantRaw: map[string]string{"syscall": "59", "success": "yes"},
		},
		{
			name:    "SOCKADDR too short",
			typ:     auparse.AUDIT_SOCKADDR,
			text:    `audit(1700000000.123:4567): saddr=0200`,
			wantRaw: map[string]string{"saddr": "0200"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := DecodeAuditMessage(auditMsg(uint16(tt.typ), tt.text, false))
			if err != nil {
				t.Fatalf("DecodeAuditMessage: %v", err)
			}
			f, err := rec.Fields()
			if !errors.Is(err, ErrMalformed) || f != nil {
				t.Errorf("Fields = %v, %v; want nil, ErrMalformed", f, err)
			}
			if diff := cmp.Diff(tt.wantRaw, rec.RawFields()); diff != "" {
				t.Errorf("RawFields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRawFields(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"header only", "audit(1.000:1):", map[string]string{}},
		{"key kept", textSyscall[:28] + `comm="ls" key="exec" name=(null)`,
			map[string]string{"comm": "ls", "key": "exec", "name": "(null)"}},
		{"hex not decoded", textPath[:28] + `name=2F746D70`, map[string]string{"name": "2F746D70"}},
		{"user msg flattened", textUserAcct,
			map[string]string{"pid": "999", "uid": "0", "auid": "1000", "ses": "3", "subj": "unconfined",
				"op": "PAM:accounting", "grantors": "pam_permit", "acct": "root", "exe": "/usr/bin/sudo",
				"hostname": "?", "addr": "?", "terminal": "/dev/pts/0", "res": "success"}},
		{"avc words skipped", `audit(1.000:1): avc:  denied  { read } for  pid=5 comm="x" scontext=u:r:t:s0 tclass=file permissive=0`,
			map[string]string{"pid": "5", "comm": "x", "scontext": "u:r:t:s0", "tclass": "file", "permissive": "0"}},
		{"unterminated quote", `audit(1.000:1): a="b c`, map[string]string{"a": "b c"}},
		{"empty value and stray =", `audit(1.000:1): a= =b c`, map[string]string{"a": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AuditRecord{Text: tt.text}.RawFields()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RawFields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		name       string
		line       string
		want       AuditRecord
		wantFields map[string]string
	}{
		{
			name:       "raw",
			line:       "type=CWD msg=" + textCwd + "\n",
			want:       AuditRecord{Type: auparse.AUDIT_CWD, Serial: 4567, Time: t0, Text: textCwd},
			wantFields: map[string]string{"cwd": "/home/user"},
		},
		{
			name:       "CRLF",
			line:       "type=CWD msg=" + textCwd + "\r\n",
			want:       AuditRecord{Type: auparse.AUDIT_CWD, Serial: 4567, Time: t0, Text: textCwd},
			wantFields: map[string]string{"cwd": "/home/user"},
		},
		{
			name: "enriched",
			line: "type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-2 a0=7fffd19c5592 a1=0 a2=7fffd19c4b50 a3=a items=1 ppid=2686 pid=3538 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"cat\" exe=\"/bin/cat\" key=\"sshd_config\"\x1dARCH=x86_64 SYSCALL=open AUID=\"user\" UID=\"user\"",
			want: AuditRecord{Type: auparse.AUDIT_SYSCALL, Serial: 24287,
				Time: time.Date(2013, 3, 28, 14, 36, 3, 243e6, time.UTC),
				Text: `audit(1364481363.243:24287): arch=c000003e syscall=2 success=no exit=-2 a0=7fffd19c5592 a1=0 a2=7fffd19c4b50 a3=a items=1 ppid=2686 pid=3538 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="cat" exe="/bin/cat" key="sshd_config"`},
			wantFields: map[string]string{
				"arch": "x86_64", "syscall": "open", "result": "fail", "exit": "ENOENT",
				"a0": "7fffd19c5592", "a1": "0", "a2": "7fffd19c4b50", "a3": "a", "items": "1",
				"ppid": "2686", "pid": "3538", "auid": "1000", "uid": "1000", "gid": "1000",
				"euid": "1000", "suid": "1000", "fsuid": "1000", "egid": "1000", "sgid": "1000",
				"fsgid": "1000", "tty": "pts0", "ses": "1", "comm": "cat", "exe": "/bin/cat",
			},
		},
		{
			name:       "node prefix",
			line:       "node=web01 type=EOE msg=audit(1700000000.123:4567): ",
			want:       AuditRecord{Type: auparse.AUDIT_EOE, Serial: 4567, Time: t0, Node: "web01", Text: "audit(1700000000.123:4567):"},
			wantFields: map[string]string{},
		},
		{
			name:       "unknown type number",
			line:       "type=UNKNOWN[1420] msg=audit(1700000000.123:4567): op=x",
			want:       AuditRecord{Type: 1420, Serial: 4567, Time: t0, Text: "audit(1700000000.123:4567): op=x"},
			wantFields: map[string]string{"op": "x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLogLine(tt.line)
			if err != nil {
				t.Fatalf("ParseLogLine: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, ignoreBody); diff != "" {
				t.Errorf("record mismatch (-want +got):\n%s", diff)
			}
			f, err := got.Fields()
			if err != nil {
				t.Fatalf("Fields: %v", err)
			}
			if diff := cmp.Diff(tt.wantFields, f); diff != "" {
				t.Errorf("Fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLogLineErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"\n",
		"----",
		"time->Fri Aug  9 22:29:36 2019",
		"# comment",
		"type=NOSUCHTYPE msg=audit(1.000:1): a=b",
		"type=SYSCALL",
		"type=SYSCALL msg=",
		"type=SYSCALL msg=audit(",
		"type=SYSCALL msg=audit(x.y:z): a=b",
		"node=lonely",
		"xxxxxSYSCALL msg=audit(1.000:1): a=b",
		"type= msg=audit(1.000:1): a=b",
	} {
		t.Run(fmt.Sprintf("%q", line), func(t *testing.T) {
			got, err := ParseLogLine(line)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseLogLine error = %v, want ErrMalformed", err)
			}
			if diff := cmp.Diff(AuditRecord{}, got, ignoreBody); diff != "" || got.body != nil {
				t.Errorf("record on error not zero (-want +got):\n%s", diff)
			}
		})
	}
}

// Fields parses once; copies share the result; concurrent callers are
// safe (run with -race).
func TestFieldsConcurrent(t *testing.T) {
	rec, err := DecodeAuditMessage(auditMsg(uint16(auparse.AUDIT_SYSCALL), textSyscall, false))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]map[string]string, 8)
	for i := range got {
		wg.Go(func() {
			f, err := rec.Fields()
			if err != nil {
				t.Error(err)
			}
			got[i] = f
		})
	}
	wg.Wait()
	for i := range got {
		if diff := cmp.Diff(got[0], got[i]); diff != "" {
			t.Errorf("call %d differs (-first +this):\n%s", i, diff)
		}
	}
}

// A record built by hand, without a decoder, parses its Text on demand.
func TestFieldsHandBuilt(t *testing.T) {
	f, err := AuditRecord{Type: auparse.AUDIT_CWD, Text: textCwd}.Fields()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"cwd": "/home/user"}, f); diff != "" {
		t.Errorf("Fields mismatch (-want +got):\n%s", diff)
	}
	if f, err := (AuditRecord{}).Fields(); err == nil || f != nil {
		t.Errorf("zero record Fields = %v, %v; want nil and an error", f, err)
	}
}

// TestParseLogLineCorpus runs ParseLogLine and Fields over every line of
// every log in the public corpus. Errors are expected (comments, ausearch
// output, deliberately broken files, yaml); only a panic fails.
func TestParseLogLineCorpus(t *testing.T) {
	corpusDir := corpus.Dir(t)
	var files []string
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		if strings.HasSuffix(path, ".log") {
			files = append(files, path)
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "type=") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no log files under %s", corpusDir)
	}
	var lines, parsed, fieldErrs, argvErrs int
	for _, path := range files {
		rel, _ := filepath.Rel(corpusDir, path)
		t.Run(rel, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			r := NewReassembler(nil)
			var now int64
			for sc.Scan() {
				lines++
				// yaml files indent their log lines.
				line := strings.TrimLeft(sc.Text(), " ")
				rec, err := ParseLogLine(line)
				if err != nil {
					continue
				}
				parsed++
				if _, err := rec.Fields(); err != nil {
					fieldErrs++
				}
				rec.RawFields()
				now += int64(time.Millisecond)
				r.Push(now, rec)
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			r.Flush()
			for {
				ev, ok := r.Pop()
				if !ok {
					break
				}
				if _, err := ev.Argv(); err != nil {
					argvErrs++
				}
			}
		})
	}
	t.Logf("%d files, %d lines: %d parsed (%d failed), %d with Fields errors, %d events with Argv errors",
		len(files), lines, parsed, lines-parsed, fieldErrs, argvErrs)
}

func TestTrimText(t *testing.T) {
	// TrimSpace and trailing NULs, to a fixed point.
	ref := func(s string) string {
		for {
			u := strings.TrimRight(strings.TrimSpace(s), "\x00")
			if u == s {
				return s
			}
			s = u
		}
	}
	for _, s := range []string{"", "\x00", "a", "a \x00\f\v\r\n\t", " a b\x00 \x00", "\x00\x00", "é\xff\x85 ", "x\x00y",
		" x\x00\u0085", "\u0085 x\u00a0\x00\u2028\x00", "x\u0085\x00 \u0085", "\x00 x", "x\xc2"} {
		if got, want := trimText(s), ref(s); got != want {
			t.Errorf("trimText(%q) = %q, want %q", s, got, want)
		}
	}
	// Every string of up to four pieces: ASCII spaces, NUL, text, the two
	// spaces of two bytes, another space, a lone byte of each kind.
	pieces := []string{" ", "\t", "\r", "\x00", "a", "\u0085", "\u00a0", "\u2028", "\xc2", "\x85", "é"}
	var walk func(s string, n int)
	walk = func(s string, n int) {
		if got, want := trimText(s), ref(s); got != want {
			t.Errorf("trimText(%q) = %q, want %q", s, got, want)
		}
		if n == 0 {
			return
		}
		for _, p := range pieces {
			walk(s+p, n-1)
		}
	}
	walk("", 4)
}
