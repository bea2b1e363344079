package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"proctrail/internal/testenv"
)

// errFull is what failingWriter returns once it is full.
var errFull = errors.New("test writer: no space left")

// failingWriter takes n bytes, then fails every write, as a disk that
// fills up does.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	k := f.n
	f.n = 0
	return k, errFull
}

// TestWriteErrors runs every command that writes to stdout with a stdout
// that fails: at the first byte, halfway through the output, and /dev/full.
// Each must exit 1 with the error on stderr, never 0.
func TestWriteErrors(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	for _, tc := range []struct {
		name string
		args []string
		tool string // a program the command needs
	}{
		{"replay", []string{"replay", capture}, ""},
		{"replay --json", []string{"replay", "--json", capture}, ""},
		{"replay --format audit", []string{"replay", "--format", "audit", capture}, ""},
		{"info", []string{"info", capture}, ""},
		{"info --json", []string{"info", "--json", capture}, ""},
		{"analyze", []string{"analyze", capture}, ""},
		{"analyze -o -", []string{"analyze", "-o", "-", capture}, ""},
		{"analyze --dot", []string{"analyze", "--dot", "--files", capture}, ""},
		{"analyze --svg", []string{"analyze", "--svg", capture}, "dot"},
		{"analyze --tree", []string{"analyze", "--tree", "--files", capture}, ""},
		{"analyze --html", []string{"analyze", "--html", capture}, ""},
		{"analyze --prov", []string{"analyze", "--prov", capture}, ""},
		{"--help", []string{"--help"}, ""},
		{"analyze --help", []string{"analyze", "--help"}, ""},
		{"--version", []string{"--version"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tool != "" {
				testenv.NeedTool(t, tc.tool)
			}
			code, full, stderr := runCLI(t, tc.args...)
			if code != 0 || full == "" {
				t.Fatalf("with a working stdout: exit %d, %d bytes of output, stderr %q", code, len(full), stderr)
			}
			check := func(t *testing.T, stdout io.Writer, wantErr string) {
				t.Helper()
				var e bytes.Buffer
				code := run(append([]string{"proctrail"}, tc.args...), stdout, &e)
				if code != 1 {
					t.Errorf("exit %d, want 1; stderr %q", code, e.String())
				}
				if msg := e.String(); !strings.HasPrefix(msg, "proctrail: ") || !strings.Contains(msg, wantErr) {
					t.Errorf("stderr %q: want the error %q", msg, wantErr)
				}
			}
			t.Run("at once", func(t *testing.T) { check(t, &failingWriter{}, errFull.Error()) })
			t.Run("halfway", func(t *testing.T) { check(t, &failingWriter{n: len(full) / 2}, errFull.Error()) })
			t.Run("/dev/full", func(t *testing.T) {
				f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
				if err != nil {
					t.Skip(err)
				}
				defer f.Close()
				check(t, f, "no space left on device")
			})
		})
	}
}

func TestCheckedWriter(t *testing.T) {
	fw := &failingWriter{n: 3}
	cw := &checkedWriter{w: fw}
	if n, err := cw.Write([]byte("ab")); n != 2 || err != nil || cw.err != nil {
		t.Fatalf("Write = %d, %v; kept %v", n, err, cw.err)
	}
	if n, err := cw.Write([]byte("cd")); n != 1 || !errors.Is(err, errFull) {
		t.Fatalf("Write = %d, %v, want 1, %v", n, err, errFull)
	}
	fw.n = 100 // the writer recovers; the error stays
	if n, err := cw.Write([]byte("e")); n != 0 || !errors.Is(err, errFull) || !errors.Is(cw.err, errFull) {
		t.Fatalf("Write after an error = %d, %v; kept %v", n, err, cw.err)
	}
	// record hands its command the stdout under the check.
	if rawWriter(cw) != io.Writer(fw) || rawWriter(os.Stdout) != io.Writer(os.Stdout) {
		t.Error("rawWriter does not unwrap a checkedWriter, or wraps another writer")
	}
}
