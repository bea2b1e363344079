package analyze

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of ../testdata/analyze")

// goldenOptions is a case's options.json: the filters and DOT options its
// golden files were made with. Without the file a case is built with Cmd
// (the recorded command's subtree, not the whole machine's snapshot), or
// with no filter when the capture has no command.
type goldenOptions struct {
	Pid       int32  `json:"pid"`
	Container string `json:"container"`
	Comm      string `json:"comm"`
	Path      string `json:"path"`
	Cmd       *bool  `json:"cmd"`
	Since     string `json:"since"` // RFC 3339
	Until     string `json:"until"`
	Files     bool   `json:"files"` // DOT file nodes
}

func loadGoldenOptions(t *testing.T, dir string) (*Options, *DOTOptions) {
	t.Helper()
	var g goldenOptions
	b, err := os.ReadFile(filepath.Join(dir, "options.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		t.Fatal(err)
	default:
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	o := &Options{Pid: g.Pid, Container: g.Container, Comm: g.Comm, PathGlob: g.Path, Cmd: g.Cmd == nil || *g.Cmd}
	for _, tv := range []struct {
		s   string
		dst *time.Time
	}{{g.Since, &o.Since}, {g.Until, &o.Until}} {
		if tv.s == "" {
			continue
		}
		if *tv.dst, err = time.Parse(time.RFC3339Nano, tv.s); err != nil {
			t.Fatalf("options.json: %v", err)
		}
	}
	return o, &DOTOptions{Files: g.Files}
}

// buildCapture replays files through Build; a default Cmd falls back to
// no filter when the capture has no command.
func buildCapture(t *testing.T, files []string, o *Options, defaultCmd bool) *Model {
	t.Helper()
	var m *Model
	streamCapture(t, files, o, defaultCmd, func(s EventSource, o *Options) (c Capture, err error) {
		if m, err = Build(s, o); m != nil {
			c = m.Capture
		}
		return c, err
	})
	return m
}

// TestGolden builds each real capture of ../testdata/analyze/<case>/
// (capture*.zst, a rotated set replays as one) and compares its JSON and
// DOT with golden.json and golden.dot; go test ./analyze -update rewrites
// them. Each is built with GOMAXPROCS 1 and 4, which must give the same
// bytes, and its DOT is rendered by dot.
func TestGolden(t *testing.T) {
	byDir := goldenCases(t)
	dirs := slices.Sorted(maps.Keys(byDir))
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := byDir[dir]
			o, do := loadGoldenOptions(t, dir)
			_, statErr := os.Stat(filepath.Join(dir, "options.json"))
			defaultCmd := statErr != nil

			var outs [2][2][]byte
			for i, procs := range []int{1, 4} {
				prev := runtime.GOMAXPROCS(procs)
				m := buildCapture(t, files, o, defaultCmd)
				runtime.GOMAXPROCS(prev)
				var js, dot bytes.Buffer
				if err := WriteJSON(&js, m); err != nil {
					t.Fatal(err)
				}
				if err := WriteDOT(&dot, m, do); err != nil {
					t.Fatal(err)
				}
				outs[i] = [2][]byte{js.Bytes(), dot.Bytes()}
			}
			if !bytes.Equal(outs[0][0], outs[1][0]) || !bytes.Equal(outs[0][1], outs[1][1]) {
				t.Fatal("GOMAXPROCS 1 and 4 give different output")
			}
			js, dot := outs[0][0], outs[0][1]
			if !json.Valid(js) {
				t.Fatal("invalid JSON")
			}
			renderDOT(t, dot, "svg")
			for _, g := range []struct {
				name string
				got  []byte
			}{{"golden.json", js}, {"golden.dot", dot}} {
				p := filepath.Join(dir, g.name)
				if *update {
					if err := os.WriteFile(p, g.got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(want), string(g.got)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}
