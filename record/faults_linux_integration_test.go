//go:build linux

package record_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"proctrail/formats"
	"proctrail/record"
)

// TestIntegrationDiskFull records onto a 2 MiB tmpfs (about two frames): a clear error, the
// capture readable up to its last whole frame, the audit state restored.
func TestIntegrationDiskFull(t *testing.T) {
	needRoot(t)
	needTool(t, "auditctl")
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	before := auditState(t)
	out := filepath.Join(dir, "trace.zst")
	storm, _ := filepath.Abs("../bench/storm.sh")
	_, err := record.Record(context.Background(), &record.Config{
		Output: out, Audit: true, Command: []string{"sh", storm, "4", "4000"},
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Record on a full disk returned %v, want ENOSPC", err)
	}
	if after := auditState(t); after != before {
		t.Errorf("audit state after a full disk:\n%s\nwant:\n%s", after, before)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := formats.Summarize(f, out)
	if err != nil {
		t.Fatalf("capture on the full disk is unreadable: %v", err)
	}
	if s.Messages[formats.SourceAudit] == 0 {
		t.Errorf("no audit messages read back: %+v", s)
	}
	t.Logf("read back %v messages, %d frames, %d bytes truncated", s.Messages, s.Frames, s.Truncated)
}

// TestIntegrationOverload floods a connector socket with a tiny receive
// buffer: the overruns must be counted in the capture's statistics.
func TestIntegrationOverload(t *testing.T) {
	needRoot(t)
	out := filepath.Join(t.TempDir(), "trace.zst")
	storm, _ := filepath.Abs("../bench/storm.sh")
	res, err := record.Record(context.Background(), &record.Config{
		Output: out, Audit: false, ReadBuffer: 1, // the kernel's minimum
		Command: []string{"sh", storm, "2", "1500"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost[formats.SourceConnector] == 0 {
		t.Skip("the kernel dropped nothing even with a minimal buffer")
	}
	c := readCapture(t, out)
	if got, want := c.info.Lost[formats.SourceConnector], res.Lost[formats.SourceConnector]; got != want {
		t.Errorf("capture statistics say %d connector messages lost, the recorder counted %d", got, want)
	}
	// info shows it too.
	bin := buildProctrail(t)
	msg, err := exec.Command(bin, "info", out).CombinedOutput()
	if err != nil || !strings.Contains(string(msg), "WARNING") {
		t.Errorf("info does not warn about the loss: %v\n%s", err, msg)
	}
}
