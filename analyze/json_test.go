package analyze

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/google/go-cmp/cmp"

	"proctrail/analyze/internal/spool"
	"proctrail/internal/corpus"
	"proctrail/replay"
)

// checkJSONMatches fails when WriteJSON's bytes differ from those of the
// encoding/json renderer it replaced.
func checkJSONMatches(t *testing.T, m *Model) {
	t.Helper()
	var got, want bytes.Buffer
	if err := WriteJSON(&got, m); err != nil {
		t.Fatal(err)
	}
	if err := refWriteJSON(&want, m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("WriteJSON differs from encoding/json (-want +got):\n%s", cmp.Diff(want.String(), got.String()))
	}
}

// hostileModel holds what encoding/json escapes: control characters,
// quotes, HTML characters, invalid UTF-8, U+2028, and times outside the
// usual range.
func hostileModel() *Model {
	s := "a\x00\x01\b\f\n\r\t\x1f\"\\<>&\x7f é \xff\xfe \u2028\u2029 \U0001F600 \xe2\x80"
	deep := &Process{PID: 9, Start: -1, End: math.MaxInt64, UID: -1, Threads: []Thread{{TID: 9, Start: math.MinInt64 + 1}}}
	return &Model{
		Capture:    Capture{Files: []string{s}, Host: s, Kernel: "", Start: 0, End: 1, ConnectorMessages: math.MaxUint64, UnreadableBytes: -5},
		Containers: []Container{{ID: s, Runtime: "docker", Rootfs: s, Processes: 3}},
		Processes: []*Process{{
			PID: -1, PPID: math.MaxInt32, Start: 1_700_000_000_123_456_789, Exited: true, Signal: 9, CoreDumped: true, UID: 0,
			Comm: s, Exe: s, Argv: []string{s, ""}, Cwd: s, BeforeCapture: true, Command: true,
			Execs:   []Exec{{Time: 5, Exe: s, Cwd: s, Fileless: true}, {Argv: []string{}}},
			Threads: []Thread{{TID: 1, Start: 2}, {TID: 3, End: 4}},
			Files: []File{{Path: s, ContainerPath: s, Filesystem: s, Op: "rename", Mode: "rw", Open: 1, Close: 2, To: s, ToContainerPath: s, Error: "EACCES"}, {Path: "/x", Op: "open"},
				{Path: s, Op: "chmod", Target: s, Perm: s, Owner: s, Type: s, Flags: s, Size: s, Serial: math.MaxUint64},
				{Path: "/" + s, Op: "mount", Perm: "6777", Size: "-12", Target: s, Flags: s},
				{Path: "/y", Op: s, Perm: "04755"}},
			Signals: []Signal{{Op: s, Signal: 99, PID: -5, TargetPID: 2, TargetComm: s, Error: s, Request: s},
				{Op: "ptrace", Request: s, TargetPID: math.MaxInt32, TargetStart: -1}, {Op: "kill", Signal: -3}},
			Container: s,
			Children:  []*Process{{PID: 2, Exited: true, ExitCode: 3, Children: []*Process{deep}}, {PID: 4, UID: 5}},
		}, {PID: 7}},
	}
}

// TestWriteJSONMatchesEncodingJSON checks the streaming encoder against
// encoding/json on hostile strings, the rich script, and every golden
// capture.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	t.Run("empty", func(t *testing.T) { checkJSONMatches(t, &Model{}) })
	t.Run("hostile", func(t *testing.T) { checkJSONMatches(t, hostileModel()) })
	t.Run("deep", func(t *testing.T) {
		// Deeper than the encoder's indentation string is long.
		root := &Process{PID: 1}
		for p, i := root, 2; i < 80; i++ {
			c := &Process{PID: int32(i), Argv: []string{"x"}}
			p.Children = append(p.Children, c, &Process{PID: int32(1000 + i)})
			p = c
		}
		checkJSONMatches(t, &Model{Processes: []*Process{root}})
	})
	t.Run("rich", func(t *testing.T) {
		m, err := Build(richScript(t).source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		checkJSONMatches(t, m)
	})
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze")
	}
	for _, c := range captures {
		t.Run(filepath.Base(filepath.Dir(c)), func(t *testing.T) {
			checkJSONMatches(t, buildCapture(t, []string{c}, &Options{}, false))
		})
	}
}

