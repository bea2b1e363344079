package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its terminal side.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

func TestProgressOnTerminal(t *testing.T) {
	pts := openPTY(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	tests := []struct {
		name string
		out  io.Writer
		want bool
	}{
		{"output to a file (-o)", nil, true},
		{"output in a pipe", pw, true},
		{"output to the terminal", pts, false}, // a --tree would be cut by the line
		{"output to the terminal, checked", &checkedWriter{w: pts}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := showProgress(pts, tt.out); got != tt.want {
				t.Fatalf("showProgress(a terminal, %T) = %v, want %v", tt.out, got, tt.want)
			}
			open, w, stop := startProgress(pts, tt.out, []string{"testdata/x.zst"})
			defer stop()
			if _, ok := w.(*progress); ok != tt.want || (open != nil) != tt.want {
				t.Errorf("startProgress: open set %v, stderr %T; want a progress: %v", open != nil, w, tt.want)
			}
		})
	}
}

// TestProgressSameOutput analyzes a rotated set with stderr a terminal and
// the output in a file (the files then read through the progress's
// counting open) and with neither: the same bytes.
func TestProgressSameOutput(t *testing.T) {
	files, err := filepath.Glob("../../testdata/analyze/rotated/capture*.zst")
	if err != nil || len(files) < 2 {
		t.Fatalf("want a rotated set in testdata/analyze/rotated, got %v (%v)", files, err)
	}
	pts := openPTY(t)
	out := filepath.Join(t.TempDir(), "out.json")
	code := run(append([]string{"proctrail", "analyze", "-o", out}, files...), new(bytes.Buffer), pts)
	if code != 0 {
		t.Fatalf("analyze with a terminal: exit %d", code)
	}
	withProgress, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	code, want, stderr := runCLI(t, append([]string{"analyze"}, files...)...)
	if code != 0 {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	if len(want) == 0 || string(withProgress) != want {
		t.Errorf("output with a progress on the terminal differs (%d bytes, want %d)", len(withProgress), len(want))
	}
}
