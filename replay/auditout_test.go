package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"

	"proctrail/formats"
	"proctrail/internal/corpus"
)

func TestAppendLogLine(t *testing.T) {
	long := "audit(1700000000.123:4567): " + strings.Repeat("a", MaxAuditdLine)
	for _, tc := range []struct {
		name string
		typ  auparse.AuditMessageType
		text string
		want string
	}{
		{"syscall", auparse.AUDIT_SYSCALL, textSyscall, "type=SYSCALL msg=" + textSyscall + "\n"},
		{"execve hex argument", auparse.AUDIT_EXECVE, textExecve, "type=EXECVE msg=" + textExecve + "\n"},
		{"path", auparse.AUDIT_PATH, textPathNull, "type=PATH msg=" + textPathNull + "\n"},
		{"user record with msg=''", auparse.AUDIT_USER_ACCT, textUserAcct, "type=USER_ACCT msg=" + textUserAcct + "\n"},
		// The kernel ends an EOE with the space after the header; auditd
		// trims it, and so do the decoders.
		{"eoe", auparse.AUDIT_EOE, textEOE, "type=EOE msg=audit(1700000000.123:4567):\n"},
		{"trailing NULs and newlines", auparse.AUDIT_CWD, textCwd + "\n\x00\x00", "type=CWD msg=" + textCwd + "\n"},
		{"newline inside", auparse.AUDIT_USER_CMD, "audit(1.000:1): msg='a\nb\n\nc'", "type=USER_CMD msg=audit(1.000:1): msg='a b  c'\n"},
		{"NUL inside ends the text", auparse.AUDIT_USER_CMD, "audit(1.000:1): msg='a\x00b'", "type=USER_CMD msg=audit(1.000:1): msg='a\n"},
		{"other control bytes pass", auparse.AUDIT_USER, "audit(1.000:1): msg='\t\r\x1b'", "type=USER msg=audit(1.000:1): msg='\t\r\x1b'\n"},
		{"unknown number", 1340, "audit(1.000:1): x=1", "type=UNKNOWN[1340] msg=audit(1.000:1): x=1\n"},
		{"range bound", auparse.AUDIT_LAST_EVENT, "audit(1.000:1): x=1", "type=UNKNOWN[1399] msg=audit(1.000:1): x=1\n"},
		{"empty text", auparse.AUDIT_SYSCALL, "", "type=SYSCALL msg=\n"},
		{"cut like auditd", auparse.AUDIT_EXECVE, long, ("type=EXECVE msg=" + long)[:MaxAuditdLine] + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendLogLine(nil, AuditRecord{Type: tc.typ, Text: tc.text})
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("line (-want +got):\n%s", diff)
			}
			if strings.Count(string(got), "\n") != 1 || len(got) > MaxAuditdLine+1 {
				t.Errorf("%q is not one line of at most %d bytes", got, MaxAuditdLine)
			}
		})
	}
}

func TestAppendLogLineAppends(t *testing.T) {
	dst := []byte("# head\n")
	got := AppendLogLine(dst, AuditRecord{Type: auparse.AUDIT_CWD, Text: textCwd})
	if want := "# head\ntype=CWD msg=" + textCwd + "\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	buf := make([]byte, 0, 1024)
	rec := AuditRecord{Type: auparse.AUDIT_SYSCALL, Text: textSyscall}
	if n := testing.AllocsPerRun(100, func() { buf = AppendLogLine(buf[:0], rec) }); n != 0 {
		t.Errorf("AppendLogLine allocates %v times with room in dst", n)
	}
}

