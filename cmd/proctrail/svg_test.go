package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"proctrail/internal/testenv"
)

// TestAnalyzeSVGStream checks that --svg is dot's SVG of --dot's graph,
// which it pipes through dot, and that a dot that fails, having read its
// input or not, fails the command without leaving an output file.
func TestAnalyzeSVGStream(t *testing.T) {
	capture := "../../testdata/analyze/container/capture.zst"
	t.Run("dot", func(t *testing.T) {
		testenv.NeedTool(t, "dot")
		code, graph, stderr := runCLI(t, "analyze", "--dot", "--files", capture)
		if code != 0 {
			t.Fatalf("--dot: exit %d: %s", code, stderr)
		}
		cmd := exec.Command("dot", "-Tsvg")
		cmd.Stdin = strings.NewReader(graph)
		want, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out.svg")
		if code, _, stderr := runCLI(t, "analyze", "--svg", "--files", "-o", out, capture); code != 0 {
			t.Fatalf("--svg: exit %d: %s", code, stderr)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || !bytes.Contains(got, []byte("<svg")) {
			t.Errorf("--svg is not dot -Tsvg of --dot: %d bytes, want %d", len(got), len(want))
		}
	})
	for _, tc := range []struct{ name, script string }{
		{"dot fails after reading", "cat >/dev/null; echo 'syntax error in line 1' >&2; exit 3"},
		{"dot fails at once", "echo 'syntax error in line 1' >&2; exit 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "dot"), []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
			out := filepath.Join(t.TempDir(), "out.svg")
			code, _, stderr := runCLI(t, "analyze", "--svg", "--files", "-o", out, capture)
			if code != 1 || !strings.Contains(stderr, "syntax error in line 1") {
				t.Errorf("exit %d, stderr %q: want dot's error", code, stderr)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output left behind: %v", err)
			}
		})
	}
}
