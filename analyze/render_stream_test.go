package analyze

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze/internal/spool"
	"proctrail/replay"
)

// goldenCases lists the cases of ../testdata/analyze: each directory's
// captures, sorted.
func goldenCases(t *testing.T) map[string][]string {
	t.Helper()
	captures, err := filepath.Glob("../testdata/analyze/*/capture*.zst")
	if err != nil {
		t.Fatal(err)
	}
	if len(captures) == 0 {
		t.Fatal("no captures in ../testdata/analyze/*/")
	}
	byDir := map[string][]string{}
	for _, c := range captures {
		byDir[filepath.Dir(c)] = append(byDir[filepath.Dir(c)], c)
	}
	for _, files := range byDir {
		slices.Sort(files)
	}
	return byDir
}

// streamCapture runs build on a replay of files, with o; a default Cmd
// falls back to no filter when the capture has no command, as
// buildCapture does.
func streamCapture(t *testing.T, files []string, o *Options, defaultCmd bool, build func(EventSource, *Options) (Capture, error)) Capture {
	t.Helper()
	s, err := replay.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := build(s, o)
	if errors.Is(err, ErrNoCommand) && defaultCmd {
		nc := *o
		nc.Cmd = false
		return streamCapture(t, files, &nc, false, build)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bothSpools runs f with the renderers' spools as they are, then in
// their files from the first record, read back a few bytes at a time.
func bothSpools(f func(tiny bool)) {
	f(false)
	prev := renderSpool
	renderSpool = &spool.Sizes{Mem: 64, Read: 16}
	defer func() { renderSpool = prev }()
	f(true)
}

// TestBuildDOT checks that BuildDOT writes the golden DOT of each case
// of ../testdata/analyze, and WriteDOT's bytes of Build's model with the
// other Files setting, with its spools in memory and in their files.
func TestBuildDOT(t *testing.T) {
	for dir, files := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o, do := loadGoldenOptions(t, dir)
			_, statErr := os.Stat(filepath.Join(dir, "options.json"))
			defaultCmd := statErr != nil
			golden, err := os.ReadFile(filepath.Join(dir, "golden.dot"))
			if err != nil {
				t.Fatal(err)
			}
			other := &DOTOptions{Files: !do.Files}
			var want bytes.Buffer
			m := buildCapture(t, files, o, defaultCmd)
			if err := WriteDOT(&want, m, other); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				do   *DOTOptions
				want []byte
			}{{"golden", do, golden}, {"files " + map[bool]string{false: "off", true: "on"}[other.Files], other, want.Bytes()}} {
				bothSpools(func(tiny bool) {
					var got bytes.Buffer
					c := streamCapture(t, files, o, defaultCmd, func(s EventSource, o *Options) (Capture, error) {
						got.Reset()
						return BuildDOT(&got, s, o, tc.do)
					})
					if diff := cmp.Diff(string(tc.want), got.String()); diff != "" {
						t.Errorf("%s, spools in files %v (-want +got):\n%s", tc.name, tiny, diff)
					}
					if diff := cmp.Diff(m.Capture, c); diff != "" {
						t.Errorf("BuildDOT's capture (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestBuildPROV checks that BuildPROV writes WritePROV's bytes of
// Build's model for each case of ../testdata/analyze, with its spools in
// memory and in their files, and that the cases have what its spools
// hold: relations of every kind, signals and endpoints.
func TestBuildPROV(t *testing.T) {
	var all bytes.Buffer
	for dir, files := range goldenCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o, _ := loadGoldenOptions(t, dir)
			_, statErr := os.Stat(filepath.Join(dir, "options.json"))
			defaultCmd := statErr != nil
			m := buildCapture(t, files, o, defaultCmd)
			var want bytes.Buffer
			if err := WritePROV(&want, m); err != nil {
				t.Fatal(err)
			}
			all.Write(want.Bytes())
			bothSpools(func(tiny bool) {
				var got bytes.Buffer
				c := streamCapture(t, files, o, defaultCmd, func(s EventSource, o *Options) (Capture, error) {
					got.Reset()
					return BuildPROV(&got, s, o)
				})
				if diff := cmp.Diff(want.String(), got.String()); diff != "" {
					t.Errorf("spools in files %v (-want +got):\n%s", tiny, diff)
				}
				if diff := cmp.Diff(m.Capture, c); diff != "" {
					t.Errorf("BuildPROV's capture (-want +got):\n%s", diff)
				}
			})
		})
	}
	for _, s := range []string{`"_:u1"`, `"_:g1"`, `"_:x1"`, `"_:d1"`, `"_:i1"`, `"_:a1"`, `"proctrail:signal/`, `"proctrail:endpoint/`, `"prov:role": {
        "$": "proctrail:signal"`} {
		if !bytes.Contains(all.Bytes(), []byte(s)) {
			t.Errorf("no case has %s", s)
		}
	}
}
