package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"proctrail/formats"
)

// runCLI runs the command line in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(append([]string{"proctrail"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// testCapture writes a small capture with one procfs record and one
// connector ack.
func testCapture(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := formats.NewWriter(f, &formats.Options{Header: formats.Header{Hostname: "box", KernelRelease: "6.1", Version: "test",
		CommandLine: []string{"proctrail", "record", "\x1b[31mred\nFile: forged"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 7, PPID: 1, Comm: "a\nb", Cmdline: []string{"x", "y z"}}
	b, _ := rec.AppendBinary(nil)
	w.WritePacket(formats.SourceProcfs, 1_700_000_000_000_000_000, b)
	w.SetStats(formats.SourceConnector, formats.Stats{Time: 1, Received: 0, Dropped: 4})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"record", "--help"}, {"info", "--help"}, {"replay", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "USAGE") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	if code, out, _ := runCLI(t, "--version"); code != 0 || !strings.Contains(out, version) {
		t.Errorf("--version: exit %d, %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"info"}, {"replay"}, {"record"}, {"info", "--bogus", "x"},
		// Leaving out what the preset does not audit, or out of a rules file.
		{"record", "-o", "never.zst", "--leave-out", "sendto,read"},
		{"record", "-o", "never.zst", "--leave-out", "sendto", "--rules-file", "../../bench/forensic.rules"}} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); !strings.Contains(stderr, "proctrail: ") || n > 2 {
			t.Errorf("%v: stderr %q is not a short error", args, stderr)
		}
	}
}

func TestInfo(t *testing.T) {
	p := testCapture(t)
	code, out, stderr := runCLI(t, "info", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\nFile: forged") {
		t.Errorf("info printed control characters from the capture:\n%q", out)
	}
	for _, want := range []string{"Host:        box (Linux 6.1", "procfs:      1 messages", "connector:   0 messages, lost 4  WARNING", "Integrity:   ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "info", "--json", p)
	var infos []fileInfo
	if code != 0 || json.Unmarshal([]byte(out), &infos) != nil || len(infos) != 1 || *infos[0].Sources["connector"].Lost != 4 {
		t.Errorf("info --json: exit %d, %s", code, out)
	}
	// A missing file is an error naming it, exit 1.
	code, _, stderr = runCLI(t, "info", p+".missing")
	if code != 1 || !strings.Contains(stderr, ".missing") {
		t.Errorf("missing file: exit %d, %q", code, stderr)
	}
}

func TestReplayQuotesCaptureStrings(t *testing.T) {
	p := testCapture(t)
	code, out, stderr := runCLI(t, "replay", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `comm="a\nb"`) || !strings.Contains(lines[0], `cmdline=["x" "y z"]`) {
		t.Errorf("replay output %q: a newline in a name must not start a new line", out)
	}
	code, out, _ = runCLI(t, "replay", "--json", p)
	var m map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m["source"] != "procfs" {
		t.Errorf("replay --json: exit %d, %q", code, out)
	}
}

// TestRecordWithoutPrivileges runs the recorder as nobody: one clear line
// naming what is missing, exit code 1.
func TestRecordWithoutPrivileges(t *testing.T) {
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("setpriv not installed")
		}
		bin := filepath.Join(t.TempDir(), "proctrail")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		os.Chmod(filepath.Dir(bin), 0o755)
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, "record", "-o", "/tmp/never.zst", "--duration", "1s")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want 1; stderr %q", err, stderr.String())
		}
		if msg := stderr.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "needs root") || !strings.Contains(msg, "CAP_NET_ADMIN") {
			t.Errorf("stderr %q: want one line naming the missing privileges", msg)
		}
		return
	}
	code, _, stderr := runCLI(t, "record", "-o", filepath.Join(t.TempDir(), "x.zst"), "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "needs root") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestInterspersedFlags(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"proctrail analyze trace.zst --dot", "proctrail analyze --dot -- trace.zst"},
		{"proctrail analyze a.zst --pid 7 b.zst -o out.json --tree", "proctrail analyze --pid 7 -o out.json --tree -- a.zst b.zst"},
		{"proctrail analyze --since=+5s a.zst", "proctrail analyze --since=+5s -- a.zst"},
		{"proctrail analyze a.zst -- --odd-name", "proctrail analyze -- a.zst --odd-name"},
		{"proctrail --verbose replay a.zst --format audit", "proctrail --verbose replay --format audit -- a.zst"},
		{"proctrail info --json", "proctrail info --json"},
		{"proctrail record -o t.zst -- ls -l", "proctrail record -o t.zst -- ls -l"},
		{"proctrail record -o t.zst ls -l", "proctrail record -o t.zst ls -l"},
		{"proctrail nosuch a -x", "proctrail nosuch a -x"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	// The README's own command line.
	code, out, stderr := runCLI(t, "analyze", "../../testdata/analyze/pipeline/capture.zst", "--dot")
	if code != 0 || !strings.HasPrefix(out, "digraph") {
		t.Errorf("analyze FILE --dot: exit %d, %s", code, stderr)
	}
}
