package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/internal/testenv"
)

func TestWriteOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	errRender := errors.New("render failed")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := writeOutput(out, nil, write("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello" {
		t.Fatalf("output %q, want hello", b)
	}
	// Failing before the first write leaves the file as it was.
	if err := writeOutput(out, nil, func(io.Writer) error { return errRender }); !errors.Is(err, errRender) {
		t.Fatalf("error %v, want %v", err, errRender)
	}
	if b, _ := os.ReadFile(out); string(b) != "hello" {
		t.Fatalf("an analysis that failed first changed the file: %q", b)
	}
	// Failing after writing removes the truncated output.
	big := make([]byte, 200<<10)
	if err := writeOutput(out, nil, func(w io.Writer) error { w.Write(big); return errRender }); !errors.Is(err, errRender) {
		t.Fatalf("error %v, want %v", err, errRender)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("truncated output left behind: %v", err)
	}
	// An empty output is still a file.
	if err := writeOutput(out, nil, write("")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}

func TestAnalyzeFormats(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	for _, tc := range []struct {
		flag, prefix string
	}{
		{"--json", "{"}, {"--dot", "digraph"}, {"--tree", "vm  "}, {"--html", "<!DOCTYPE html>"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, _, stderr := runCLI(t, "analyze", "--cmd", tc.flag, "-o", out, capture)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(strings.TrimSpace(string(b)), tc.prefix) {
				t.Errorf("output starts %q, want %q", b[:min(len(b), 40)], tc.prefix)
			}
		})
	}
	t.Run("--svg", func(t *testing.T) {
		testenv.NeedTool(t, "dot")
		code, out, stderr := runCLI(t, "analyze", "--cmd", "--svg", capture)
		if code != 0 || !strings.Contains(out, "<svg") {
			t.Fatalf("exit %d, stderr %s, output %.80q", code, stderr, out)
		}
	})
	t.Run("--svg without dot", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		code, _, stderr := runCLI(t, "analyze", "--svg", capture)
		if code != 1 || !strings.Contains(stderr, "needs Graphviz's dot") {
			t.Errorf("exit %d, stderr %q: want a clear error", code, stderr)
		}
	})
	t.Run("two formats", func(t *testing.T) {
		if code, _, _ := runCLI(t, "analyze", "--dot", "--html", capture); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
	})
}

// TestRunAnalyzeConfig checks that each field of analyzeConfig does what
// its flag does: runAnalyze called directly writes what the command line
// writes.
func TestRunAnalyzeConfig(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	for _, tc := range []struct {
		name string
		cfg  analyzeConfig
		args []string
	}{
		{"zero format is json", analyzeConfig{}, nil},
		{"json filtered", analyzeConfig{Format: "json", Options: &analyze.Options{Cmd: true}}, []string{"--json", "--cmd"}},
		{"dot", analyzeConfig{Format: "dot"}, []string{"--dot"}},
		{"dot files", analyzeConfig{Format: "dot", ShowFiles: true}, []string{"--dot", "--files"}},
		{"tree files", analyzeConfig{Format: "tree", ShowFiles: true, Options: &analyze.Options{Cmd: true}}, []string{"--tree", "--files", "--cmd"}},
		{"prov", analyzeConfig{Format: "prov"}, []string{"--prov"}},
		{"html", analyzeConfig{Format: "html"}, []string{"--html"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, want, stderr := runCLI(t, append(append([]string{"analyze"}, tc.args...), capture)...)
			if code != 0 {
				t.Fatalf("proctrail analyze %v: exit %d: %s", tc.args, code, stderr)
			}
			var out, errw bytes.Buffer
			cfg := tc.cfg
			cfg.Files, cfg.Stdout, cfg.Stderr = []string{capture}, &out, &errw
			if err := runAnalyze(context.Background(), &cfg); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, out.String()); diff != "" {
				t.Errorf("runAnalyze and proctrail analyze %v differ (-want +got):\n%s", tc.args, diff)
			}
		})
	}
	// Output names a file instead of Stdout.
	outFile := filepath.Join(t.TempDir(), "out.dot")
	var stdout bytes.Buffer
	if err := runAnalyze(context.Background(), &analyzeConfig{Files: []string{capture}, Format: "dot", Output: outFile, Stdout: &stdout, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(outFile); err != nil || !bytes.HasPrefix(b, []byte("digraph")) || stdout.Len() != 0 {
		t.Errorf("Output: file %.20q (%v), stdout %d bytes", b, err, stdout.Len())
	}
}
