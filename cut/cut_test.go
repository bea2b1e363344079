package cut

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/replay"
)

// captureSets lists the testdata captures, each set's files together,
// and two of them as auditd logs (audit alone).
func captureSets(t *testing.T) map[string][]string {
	t.Helper()
	dirs, _ := filepath.Glob("../testdata/analyze/*")
	sets := map[string][]string{}
	for _, d := range dirs {
		if files, _ := filepath.Glob(filepath.Join(d, "capture*.zst")); len(files) > 0 {
			sets[filepath.Base(d)] = files
		}
	}
	if len(sets) < 5 || sets["rotated"] == nil || sets["container"] == nil {
		t.Fatalf("the captures of ../testdata/analyze lack a rotated set or a container: %v", sets)
	}
	for _, name := range []string{"pipeline", "container", "overlay"} {
		sets[name+"-log"] = []string{auditLog(t, sets[name])}
	}
	return sets
}

// auditLog writes the audit records of files as auditd writes its log
// (what `proctrail replay --format audit` does) and returns its name.
func auditLog(t *testing.T, files []string) string {
	t.Helper()
	s, err := replay.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var log []byte
	for {
		m, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Audit != nil && replay.AuditdLogs(m.Audit.Type) {
			log = replay.AppendLogLine(log, *m.Audit)
		}
	}
	name := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(name, log, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func build(t *testing.T, files []string, o *analyze.Options) *analyze.Model {
	t.Helper()
	s, err := replay.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := analyze.Build(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func all(ps []*analyze.Process) []*analyze.Process {
	var out []*analyze.Process
	var walk func([]*analyze.Process)
	walk = func(ps []*analyze.Process) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Children)
		}
	}
	walk(ps)
	return out
}

// selections are one of each kind, fitted to m.
func selections(m *analyze.Model) map[string]analyze.Options {
	ps := all(m.Processes)
	sel := map[string]analyze.Options{"everything": {}}
	// A process with children, deep in the tree, else any.
	sel["pid"] = analyze.Options{Pid: ps[len(ps)/2].PID}
	for _, p := range ps[len(ps)/3:] {
		if len(p.Children) > 0 {
			sel["pid"] = analyze.Options{Pid: p.PID}
			break
		}
	}
	if len(m.Containers) > 0 {
		sel["container"] = analyze.Options{Container: m.Containers[0].ID[:8]}
	}
	for _, p := range ps {
		if p.Command {
			sel["cmd"] = analyze.Options{Cmd: true}
		}
	}
	var lo, hi int64 = 1<<63 - 1, 0
	for _, p := range ps {
		lo, hi = min(lo, p.Start), max(hi, p.End, p.Start)
	}
	sel["window"] = analyze.Options{Since: time.Unix(0, lo+(hi-lo)/3), Until: time.Unix(0, lo+2*(hi-lo)/3)}
	sel["since"] = analyze.Options{Since: time.Unix(0, lo+(hi-lo)/2)}
	last := ps[len(ps)-1]
	sel["comm"] = analyze.Options{Comm: last.Comm}
	for _, p := range ps {
		if len(p.Files) > 0 {
			sel["path"] = analyze.Options{PathGlob: p.Files[len(p.Files)-1].Path}
		}
	}
	return sel
}

// cutTo cuts files with o into a file of dir and returns its name.
func cutTo(t *testing.T, dir string, files []string, o *Options) (string, *Result) {
	t.Helper()
	out := filepath.Join(dir, "cut.zst")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Write(f, files, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out, res
}

// TestCutEqualsFilteredAnalysis: the analysis of a cut is the analysis of
// the original with the cut's selection: the same processes, files and
// containers; and the cut analyzed with the selection again is too.
func TestCutEqualsFilteredAnalysis(t *testing.T) {
	for name, files := range captureSets(t) {
		full := build(t, files, nil)
		for kind, sel := range selections(full) {
			t.Run(name+"/"+kind, func(t *testing.T) {
				want := build(t, files, &sel)
				if len(want.Processes) == 0 {
					t.Fatalf("selection %+v keeps nothing", sel)
				}
				out, res := cutTo(t, t.TempDir(), files, &Options{Select: sel})
				got := build(t, []string{out}, nil)
				if diff := diffModels(want, got); diff != "" {
					t.Errorf("processes and containers (-original +cut):\n%s", diff)
				}
				again := build(t, []string{out}, &sel)
				if diff := diffModels(want, again); diff != "" {
					t.Errorf("the cut with its selection (-original +cut):\n%s", diff)
				}
				if res.Selected != len(all(want.Processes)) {
					t.Errorf("Result.Selected %d, the selection has %d processes", res.Selected, len(all(want.Processes)))
				}
				t.Logf("%s %s: %d of %d processes; kept %v of %v messages", name, kind, res.Selected, len(all(full.Processes)), res.Kept, res.Received)
			})
		}
	}
}

// diffModels compares the processes and containers of two models, as
// their JSON (cmp.Diff of the trees takes minutes when they differ).
func diffModels(a, b *analyze.Model) string {
	js := func(m *analyze.Model) string {
		var buf bytes.Buffer
		c := *m
		c.Capture = analyze.Capture{}
		if err := analyze.WriteJSON(&buf, &c); err != nil {
			return err.Error()
		}
		return buf.String()
	}
	return cmp.Diff(js(a), js(b))
}

// FuzzCut cuts captures whose bytes the fuzzer changes, with a selection
// and a mask: never a panic; a capture the replay cannot open is an
// error, anything else a cut that replays.
func FuzzCut(f *testing.F) {
	for _, c := range []string{"threads", "orphan"} {
		b, err := os.ReadFile("../testdata/analyze/" + c + "/capture.zst")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, int32(0))
		f.Add(b[:len(b)/2], int32(1))
	}
	re := regexp.MustCompile(`[a-c]`)
	f.Fuzz(func(t *testing.T, data []byte, pid int32) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in.zst")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := Write(&out, []string{in}, &Options{Select: analyze.Options{Pid: pid}, Redact: []*regexp.Regexp{re}})
		if err != nil {
			return
		}
		cut := filepath.Join(dir, "cut.zst")
		os.WriteFile(cut, out.Bytes(), 0o600)
		m := build(t, []string{cut}, nil)
		if n := len(all(m.Processes)); n != res.Selected {
			t.Fatalf("the cut shows %d processes, it selected %d", n, res.Selected)
		}
	})
}
