package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"proctrail/internal/testenv"
)

// fullDisk mounts a small tmpfs and fills it: every later write there fails
// with ENOSPC, as on a full disk.
func fullDisk(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return dir
		}
	}
}

// TestWriteErrorsOutputFile writes analyze -o and import -o outputs onto a
// full disk: exit 1, the error on stderr, no truncated file left behind.
// An output that is a device (a node like /dev/full) fails the same way and
// is not removed.
func TestWriteErrorsOutputFile(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	full := fullDisk(t)
	logFile := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(logFile, []byte(auditOnlyLog), 0o600); err != nil {
		t.Fatal(err)
	}
	// A device node of the kernel's "full" device (1, 7), private to the
	// test: were it removed, /dev/full would not be.
	device := filepath.Join(t.TempDir(), "full")
	if err := unix.Mknod(device, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 7))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"analyze", []string{"analyze", capture}},
		{"analyze --html", []string{"analyze", "--html", capture}},
		{"analyze --dot", []string{"analyze", "--dot", capture}},
		{"import", []string{"import", logFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(full, "out")
			code, _, stderr := runCLI(t, append(tc.args, "-o", out)...)
			if code != 1 || !strings.HasPrefix(stderr, "proctrail: ") || !strings.Contains(stderr, "no space left on device") {
				t.Errorf("-o on a full disk: exit %d, stderr %q", code, stderr)
			}
			if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("-o on a full disk left %s behind (%v)", out, err)
			}
			code, _, stderr = runCLI(t, append(tc.args, "-o", device)...)
			if code != 1 || !strings.Contains(stderr, "no space left on device") {
				t.Errorf("-o DEVICE: exit %d, stderr %q", code, stderr)
			}
			if fi, err := os.Lstat(device); err != nil || fi.Mode().Type() != os.ModeDevice|os.ModeCharDevice {
				t.Fatalf("-o DEVICE removed or replaced the device: %v %v", fi, err)
			}
		})
	}
}
