package replay

import (
	"proctrail/internal/corpus"

	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"

	"proctrail/formats"
)

const sampleLog = `type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=10 pid=11 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="cat" exe="/bin/cat" key=(null)
type=EXECVE msg=audit(1364481363.243:24287): argc=2 a0="cat" a1="/etc/passwd"` + "\x1d" + `ARGC=2
node=box type=CWD msg=audit(1364481363.243:24287): cwd="/root"

this line is not a record
type=EOE msg=audit(1364481363.243:24287): 
`

func TestLogReader(t *testing.T) {
	l := NewLogReader(strings.NewReader(sampleLog), "audit.log")
	var got []string
	forEach(t, l.Next, func(rec formats.Record) {
		ar, err := DecodeAuditMessage(rec.Data)
		if err != nil {
			t.Fatalf("synthesized message does not decode: %v", err)
		}
		if rec.Time != 1364481363243000000 || ar.Serial != 24287 {
			t.Errorf("record time %d serial %d", rec.Time, ar.Serial)
		}
		got = append(got, ar.Type.String()+" "+ar.Text)
	})
	want := []string{
		`SYSCALL audit(1364481363.243:24287): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=10 pid=11 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="cat" exe="/bin/cat" key=(null)`,
		`EXECVE audit(1364481363.243:24287): argc=2 a0="cat" a1="/etc/passwd"`,
		`CWD audit(1364481363.243:24287): cwd="/root"`,
		`EOE audit(1364481363.243:24287):`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	st := l.LogStats()
	if st.Lines != 6 || st.Records != 4 || st.NotRecords != 1 || st.Truncated != 0 || st.UnknownType != 0 {
		t.Errorf("stats %+v: want 6 lines, 4 records, 1 not a record", st)
	}
	if len(st.Issues) != 1 || st.Issues[0].Line != 5 || st.Issues[0].Problem != NotRecord {
		t.Errorf("issues %+v: want line 5, not a record", st.Issues)
	}
	if d := l.Damage(); len(d) != 0 {
		t.Errorf("damage %v: a line that is not a record is not damage", d)
	}
}

func TestLogReaderOverlongLine(t *testing.T) {
	in := "type=CWD msg=audit(1.001:1): cwd=\"/" + strings.Repeat("x", MaxLogLine) + "\"\ntype=CWD msg=audit(1.001:2): cwd=\"/\"\n"
	l := NewLogReader(strings.NewReader(in), "big.log")
	rec, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	if ar, _ := DecodeAuditMessage(rec.Data); ar.Serial != 2 {
		t.Errorf("read serial %d, want the line after the overlong one", ar.Serial)
	}
	if d := l.Damage(); len(d) != 1 || !errors.Is(d[0].Err, formats.ErrTooLarge) {
		t.Errorf("damage %v", d)
	}
}

func TestStreamReadsLogs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte(sampleLog), 0o600)
	s, err := Open([]string{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var events []Event
	forEach(t, s.NextEvent, func(ev Event) { events = append(events, ev) })
	if len(events) != 1 || len(events[0].Audit.Records) != 3 || !events[0].Audit.Complete {
		t.Fatalf("events %+v: want one complete event of 3 records", events)
	}
	if argv, _ := events[0].Audit.Argv(); !cmp.Equal(argv, []string{"cat", "/etc/passwd"}) {
		t.Errorf("argv %q", argv)
	}
}

// TestLogReaderCorpus reads every corpus file as a log and replays the
// logs through the stream: never a panic, never an error.
func TestLogReaderCorpus(t *testing.T) {
	var files, records, damaged int
	for _, p := range corpus.Files(t) {
		func() {
			files++
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			l := NewLogReader(f, p)
			for {
				rec, err := l.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("%s: %v", p, err)
					break
				}
				records++
				if _, err := DecodeAuditMessage(rec.Data); err != nil {
					damaged++
				}
			}
			damaged += len(l.Damage())
		}()
	}
	if files == 0 || records == 0 {
		t.Fatalf("corpus: %d files, %d records", files, records)
	}
	t.Logf("corpus: %d files, %d records, %d lines or records skipped", files, records, damaged)
}

func FuzzLogReader(f *testing.F) {
	f.Add([]byte(sampleLog))
	f.Add([]byte("type=UNKNOWN[1334] msg=audit(1.1:1): x=1\nnode= type=\n"))
	f.Add([]byte("# comment\n  type=CWD msg=audit(1.1:1): cwd=\"/\"\nx audispd: node=a type=EOE msg=audit(1.1:1): \ntype=NOPE msg=audit(1.1:2): \n"))
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(sampleLog))
	zw.Close()
	f.Add(z.Bytes())
	f.Add(z.Bytes()[:z.Len()/2])
	f.Fuzz(func(t *testing.T, in []byte) {
		l := NewLogReader(strings.NewReader(string(in)), "fuzz.log")
		for i := 0; ; i++ {
			rec, err := l.Next()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("Next: %v", err)
				}
				st := l.LogStats()
				if st.Records != int64(i) || st.Records+st.Skipped() > st.Lines || st.UnknownKept > st.UnknownType || len(st.Issues) > MaxLogIssues {
					t.Fatalf("stats %+v after %d records", st, i)
				}
				return
			}
			if rec.Source != formats.SourceAudit || len(rec.Data) < 16 {
				t.Fatalf("record %+v", rec)
			}
			DecodeAuditMessage(rec.Data)
			if i > len(in) {
				t.Fatal("more records than bytes")
			}
		}
	})
}

// TestAuditOnly: a stream of auditd logs and captures imported from them
// has no connector; one with a recorded capture may.
func TestAuditOnly(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	os.WriteFile(log, []byte(sampleLog), 0o600)
	imported := writeFile(t, dir, "imported.zst", formats.Header{CaptureID: "i", ImportedFrom: []string{"audit.log"}}, []int64{1}, 0)
	recorded := writeFile(t, dir, "recorded.zst", formats.Header{CaptureID: "r"}, []int64{1}, 0)
	for _, tt := range []struct {
		files []string
		want  bool
	}{
		{[]string{log}, true},
		{[]string{imported}, true},
		{[]string{log, imported}, true},
		{[]string{recorded}, false},
		{[]string{log, recorded}, false},
	} {
		s, err := Open(tt.files, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Info().AuditOnly; got != tt.want {
			t.Errorf("%q: AuditOnly %v, want %v", tt.files, got, tt.want)
		}
		s.Close()
	}
}