// TestWriteJSONLargeStreams checks a document larger than the encoder's
// chunk, written in pieces, and that a write error is returned.
func TestWriteJSONLargeStreams(t *testing.T) {
	m := hostileModel()
	for i := range 2000 {
		p := &Process{PID: int32(i), Threads: []Thread{{TID: int32(i)}}, Files: []File{{Path: "/p", Op: "open", Open: int64(i) * 1e6}}}
		switch i % 700 {
		case 5: // many files
			for j := range 10000 {
				p.Files = append(p.Files, File{Path: fmt.Sprint("/f", j), Op: "open"})
			}
		case 6: // a deep subtree
			for c, j := p, 0; j < 300; j++ {
				c.Children = append(c.Children, &Process{PID: int32(j)})
				c = c.Children[0]
			}
		}
		m.Processes = append(m.Processes, p)
	}
	for _, procs := range []int{1, 2, 8} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			checkJSONMatches(t, m)
		}()
	}
	w := &failWriter{n: 3}
	if err := WriteJSON(w, m); !errors.Is(err, errWrite) {
		t.Fatalf("WriteJSON to a failing writer: %v, want %v", err, errWrite)
	}
	if w.writes != 4 {
		t.Errorf("WriteJSON wrote %d times after an error, want it to stop", w.writes-4)
	}
}

var errWrite = errors.New("disk full")

type failWriter struct{ n, writes int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > w.n {
		return 0, errWrite
	}
	return len(p), nil
}

// FuzzWriteJSON checks the streaming encoder against encoding/json on
// models built from fuzzed event streams and on fuzzed strings.
func FuzzWriteJSON(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x00\x00\x01\x07\x02\x01\x00\x03\x01\x09\x02\x01\x00\x03\x01"), "a\xff\u2028\x01")
	f.Fuzz(func(t *testing.T, data []byte, s string) {
		m, err := Build(fuzzScript(t, data).source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Capture.Host = s
		if len(m.Processes) > 0 {
			m.Processes[0].Comm = s
			m.Processes[0].Argv = append(m.Processes[0].Argv, s)
		}
		checkJSONMatches(t, m)
	})
}

// checkBuildJSON fails when BuildJSON's bytes differ from WriteJSON's of
// Build's model.
func checkBuildJSON(t *testing.T, src func() EventSource, o *Options) {
	t.Helper()
	m, err := Build(src(), o)
	if err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := WriteJSON(&want, m); err != nil {
		t.Fatal(err)
	}
	c, err := BuildJSON(&got, src(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("BuildJSON differs from Build and WriteJSON (-want +got):\n%s", cmp.Diff(want.String(), got.String()))
	}
	if diff := cmp.Diff(m.Capture, c); diff != "" {
		t.Fatalf("BuildJSON's capture (-want +got):\n%s", diff)
	}
}

// filterOptions returns options with every filter, one at a time and
// together, fitted to m (a pid, a container, a time window inside it).
func filterOptions(m *Model) []*Options {
	var all []*Process
	walk(m.Processes, func(p *Process) { all = append(all, p) })
	var pid int32
	if len(all) > 1 {
		pid = all[len(all)/2].PID
	}
	cont := "zz"
	if len(m.Containers) > 0 {
		cont = m.Containers[0].ID[:6]
	}
	var lo, hi int64 = 1<<63 - 1, 0
	for _, p := range all {
		lo, hi = min(lo, p.Start), max(hi, p.End, p.Start)
	}
	since, until := time.Unix(0, lo+(hi-lo)/3), time.Unix(0, lo+2*(hi-lo)/3)
	return []*Options{
		{Pid: pid},
		{Container: cont},
		{Since: since},
		{Until: until},
		{Since: since, Until: until},
		{Comm: "sh"},
		{PathGlob: "*.txt"},
		{PathGlob: "/tmp/*"},
		{NoFiles: true},
		{NoFiles: true, PathGlob: "/*"},
		{Pid: pid, Comm: "sh", PathGlob: "/*", Since: since},
	}
}

// checkBuildText fails when BuildText's bytes differ from WriteText's of
// Build's model, with and without files.
func checkBuildText(t *testing.T, src func() EventSource, o *Options) {
	t.Helper()
	for _, files := range []bool{false, true} {
		topts := &TextOptions{Files: files}
		m, err := Build(src(), o)
		if err != nil {
			t.Fatal(err)
		}
		var want, got bytes.Buffer
		if err := WriteText(&want, m, topts); err != nil {
			t.Fatal(err)
		}
		c, err := BuildText(&got, src(), o, topts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("files %v: BuildText differs from Build and WriteText (-want +got):\n%s", files, cmp.Diff(want.String(), got.String()))
		}
		if diff := cmp.Diff(m.Capture, c); diff != "" {
			t.Fatalf("BuildText's capture (-want +got):\n%s", diff)
		}
	}
}

func TestBuildJSONMatchesBuild(t *testing.T) {
	t.Run("rich", func(t *testing.T) {
		s := richScript(t)
		checkBuildJSON(t, func() EventSource { return s.source() }, nil)
		checkBuildJSON(t, func() EventSource { return s.source() }, &Options{Comm: "mv"})
		m, err := Build(s.source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range append(filterOptions(m), nil) {
			checkBuildJSON(t, func() EventSource { return s.source() }, o)
			checkBuildText(t, func() EventSource { return s.source() }, o)
		}
	})
	captures, _ := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze")
	}
	// A rotated set replays as one.
	sets := map[string][]string{}
	for _, c := range captures {
		sets[filepath.Dir(c)] = append(sets[filepath.Dir(c)], c)
	}
	for dir, files := range sets {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			var streams []*replay.Stream
			defer func() {
				for _, s := range streams {
					s.Close()
				}
			}()
			src := func() EventSource {
				s, err := replay.Open(files, nil)
				if err != nil {
					t.Fatal(err)
				}
				streams = append(streams, s)
				return s
			}
			checkBuildJSON(t, src, nil)
			checkBuildJSON(t, src, &Options{Cmd: true})
			m, err := Build(src(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range append(filterOptions(m), nil) {
				checkBuildJSON(t, src, o)
				checkBuildText(t, src, o)
				checkAuditTexts(t, files, o)
			}
		})
	}
}

// TestBuildJSONLarge checks BuildJSON on a forest of thousands of
// processes, some with thousands of files, at GOMAXPROCS 1 and 4.
func TestBuildJSONLarge(t *testing.T) {
	s := newScript(t)
	for i := range 3000 {
		pid := int32(100 + i)
		parent := int32(1)
		if i%3 != 0 {
			parent = pid - 1
		}
		s.at(float64(i)).fork(parent, pid)
		s.at(float64(i)).audit(pid, parent, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/w"), pathRec(0, fmt.Sprint("f", i%50), "NORMAL"))
		if i%1000 == 7 {
			for j := range 5000 {
				s.at(float64(i)+0.5).audit(pid, parent, "openat", fmt.Sprintf("exit=%d a0=ffffff9c a2=0", 4+j%20), cwd("/w"), pathRec(0, fmt.Sprint("g", j), "NORMAL"))
			}
		}
		s.at(float64(i)+0.9).exit(pid, pid, 0, 0, parent)
	}
	for _, procs := range []int{1, 4} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			checkBuildJSON(t, func() EventSource { return s.source() }, nil)
		}()
	}
}

// FuzzBuildJSON checks BuildJSON against Build and WriteJSON on fuzzed
// event streams, cycles and reused pids included.
func FuzzBuildJSON(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x00\x00\x01\x07\x02\x01\x00\x03\x01\x09\x02\x01\x00\x03\x01"))
	f.Add(bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, 6))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzScript(t, data)
		checkBuildJSON(t, func() EventSource { return s.source() }, nil)
		// The same bytes with the file accesses in a temporary file.
		var want, got bytes.Buffer
		if _, err := BuildJSON(&want, s.source(), nil); err != nil {
			t.Fatal(err)
		}
		withSpoolSizes(t, spool.Sizes{Mem: 512, Read: 256})
		for _, kept := range []int{0, 2} {
			withKeptStates(t, kept)
			got.Reset()
			if _, err := BuildJSON(&got, s.source(), nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("spooled to a file, %d States kept, BuildJSON differs (-want +got):\n%s", kept, cmp.Diff(want.String(), got.String()))
			}
		}
		// The same bytes with every process kept in memory.
		got.Reset()
		withKeepInMemory(t)
		if _, err := BuildJSON(&got, s.source(), nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("without retiring, BuildJSON differs (-want +got):\n%s", cmp.Diff(want.String(), got.String()))
		}
	})
}

