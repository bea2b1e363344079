package replay

import (
	"proctrail/internal/corpus"

	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"
)

func execveEvent(texts ...string) AuditEvent {
	ev := AuditEvent{Serial: 1}
	for _, text := range texts {
		ev.Records = append(ev.Records, AuditRecord{Type: auparse.AUDIT_EXECVE, Serial: 1, Text: "audit(1700000000.123:1): " + text})
	}
	return ev
}

func hexOf(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }

func TestArgv(t *testing.T) {
	long := strings.Repeat("a", 3000) + " " + strings.Repeat("b", 3000)
	tests := []struct {
		name string
		ev   AuditEvent
		want []string
	}{
		{"quoted and hex", execveEvent(`argc=3 a0="ls" a1="-l" a2=2F746D702F6120622063`), []string{"ls", "-l", "/tmp/a b c"}},
		// auparse drops "" values and then fails to find a1.
		{"empty argument", execveEvent(`argc=2 a0="true" a1=""`), []string{"true", ""}},
		{"argc 0", execveEvent(`argc=0`), []string{}},
		{"hex with a newline", execveEvent(`argc=2 a0="sh" a1=` + hexOf("echo x\nid")), []string{"sh", "echo x\nid"}},
		{
			name: "arguments spanning records",
			ev:   execveEvent(`argc=3 a0="a" a1="b"`, ` a2="c"`),
			want: []string{"a", "b", "c"},
		},
		{
			// As kernel/auditsc.c audit_log_execve_info writes an argument
			// too long for one record: forced to hex, aN_len counting hex
			// digits, chunks in later records.
			name: "long argument split in hex chunks",
			ev: execveEvent(
				`argc=3 a0="/bin/echo" a1_len=`+strconv.Itoa(2*len(long))+` a1[0]=`+hexOf(long[:2500]),
				` a1[1]=`+hexOf(long[2500:5000]),
				` a1[2]=`+hexOf(long[5000:])+` a2="end"`),
			want: []string{"/bin/echo", long, "end"},
		},
		{
			name: "split in quoted chunks",
			ev:   execveEvent(`argc=1 a0_len=6 a0[0]="abc"`, ` a0[1]="def"`),
			want: []string{"abcdef"},
		},
		{
			name: "other records ignored",
			ev: AuditEvent{Records: []AuditRecord{
				{Type: auparse.AUDIT_SYSCALL, Text: textSyscall},
				{Type: auparse.AUDIT_EXECVE, Text: textExecve},
				{Type: auparse.AUDIT_PROCTITLE, Text: textProctitle},
			}},
			want: []string{"ls", "-l", "/tmp/a b c"},
		},
		{"no EXECVE record", AuditEvent{Records: []AuditRecord{{Type: auparse.AUDIT_SYSCALL, Text: textSyscall}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.Argv()
			if err != nil {
				t.Fatalf("Argv: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Argv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArgvErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   AuditEvent
	}{
		{"no argc", execveEvent(`a0="ls"`)},
		{"bad argc", execveEvent(`argc=x a0="ls"`)},
		{"negative argc", execveEvent(`argc=-1`)},
		{"argument missing", execveEvent(`argc=3 a0="a" a2="c"`)},
		{"lost last record", execveEvent(`argc=3 a0="a" a1="b"`)},
		{"chunk missing", execveEvent(`argc=1 a0_len=6 a0[0]="ab"`, ` a0[2]="ef"`)},
		{"chunks shorter than aN_len", execveEvent(`argc=1 a0_len=12 a0[0]=414243`)},
		{"whole and split", execveEvent(`argc=1 a0="x" a0[0]="y"`)},
		{"only aN_len", execveEvent(`argc=1 a0_len=4`)},
		{"bad aN_len", execveEvent(`argc=1 a0_len=zz a0[0]="y"`)},
		{"huge argc", execveEvent(`argc=2000000000 a0="x"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ev.Argv()
			if !errors.Is(err, ErrMalformed) || got != nil {
				t.Errorf("Argv = %q, %v; want nil, ErrMalformed", got, err)
			}
		})
	}
}

// The long-argument example of the public corpus (laurel's
// record-execve-long.txt: an 8192-byte argument in three hex chunks).
func TestArgvCorpusLong(t *testing.T) {
	path := filepath.Join(corpus.Dir(t), "threathunters-io__laurel/src/testdata/record-execve-long.txt")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing under CI: %v", err)
		}
		t.Skipf("public audit corpus not present: %v", err)
	}
	r := NewReassembler(nil)
	for _, line := range strings.Split(string(b), "\n") {
		if rec, err := ParseLogLine(line); err == nil {
			r.Push(0, rec)
		}
	}
	r.Flush()
	ev, ok := r.Pop()
	if !ok {
		t.Fatal("no event")
	}
	argv, err := ev.Argv()
	if err != nil {
		t.Fatalf("Argv: %v", err)
	}
	if len(argv) != 2 || argv[0] != "/bin/echo" || len(argv[1]) != 8192 {
		t.Errorf("argv has %d args, want /bin/echo and one of 8192 bytes", len(argv))
	}
}