func TestAuditdTypeName(t *testing.T) {
	// Names as audit 3.0.9's audit_msg_type_to_name gives them.
	for typ, want := range map[auparse.AuditMessageType]string{
		auparse.AUDIT_SYSCALL:            "SYSCALL",
		auparse.AUDIT_EXECVE:             "EXECVE",
		auparse.AUDIT_PATH:               "PATH",
		auparse.AUDIT_CWD:                "CWD",
		auparse.AUDIT_PROCTITLE:          "PROCTITLE",
		auparse.AUDIT_EOE:                "EOE",
		auparse.AUDIT_SOCKADDR:           "SOCKADDR",
		auparse.AUDIT_CONFIG_CHANGE:      "CONFIG_CHANGE",
		auparse.AUDIT_BPRM_FCAPS:         "BPRM_FCAPS",
		auparse.AUDIT_OPENAT2:            "OPENAT2",
		auparse.AUDIT_USER:               "USER",
		auparse.AUDIT_LOGIN:              "LOGIN",
		auparse.AUDIT_USER_AUTH:          "USER_AUTH",
		auparse.AUDIT_USER_ACCT:          "USER_ACCT",
		auparse.AUDIT_USER_CMD:           "USER_CMD",
		auparse.AUDIT_USER_START:         "USER_START",
		auparse.AUDIT_USER_END:           "USER_END",
		auparse.AUDIT_USER_LOGIN:         "USER_LOGIN",
		auparse.AUDIT_CRED_ACQ:           "CRED_ACQ",
		auparse.AUDIT_SERVICE_START:      "SERVICE_START",
		auparse.AUDIT_AVC:                "AVC",
		auparse.AUDIT_AA:                 "APPARMOR",
		auparse.AUDIT_ANOM_ABEND:         "ANOM_ABEND",
		auparse.AUDIT_NETFILTER_CFG:      "NETFILTER_CFG",
		auparse.AUDIT_SECCOMP:            "SECCOMP",
		auparse.AUDIT_KERN_MODULE:        "KERN_MODULE",
		auparse.AUDIT_BPF:                "BPF",
		auparse.AUDIT_DM_CTRL:            "DM_CTRL",
		auparse.AUDIT_SET:                "UNKNOWN[1001]",
		auparse.AUDIT_TTY_SET:            "UNKNOWN[1017]",
		auparse.AUDIT_LAST_USER_MSG:      "UNKNOWN[1199]",
		auparse.AUDIT_INTEGRITY_LAST_MSG: "UNKNOWN[1899]",
		auparse.AUDIT_LAST_USER_MSG2:     "UNKNOWN[2999]",
		1340:                             "UNKNOWN[1340]",
		0:                                "UNKNOWN[0]",
		65535:                            "UNKNOWN[65535]",
	} {
		if got := AuditdTypeName(typ); got != want {
			t.Errorf("AuditdTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
	// Every name given reads back to the same number.
	for typ := range auparse.AuditMessageType(3000) {
		name := AuditdTypeName(typ)
		back, err := auparse.GetAuditMessageType(name)
		if err != nil || back != typ {
			t.Errorf("AuditdTypeName(%d) = %q reads back as %d, %v", typ, name, back, err)
		}
	}
}

func TestAuditdLogs(t *testing.T) {
	for typ, want := range map[auparse.AuditMessageType]bool{
		2:                            false, // NLMSG_ERROR
		auparse.AUDIT_GET:            false,
		auparse.AUDIT_SET:            true,
		auparse.AUDIT_USER:           true,
		auparse.AUDIT_WATCH_INS:      false,
		auparse.AUDIT_WATCH_LIST:     false,
		auparse.AUDIT_SIGNAL_INFO:    false,
		auparse.AUDIT_ADD_RULE:       false,
		auparse.AUDIT_LIST_RULES:     false,
		auparse.AUDIT_GET_FEATURE:    false,
		auparse.AUDIT_USER_AUTH:      true,
		auparse.AUDIT_LAST_USER_MSG:  true,
		auparse.AUDIT_DAEMON_START:   false,
		auparse.AUDIT_LAST_DAEMON:    false,
		auparse.AUDIT_SYSCALL:        true,
		auparse.AUDIT_REPLACE:        false,
		auparse.AUDIT_EOE:            true,
		auparse.AUDIT_AVC:            true,
		auparse.AUDIT_LAST_USER_MSG2: true,
		auparse.AUDIT_CONFIG_CHANGE:  true,
		auparse.AUDIT_FEATURE_CHANGE: true,
		2100:                         true, // AUDIT_FIRST_USER_MSG2: user-space anomalies
	} {
		if got := AuditdLogs(typ); got != want {
			t.Errorf("AuditdLogs(%v %d) = %v, want %v", typ, typ, got, want)
		}
	}
}

// rawPart is what a log line holds of the kernel's record: no node=
// prefix, no enriched part, no trailing white space.
func rawPart(line string) string {
	if i := strings.IndexByte(line, 0x1d); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimLeft(line, " \t")
	if rest, ok := strings.CutPrefix(line, "node="); ok {
		_, line, _ = strings.Cut(rest, " ")
	}
	return strings.TrimRight(line, "\x00 \t\n\r\f\v")
}

// TestAppendLogLineRoundTrip reads log lines back both ways a log is read,
// ParseLogLine and a LogReader's synthesized netlink messages, and writes
// them again: the same lines come out, less the node= prefixes and the
// enriched parts.
func TestAppendLogLineRoundTrip(t *testing.T) {
	log := strings.Join([]string{
		"type=SYSCALL msg=" + textSyscall,
		"type=EXECVE msg=" + textExecve,
		"type=CWD msg=" + textCwd,
		"type=PATH msg=" + textPath,
		"type=PATH msg=" + textPathNull,
		"type=PROCTITLE msg=" + textProctitle,
		"type=EOE msg=audit(1700000000.123:4567):",
		"node=box type=USER_ACCT msg=" + textUserAcct,
		"type=SYSCALL msg=" + textDenied + "\x1dARCH=x86_64 SYSCALL=openat AUID=\"unset\" UID=\"root\"",
		"type=UNKNOWN[1340] msg=audit(1700000003.000:4570): x=1",
	}, "\n") + "\n"
	var want []string
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		want = append(want, rawPart(l)+"\n")
	}

	var parsed []string
	for _, l := range strings.SplitAfter(strings.TrimSuffix(log, "\n"), "\n") {
		rec, err := ParseLogLine(l)
		if err != nil {
			t.Fatalf("ParseLogLine(%q): %v", l, err)
		}
		parsed = append(parsed, string(AppendLogLine(nil, rec)))
	}
	if diff := cmp.Diff(want, parsed); diff != "" {
		t.Errorf("through ParseLogLine (-want +got):\n%s", diff)
	}

	var read []string
	lr := NewLogReader(strings.NewReader(log), "audit.log")
	forEach(t, lr.Next, func(r formats.Record) {
		var rec AuditRecord
		if err := decodeAuditShared(&rec, r.Data, nil); err != nil {
			t.Fatal(err)
		}
		read = append(read, string(AppendLogLine(nil, rec)))
	})
	if diff := cmp.Diff(want, read); diff != "" {
		t.Errorf("through a LogReader (-want +got):\n%s", diff)
	}
}

// TestAppendLogLineCorpus writes every record of the public logs again:
// the line must come back as it was written (less node= and enrichment),
// unless the log named the type differently from auditd.
func TestAppendLogLineCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	var records, same, renamed int
	for _, path := range corpus.Files(t) {
		rel, _ := filepath.Rel(dir, path)
		t.Run(rel, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				// yaml files indent their log lines.
				line = strings.TrimLeft(line, " ")
				rec, err := ParseLogLine(line)
				if err != nil {
					continue
				}
				records++
				want := rawPart(line) + "\n"
				got := string(AppendLogLine(nil, rec))
				if got == want {
					same++
					continue
				}
				// The name as written, and the name auditd writes.
				written, _, _ := strings.Cut(strings.TrimPrefix(want, "type="), " ")
				if name := AuditdTypeName(rec.Type); name != written && strings.TrimPrefix(got, "type="+name) == strings.TrimPrefix(want, "type="+written) {
					renamed++
					continue
				}
				t.Errorf("line changed:\n was %q\n now %q", want, got)
			}
		})
	}
	if records == 0 {
		t.Fatal("no records in the corpus")
	}
	t.Logf("%d records: %d written back the same, %d with the type named as auditd names it", records, same, renamed)
}