// checkAuditTexts fails when BuildJSON's output on files differs with a
// Stream that keeps only the texts ReadsAuditText names.
func checkAuditTexts(t *testing.T, files []string, o *Options) {
	t.Helper()
	var out [2]bytes.Buffer
	for i, texts := range []func(auparse.AuditMessageType) bool{nil, ReadsAuditText} {
		s, err := replay.Open(files, &replay.Options{AuditTexts: texts})
		if err != nil {
			t.Fatal(err)
		}
		_, err = BuildJSON(&out[i], s, o)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
		t.Fatalf("BuildJSON with AuditTexts: ReadsAuditText differs (-all texts +those read):\n%s", cmp.Diff(out[0].String(), out[1].String()))
	}
}

// TestAuditTextsCorpus analyzes every auditd log of the public corpus
// with every text and with those ReadsAuditText names: the output must be
// the same (it would not be if the parser read a type not named).
func TestAuditTextsCorpus(t *testing.T) {
	var n, skipped int
	err := filepath.WalkDir(corpus.Dir(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SOURCES.md" {
			return err
		}
		if s, err := replay.Open([]string{path}, nil); err != nil {
			skipped++ // not a log
			return nil
		} else {
			s.Close()
		}
		n++
		checkAuditTexts(t, []string{path}, nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d corpus files analyzed (%d not opened)", n, skipped)
	}
}
