package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFormatProgress(t *testing.T) {
	tests := []struct {
		name string
		st   readStatus
		want string
	}{
		{"set", readStatus{Done: 312e6, Total: 720e6, File: 3, Files: 8}, "proctrail: analyze: 43% (312 MB of 720 MB compressed, file 3 of 8)"},
		{"one file", readStatus{Done: 25e6, Total: 50e6, File: 1, Files: 1}, "proctrail: analyze: 50% (25.0 MB of 50.0 MB compressed)"},
		{"not begun", readStatus{Done: 0, Total: 50e6, Files: 2}, "proctrail: analyze: 0% (0.0 MB of 50.0 MB compressed, file 1 of 2)"},
		// A file that grew while read (a capture being recorded) is capped.
		{"grown", readStatus{Done: 60e6, Total: 50e6, File: 2, Files: 2}, "proctrail: analyze: 100% (50.0 MB of 50.0 MB compressed, file 2 of 2)"},
		{"pipe", readStatus{Done: 12345678, Total: 0, File: 1, Files: 1}, "proctrail: analyze: 12.3 MB read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatProgress(tt.st); got != tt.want {
				t.Errorf("formatProgress(%+v):\n got %q\nwant %q", tt.st, got, tt.want)
			}
		})
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time                      { return c.t }
func (c *fakeClock) add(d time.Duration)                 { c.t = c.t.Add(d) }
func (c *fakeClock) set(base time.Time, d time.Duration) { c.t = base.Add(d) }

func TestProgressLine(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: base}
	var w bytes.Buffer
	p := newProgress(&w, clk.now)
	big := readStatus{Done: 312e6, Total: 720e6, File: 3, Files: 8}
	small := readStatus{Done: 1e6, Total: 2e6, File: 1, Files: 1}
	line := formatProgress(big)
	steps := []struct {
		at   time.Duration
		st   readStatus
		want string // written at this step
	}{
		{0, big, ""}, // a short analysis prints nothing
		{progressDelay - time.Millisecond, big, ""}, // nor one just under the delay
		{progressDelay, big, "\r" + line},
		{progressDelay + progressEvery/2, big, ""}, // not rewritten too often
		// A shorter line covers the longer one with spaces.
		{progressDelay + progressEvery, small, "\r" + formatProgress(small) + strings.Repeat(" ", len(line)-len(formatProgress(small)))},
	}
	for _, s := range steps {
		clk.set(base, s.at)
		w.Reset()
		p.show(s.st)
		if diff := cmp.Diff(s.want, w.String()); diff != "" {
			t.Errorf("at %v (-want +got):\n%s", s.at, diff)
		}
	}
	// A warning clears the line first and ends the progress.
	w.Reset()
	io.WriteString(p, "proctrail: warning\n")
	clear := "\r" + strings.Repeat(" ", len(formatProgress(small))) + "\r"
	if diff := cmp.Diff(clear+"proctrail: warning\n", w.String()); diff != "" {
		t.Errorf("warning (-want +got):\n%s", diff)
	}
	w.Reset()
	clk.add(time.Hour)
	p.show(big)
	p.end()
	if w.Len() != 0 {
		t.Errorf("after a warning, progress wrote %q", w.String())
	}
}

func TestProgressEndClears(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: base}
	var w bytes.Buffer
	p := newProgress(&w, clk.now)
	p.end() // nothing shown: nothing to clear
	if w.Len() != 0 {
		t.Fatalf("end without a line wrote %q", w.String())
	}
	p = newProgress(&w, clk.now)
	clk.add(progressDelay)
	st := readStatus{Done: 1, Total: 2, Files: 1}
	p.show(st)
	w.Reset()
	p.end()
	if want := "\r" + strings.Repeat(" ", len(formatProgress(st))) + "\r"; w.String() != want {
		t.Errorf("end wrote %q, want %q", w.String(), want)
	}
}

func TestProgressNotOnNonTerminal(t *testing.T) {
	dir := t.TempDir()
	file, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for name, w := range map[string]io.Writer{"buffer": new(bytes.Buffer), "file": file, "pipe": pw, "devnull": devnull} {
		t.Run(name, func(t *testing.T) {
			if showProgress(w, nil) {
				t.Fatalf("showProgress(%s, nil) = true", name)
			}
			open, got, stop := startProgress(w, nil, []string{"testdata/x.zst"})
			stop()
			if open != nil || got != w {
				t.Errorf("startProgress(%s) installed a progress: open %v, stderr %T", name, open != nil, got)
			}
		})
	}
}

func TestReadCounter(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, bytes.Repeat([]byte{1}, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, bytes.Repeat([]byte{2}, 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := newReadCounter([]string{a, b})
	read := func(name string, n int64) {
		t.Helper()
		f, err := rc.open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.CopyN(io.Discard, f, n); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want readStatus) {
		t.Helper()
		if diff := cmp.Diff(want, rc.status()); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
	}
	check(readStatus{Total: 4000, Files: 2})
	// The headers, read first, then the reads through.
	read(a, 10)
	read(b, 10)
	check(readStatus{Done: 20, Total: 4000, Files: 2})
	read(a, 1000)
	check(readStatus{Done: 1010, Total: 4000, File: 1, Files: 2})
	read(b, 3000)
	check(readStatus{Done: 4000, Total: 4000, File: 2, Files: 2})
	if _, err := rc.open(filepath.Join(dir, "missing")); err == nil {
		t.Error("open of a missing file did not fail")
	}
}
