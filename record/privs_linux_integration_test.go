//go:build linux

package record_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// capEff reads the CapEff mask of every thread of pid.
func capEff(t *testing.T, pid int) map[string]uint64 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				out[task.Name()] = n
			}
		}
	}
	return out
}

// TestIntegrationPrivileges checks that a running recorder keeps only the
// capabilities it documents, on every thread, and that under sudo its
// capture belongs to the invoking user with mode 0600.
func TestIntegrationPrivileges(t *testing.T) {
	needRoot(t)
	bin := buildProctrail(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "trace.zst")
	cmd := exec.Command(bin, "record", "-o", out, "--duration", "30s")
	cmd.Env = append(os.Environ(), "SUDO_UID=65534", "SUDO_GID=65534")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	want := uint64(1)<<unix.CAP_AUDIT_CONTROL | 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_SYS_PTRACE |
		1<<unix.CAP_DAC_READ_SEARCH | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_FOWNER | 1<<unix.CAP_CHOWN | 1<<unix.CAP_KILL
	var caps map[string]uint64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		caps = capEff(t, cmd.Process.Pid)
		dropped := len(caps) > 0
		for _, c := range caps {
			dropped = dropped && c == want
		}
		if dropped {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for tid, c := range caps {
		if c != want {
			t.Errorf("thread %s: CapEff %#x, want %#x", tid, c, want)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("recorder: %v", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("capture mode %v owner %d:%d, want 0600 owned by 65534:65534", fi.Mode().Perm(), st.Uid, st.Gid)
	}
}
