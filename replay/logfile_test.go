package replay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"

	"proctrail/formats"
)

// readLog reads every record of a log, returning "TYPE serial" per record.
func readLog(t *testing.T, l *LogReader) []string {
	t.Helper()
	var got []string
	forEach(t, l.Next, func(rec formats.Record) {
		ar, err := DecodeAuditMessage(rec.Data)
		if err != nil {
			t.Fatalf("record %q does not decode: %v", rec.Data, err)
		}
		got = append(got, ar.Type.String()+" "+ar.Text[strings.IndexByte(ar.Text, ':')+1:strings.IndexByte(ar.Text, ')')])
	})
	return got
}

// TestLogReaderProblems feeds every kind of line a user's logs hold and
// checks what is kept, what is skipped, and how each is counted.
func TestLogReaderProblems(t *testing.T) {
	in := strings.Join([]string{
		"# a comment",                    // 1 not a record
		"----",                           // 2 not a record (ausearch)
		"time->Fri Aug  9 22:29:36 2019", // 3 not a record (ausearch)
		"    type=CWD msg=audit(1.001:1): cwd=\"/\"",                                   // 4 kept: indented, as in YAML
		"Nov 26 10:00:00 box audisp: node=box type=CWD msg=audit(1.001:2): cwd=\"/x\"", // 5 kept: syslog prefix
		"type=FROBNICATE msg=audit(1.001:3): x=1",                                      // 6 unknown name: skipped
		"type=UNKNOWN[1999] msg=audit(1.001:4): x=1",                                   // 7 unknown number: kept
		"type=SYSCALL msg=audit(1364481363.2",                                          // 8 truncated header
		"type=SYSCALL",                                                                 // 9 truncated: no msg=
		"",                                                                             // 10 blank: not counted
		"type=EOE msg=audit(1.001:5):",                                                 // 11 kept, no newline after it
	}, "\n")
	l := NewLogReader(strings.NewReader(in), "mixed.log")
	got := readLog(t, l)
	want := []string{"CWD 1", "CWD 2", "UNKNOWN[1999] 4", "EOE 5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	st := l.LogStats()
	if st.Lines != 11 || st.Records != 4 || st.NotRecords != 3 || st.Truncated != 2 || st.UnknownType != 2 || st.UnknownKept != 1 || st.Skipped() != 6 {
		t.Errorf("stats %+v", st)
	}
	var lines []int64
	var kinds []LogProblem
	for _, is := range st.Issues {
		lines = append(lines, is.Line)
		kinds = append(kinds, is.Problem)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 6, 7, 8, 9}, lines); diff != "" {
		t.Errorf("issue lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]LogProblem{NotRecord, NotRecord, NotRecord, UnknownType, UnknownType, Truncated, Truncated}, kinds); diff != "" {
		t.Errorf("issue kinds (-want +got):\n%s", diff)
	}
	d := l.Damage()
	if len(d) != 2 || !strings.Contains(d[0].Err.Error(), "mixed.log") || !strings.Contains(d[0].Err.Error(), "line 8") {
		t.Errorf("damage %v: want the two truncated lines, named by file and line", d)
	}
}

func gzipBytes(t *testing.T, parts ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range parts { // one gzip member each, as concatenated .gz files are
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(p))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestLogReaderGzip(t *testing.T) {
	z := gzipBytes(t, "type=CWD msg=audit(1.001:1): cwd=\"/\"\n", "type=CWD msg=audit(1.002:2): cwd=\"/\"\n")
	l := NewLogReader(bytes.NewReader(z), "audit.log.1.gz")
	if got := readLog(t, l); !cmp.Equal(got, []string{"CWD 1", "CWD 2"}) {
		t.Errorf("records %q", got)
	}
	if st := l.LogStats(); !st.Gzip || st.Records != 2 {
		t.Errorf("stats %+v", st)
	}

	// A gzip file cut short (copied while written): the records before
	// the cut are read, the cut is damage, not an error.
	big := strings.Repeat("type=CWD msg=audit(1.001:1): cwd=\"/a/long/enough/path\"\n", 2000)
	z = gzipBytes(t, big)
	l = NewLogReader(bytes.NewReader(z[:len(z)/2]), "cut.gz")
	got := readLog(t, l)
	if len(got) == 0 || len(got) >= 2000 {
		t.Errorf("read %d records of a half gzip file", len(got))
	}
	if d := l.Damage(); len(d) != 1 || !errors.Is(d[0].Err, ErrTruncated) {
		t.Errorf("damage %v: want one truncation", d)
	}
}

func TestSniff(t *testing.T) {
	var capture bytes.Buffer
	w, _ := formats.NewWriter(&capture, nil)
	w.Close()
	for _, tc := range []struct {
		name string
		head []byte
		want FileKind
	}{
		{"capture", capture.Bytes(), KindCapture},
		{"gzip", gzipBytes(t, "type=EOE msg=audit(1.1:1):\n"), KindLog},
		{"log", []byte("type=EOE msg=audit(1.1:1):\n"), KindLog},
		{"comments first", []byte("# laurel test\n#\n"), KindLog},
		{"enriched", []byte("type=EOE msg=audit(1.1:1): \x1dX=1\n"), KindLog},
		{"binary", []byte("\x00\x01\x02garbage"), KindUnknown},
		{"empty", nil, KindUnknown},
	} {
		if got := Sniff(tc.head); got != tc.want {
			t.Errorf("%s: Sniff = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestStreamDetectsByContent gives logs and captures names that lie: the
// content decides. Rotated logs, one gzip-compressed, merge by time.
func TestStreamDetectsByContent(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	capturePath := writeFile(t, dir, "audit.log", formats.Header{CaptureID: "c"}, []int64{t0}, 0)
	logPath := filepath.Join(dir, "trace.zst")
	os.WriteFile(logPath, []byte("type=CWD msg=audit(1767225601.000:2): cwd=\"/\"\ntype=EOE msg=audit(1767225601.000:2):\n"), 0o600)
	rotated := filepath.Join(dir, "audit.log.1")
	os.WriteFile(rotated, gzipBytes(t, "type=CWD msg=audit(1767225600.500:1): cwd=\"/\"\ntype=EOE msg=audit(1767225600.500:1):\n"), 0o600)

	s, err := Open([]string{logPath, capturePath, rotated}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	forEach(t, s.Next, func(m *Message) {
		got = append(got, m.Source.String()+" "+filepath.Base(m.File))
	})
	want := []string{"procfs audit.log", "audit audit.log.1", "audit audit.log.1", "audit trace.zst", "audit trace.zst"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if logs := s.Info().Logs; len(logs) != 2 || logs[0].Records+logs[1].Records != 4 {
		t.Errorf("logs %+v", logs)
	}
}

func TestStreamLogWithoutRecords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte("# nothing here\nhello\n"), 0o600)
	s, err := Open([]string{p}, nil)
	if err == nil {
		for err == nil {
			_, err = s.NextEvent()
		}
		s.Close()
	}
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "no audit record in 2 lines") || !strings.Contains(err.Error(), p) {
		t.Errorf("err = %v; want an error naming the file and saying it has no audit record", err)
	}
}