// FuzzAppendLogLine checks that any record makes one line within auditd's
// bound, and that a line read back with ParseLogLine is written again the
// same (the format is a fixed point) when its text is a record's, from
// "audit(" on, but for what ParseLogLine cannot keep: an enriched part
// (0x1d) and white space at the end of a cut line.
func FuzzAppendLogLine(f *testing.F) {
	for _, text := range []string{textSyscall, textUserAcct, textEOE, "audit(1.000:1): msg='a\nb'", "", "\x00", "audit(1.000:1): a\x1db", " (0.0:0)"} {
		f.Add(uint16(auparse.AUDIT_USER_CMD), text)
	}
	f.Fuzz(func(t *testing.T, typ uint16, text string) {
		line := string(AppendLogLine(nil, AuditRecord{Type: auparse.AuditMessageType(typ), Text: text}))
		if !strings.HasPrefix(line, "type=") || strings.Index(line, "\n") != len(line)-1 || len(line) > MaxAuditdLine+1 {
			t.Fatalf("%q is not one line of at most %d bytes", line, MaxAuditdLine)
		}
		_, body, _ := strings.Cut(line, " msg=")
		rec, err := ParseLogLine(line)
		if err != nil || !strings.HasPrefix(body, "audit(") || strings.Contains(line, "\x1d") {
			return
		}
		want := strings.TrimRight(line, " \t\n\r\f\v") + "\n"
		if again := string(AppendLogLine(nil, rec)); again != want {
			t.Errorf("read back and written again:\n was %q\n now %q", want, again)
		}
	})
}
