//go:build linux

package record

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// These tests change the kernel's global audit state, so none of them runs
// in parallel, and each one checks that it leaves `auditctl -s` and
// `auditctl -l` as it found them.

// requireAuditRoot skips (or, under CI=true, fails) a test that needs root
// and the audit tools.
func requireAuditRoot(t *testing.T) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") == "true" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("needs root to change the kernel's audit state")
	}
	if _, err := exec.LookPath("auditctl"); err != nil {
		skip("needs auditctl: ", err)
	}
	if out, err := exec.Command("auditctl", "-s").CombinedOutput(); err != nil {
		skip(fmt.Sprintf("kernel audit not usable: auditctl -s: %v: %s", err, out))
	}
}

// auditSnapshot is the part of the audit state a test must leave unchanged:
// the stable fields of `auditctl -s` (not lost, backlog, …) and `auditctl -l`.
type auditSnapshot struct {
	Status map[string]string
	Rules  string
}

var snapshotFields = []string{"enabled", "failure", "pid", "rate_limit", "backlog_limit", "backlog_wait_time"}

func takeAuditSnapshot(t *testing.T) auditSnapshot {
	t.Helper()
	return auditSnapshot{Status: auditctlStatus(t), Rules: auditctl(t, "-l")}
}

func auditctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("auditctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("auditctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func auditctlStatus(t *testing.T) map[string]string {
	t.Helper()
	st := make(map[string]string)
	for _, line := range strings.Split(auditctl(t, "-s"), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && slices.Contains(snapshotFields, k) {
			st[k] = v
		}
	}
	if len(st) != len(snapshotFields) {
		t.Fatalf("auditctl -s: got fields %v, want %v", st, snapshotFields)
	}
	return st
}

// restoreAuditOnFailure puts back what a failed test may have left: rules
// keyed proctrail and the enabled flag, backlog limit and wait time of
// before. It runs on every test end and does nothing when all is in order.
func restoreAuditOnFailure(t *testing.T, before auditSnapshot) {
	t.Cleanup(func() {
		if strings.Contains(auditctl(t, "-l"), "key="+RuleKey) {
			t.Log("cleanup: deleting leftover proctrail rules")
			exec.Command("auditctl", "-D", "-k", RuleKey).Run()
		}
		now := auditctlStatus(t)
		for _, f := range []struct{ field, opt string }{
			{"enabled", "-e"}, {"backlog_limit", "-b"}, {"backlog_wait_time", "--backlog_wait_time"},
		} {
			if now[f.field] != before.Status[f.field] {
				t.Logf("cleanup: restoring %s %s (was %s)", f.field, before.Status[f.field], now[f.field])
				exec.Command("auditctl", f.opt, before.Status[f.field]).Run()
			}
		}
	})
}

// checkAuditRestored fails the test if the audit state differs from before.
func checkAuditRestored(t *testing.T, before auditSnapshot) {
	t.Helper()
	if diff := cmp.Diff(before, takeAuditSnapshot(t)); diff != "" {
		t.Errorf("audit state not restored (-before +after):\n%s", diff)
	}
}

// testLogger sends slog output to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startReader reads datagrams in a goroutine until Read reports net.ErrClosed,
// sending a copy of each to the returned channel (dropping when full). The
// returned function interrupts the session and waits for the goroutine.
func startReader(t *testing.T, s *AuditSession) (<-chan []byte, func()) {
	t.Helper()
	msgs := make(chan []byte, 4096)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, MaxAuditMessage)
		for {
			n, err := s.Read(buf)
			switch {
			case errors.Is(err, unix.ENOBUFS):
				continue
			case err != nil:
				done <- err
				return
			}
			select {
			case msgs <- bytes.Clone(buf[:n]):
			default:
			}
		}
	}()
	stop := func() {
		t.Helper()
		if err := s.Interrupt(); err != nil {
			t.Errorf("Interrupt: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) || !errors.Is(err, os.ErrClosed) {
				t.Errorf("Read after Interrupt: got %v, want net.ErrClosed and os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read did not return within 5s of Interrupt")
		}
	}
	return msgs, stop
}

// runMarkedWorkload runs /bin/true with a unique argument a few times and
// returns the argument, which the EXECVE records carry.
func runMarkedWorkload(t *testing.T) string {
	t.Helper()
	marker := fmt.Sprintf("proctrail-marker-%d", rand.Uint64())
	for range 3 {
		if out, err := exec.Command("/bin/true", marker).CombinedOutput(); err != nil {
			t.Fatalf("/bin/true: %v: %s", err, out)
		}
	}
	return marker
}

// waitForMarker waits until a datagram whose audit text contains marker
// arrives, checks its netlink header and returns it.
func waitForMarker(t *testing.T, msgs <-chan []byte, marker string) []byte {
	t.Helper()
	timeout := time.After(10 * time.Second)
	seen := 0
	for {
		select {
		case m := <-msgs:
			seen++
			if !bytes.Contains(m, []byte(marker)) {
				continue
			}
			if len(m) < unix.SizeofNlMsghdr {
				t.Fatalf("datagram of %d bytes is shorter than a netlink header", len(m))
			}
			typ := binary.NativeEndian.Uint16(m[4:6])
			if typ != 1309 { // AUDIT_EXECVE
				t.Errorf("record with the marker has type %d, want EXECVE (1309): %q", typ, m[unix.SizeofNlMsghdr:])
			}
			return m
		case <-timeout:
			t.Fatalf("no audit record mentioning %s within 10s (%d other datagrams)", marker, seen)
		}
	}
}

func TestIntegrationAuditStartClose(t *testing.T) {
	requireAuditRoot(t)
	before := takeAuditSnapshot(t)
	restoreAuditOnFailure(t, before)
	wantMode := ModeDaemon
	if pid, _ := strconv.Atoi(before.Status["pid"]); pid != 0 && auditProcExists(pid) {
		wantMode = ModeMulticast
	}

	stateDir := filepath.Join(t.TempDir(), "state")
	rules, err := PresetRules("forensic")
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartAudit(&AuditConfig{StateDir: stateDir, Logger: testLogger(t), Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Mode() != wantMode {
		t.Errorf("Mode() = %q, want %q", s.Mode(), wantMode)
	}

	// The saved state is on disk, private, while recording.
	checkMode(t, stateDir, 0o700|fs.ModeDir)
	checkMode(t, filepath.Join(stateDir, stateFileName), 0o600)

	// Our rules are installed, the never rule for our pid first.
	listed := strings.Split(strings.TrimSpace(auditctl(t, "-l")), "\n")
	var ours []string
	for _, l := range listed {
		if strings.Contains(l, "key="+RuleKey) {
			ours = append(ours, l)
		}
	}
	if len(ours) != 1+len(rules) {
		t.Errorf("auditctl -l shows %d proctrail rules, want %d:\n%s", len(ours), 1+len(rules), strings.Join(listed, "\n"))
	}
	never := fmt.Sprintf("-a never,exit -S all -F pid=%d -F key=%s", os.Getpid(), RuleKey)
	if listed[0] != never {
		t.Errorf("first rule listed:\n got %s\nwant %s", listed[0], never)
	}
	st := auditctlStatus(t)
	if st["enabled"] != "1" {
		t.Errorf("audit enabled = %s while recording, want 1", st["enabled"])
	}
	if wantMode == ModeDaemon && st["pid"] != strconv.Itoa(os.Getpid()) {
		t.Errorf("audit pid = %s while recording, want ours (%d)", st["pid"], os.Getpid())
	}
	if bl, _ := strconv.Atoi(st["backlog_limit"]); bl < defaultBacklogLimit {
		t.Errorf("backlog_limit = %d while recording, want >= %d", bl, defaultBacklogLimit)
	}
	if st["backlog_wait_time"] != strconv.Itoa(defaultBacklogWaitTime) {
		t.Errorf("backlog_wait_time = %s while recording, want %d", st["backlog_wait_time"], defaultBacklogWaitTime)
	}

	msgs, stop := startReader(t, s)
	marker := runMarkedWorkload(t)
	waitForMarker(t, msgs, marker)
	if _, err := s.Lost(); err != nil {
		t.Errorf("Lost: %v", err)
	}
	stop()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Read(make([]byte, MaxAuditMessage)); !errors.Is(err, net.ErrClosed) || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: got %v, want net.ErrClosed and os.ErrClosed", err)
	}
	if _, err := s.Lost(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Lost after Close: got %v, want net.ErrClosed", err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file after Close: %v, want it removed", err)
	}
	checkAuditRestored(t, before)
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestIntegrationAuditStartErrorsRestore(t *testing.T) {
	requireAuditRoot(t)
	before := takeAuditSnapshot(t)
	restoreAuditOnFailure(t, before)
	stateDir := t.TempDir()

	// A rule the kernel refuses (a watch on a path in a missing directory)
	// fails StartAudit after it changed the state; everything is undone.
	s, err := StartAudit(&AuditConfig{
		StateDir: stateDir,
		Logger:   testLogger(t),
		Rules:    []string{"-a always,exit -F arch=b64 -S execve -k proctrail", "-w /nonexistent-proctrail-dir/x/y -p w"},
	})
	if err == nil {
		s.Close()
		t.Fatal("StartAudit with a rule the kernel refuses succeeded")
	}
	t.Logf("StartAudit: %v", err)
	checkAuditRestored(t, before)
	if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file after a failed start: %v, want it removed", err)
	}

	// A rule that does not parse fails before anything changes.
	if _, err := StartAudit(&AuditConfig{StateDir: stateDir, Logger: testLogger(t), Rules: []string{"-a always,exit -S nosuchcall"}}); err == nil {
		t.Fatal("StartAudit with an unknown syscall succeeded")
	}
	checkAuditRestored(t, before)
}

func TestIntegrationAuditReadAllocs(t *testing.T) {
	requireAuditRoot(t)
	before := takeAuditSnapshot(t)
	restoreAuditOnFailure(t, before)

	s, err := StartAudit(&AuditConfig{StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	// A separate process makes the records: anything run from this process
	// would count in AllocsPerRun, which measures the whole process.
	load := exec.Command("/bin/sh", "-c", "while :; do /bin/true; done")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		load.Process.Kill()
		load.Wait()
	})

	buf := make([]byte, MaxAuditMessage)
	var readErr error
	read := func() {
		if _, err := s.Read(buf); err != nil && !errors.Is(err, unix.ENOBUFS) && readErr == nil {
			readErr = err
		}
	}
	for range 100 { // warm up: runtime poller, first datagrams
		read()
	}
	allocs := testing.AllocsPerRun(1000, read)
	if readErr != nil {
		t.Fatalf("Read: %v", readErr)
	}
	if allocs != 0 {
		t.Errorf("Read allocates %v times per call, want 0", allocs)
	}

	load.Process.Kill()
	load.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkAuditRestored(t, before)
}

// helperStateDirEnv makes the test binary run TestHelperRecorderProcess as a
// recorder that a test can kill.
const helperStateDirEnv = "PROCTRAIL_TEST_HELPER_STATE_DIR"

// TestHelperRecorderProcess is not a test: re-executed by
// TestIntegrationAuditStaleRecovery, it starts a recording, says READY and
// waits to be killed.
func TestHelperRecorderProcess(t *testing.T) {
	dir := os.Getenv(helperStateDirEnv)
	if dir == "" {
		t.Skip("helper process for TestIntegrationAuditStaleRecovery")
	}
	s, err := StartAudit(&AuditConfig{StateDir: dir})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", s.Mode())
	time.Sleep(time.Hour)
}

// startKilledRecorder runs a helper recorder with stateDir, checks that a
// second recorder refuses to start meanwhile, and SIGKILLs it. It returns
// the helper's pid.
func startKilledRecorder(t *testing.T, stateDir string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRecorderProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperStateDirEnv+"="+stateDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "READY") || strings.HasPrefix(l, "ERROR") {
				ready <- l
				break
			}
		}
		close(ready)
		for sc.Scan() { // drain until the helper dies
		}
	}()
	select {
	case l := <-ready:
		if !strings.HasPrefix(l, "READY") {
			t.Fatalf("helper recorder: %q", l)
		}
		t.Logf("helper recorder pid %d: %s", cmd.Process.Pid, l)
	case <-time.After(20 * time.Second):
		t.Fatal("helper recorder not ready within 20s")
	}

	// While it runs, nobody else may recover or start in its state dir.
	_, err = RecoverStale(stateDir, testLogger(t))
	if !errors.Is(err, ErrRecorderRunning) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Errorf("RecoverStale with a live recorder: got %v, want ErrRecorderRunning naming pid %d", err, cmd.Process.Pid)
	}
	if s, err := StartAudit(&AuditConfig{StateDir: stateDir, Logger: testLogger(t)}); !errors.Is(err, ErrRecorderRunning) {
		if err == nil {
			s.Close()
		}
		t.Errorf("StartAudit with a live recorder: got %v, want ErrRecorderRunning", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	return cmd.Process.Pid
}

func TestIntegrationAuditStaleRecovery(t *testing.T) {
	requireAuditRoot(t)
	tests := []struct {
		name    string
		recover func(t *testing.T, stateDir string)
	}{
		{"RecoverStale", func(t *testing.T, stateDir string) {
			ok, err := RecoverStale(stateDir, testLogger(t))
			if err != nil || !ok {
				t.Fatalf("RecoverStale = %v, %v; want true, nil", ok, err)
			}
		}},
		{"StartAudit", func(t *testing.T, stateDir string) {
			s, err := StartAudit(&AuditConfig{StateDir: stateDir, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(auditctl(t, "-l"), fmt.Sprintf("-F pid=%d -F key=%s", os.Getpid(), RuleKey)) != 1 {
				t.Errorf("after recovery StartAudit did not install its own never rule")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := takeAuditSnapshot(t)
			restoreAuditOnFailure(t, before)
			stateDir := t.TempDir()
			pid := startKilledRecorder(t, stateDir)

			// The killed recorder's rules and state file are left behind.
			if rules := auditctl(t, "-l"); !strings.Contains(rules, fmt.Sprintf("-F pid=%d -F key=%s", pid, RuleKey)) {
				t.Errorf("the killed recorder's never rule is gone:\n%s", rules)
			}
			if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); err != nil {
				t.Errorf("the killed recorder's state file: %v", err)
			}
			t.Logf("after SIGKILL: audit pid %s (the recorder was %d)", auditctlStatus(t)["pid"], pid)

			tt.recover(t, stateDir)
			checkAuditRestored(t, before)
			if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("state file after recovery: %v, want it removed", err)
			}
			if ok, err := RecoverStale(stateDir, testLogger(t)); ok || err != nil {
				t.Errorf("second RecoverStale = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestIntegrationAuditStaleRulesWithoutStateFile(t *testing.T) {
	requireAuditRoot(t)
	before := takeAuditSnapshot(t)
	restoreAuditOnFailure(t, before)

	// Rules keyed proctrail, alone or among other keys, from a run whose
	// state file is gone; a rule with another key stays.
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "unshare", "-k", RuleKey)
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "setns", "-k", "other", "-k", RuleKey)
	auditctl(t, "-a", "always,exit", "-F", "arch=b64", "-S", "pivot_root", "-k", "proctrail-test-keep")
	t.Cleanup(func() { exec.Command("auditctl", "-D", "-k", "proctrail-test-keep").Run() })

	ok, err := RecoverStale(t.TempDir(), testLogger(t))
	if err != nil || !ok {
		t.Fatalf("RecoverStale = %v, %v; want true, nil", ok, err)
	}
	want := before.Rules
	if strings.TrimSpace(want) == "No rules" {
		want = ""
	}
	want += "-a always,exit -F arch=b64 -S pivot_root -F key=proctrail-test-keep\n"
	if diff := cmp.Diff(want, auditctl(t, "-l")); diff != "" {
		t.Errorf("rules after RecoverStale (-want +got):\n%s", diff)
	}
	auditctl(t, "-D", "-k", "proctrail-test-keep")
	checkAuditRestored(t, before)
}

// auditdConf is a minimal auditd.conf that logs raw records to a temporary
// file and does nothing else: no plugins, network, mail or disk actions.
const auditdConf = `local_events = yes
write_logs = yes
log_file = %s
log_group = root
log_format = RAW
flush = INCREMENTAL_ASYNC
freq = 1
max_log_file = 8
num_logs = 2
priority_boost = 0
name_format = NONE
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
verify_email = no
action_mail_acct = root
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = IGNORE
max_restarts = 0
plugin_dir = %s
end_of_event_timeout = 2
`

// startAuditd runs auditd in the foreground with a temporary configuration
// and waits until it owns the audit pid. It returns the log file's path and
// a function that stops it with SIGTERM and waits.
func startAuditd(t *testing.T) (logFile string, stop func()) {
	t.Helper()
	auditd, err := exec.LookPath("auditd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("needs auditd: ", err)
	}
	dir := t.TempDir()
	confDir := filepath.Join(dir, "etc")
	plugins := filepath.Join(confDir, "plugins.d")
	logFile = filepath.Join(dir, "log", "audit.log")
	for _, d := range []string{plugins, filepath.Dir(logFile)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	// auditd refuses a config file writable by group or others.
	conf := fmt.Sprintf(auditdConf, logFile, plugins)
	if err := os.WriteFile(filepath.Join(confDir, "auditd.conf"), []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(auditd, "-n", "-c", confDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("auditd did not stop within 10s of SIGTERM; killing it")
			cmd.Process.Kill()
			<-exited
		}
		if stderr.Len() > 0 {
			t.Logf("auditd output:\n%s", stderr.String())
		}
	}
	t.Cleanup(stop)

	want := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for auditctlStatus(t)["pid"] != want {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("auditd exited: %v: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("auditd (pid %s) did not register as audit daemon within 10s: %s", want, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return logFile, stop
}

func TestIntegrationAuditCoexistAuditd(t *testing.T) {
	requireAuditRoot(t)
	before := takeAuditSnapshot(t)
	if pid, _ := strconv.Atoi(before.Status["pid"]); pid != 0 && auditProcExists(pid) {
		t.Skipf("an audit daemon (pid %d) is already running; this test starts its own", pid)
	}
	// auditd enables audit at start and disables it at exit; the cleanup
	// also puts back what auditd changed.
	restoreAuditOnFailure(t, before)

	logFile, stopAuditd := startAuditd(t)
	auditdPid := auditctlStatus(t)["pid"]

	s, err := StartAudit(&AuditConfig{StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Mode() != ModeMulticast {
		t.Errorf("Mode() = %q with auditd running, want %q", s.Mode(), ModeMulticast)
	}

	size0 := fileSize(t, logFile)
	msgs, stopReader := startReader(t, s)
	marker := runMarkedWorkload(t)
	waitForMarker(t, msgs, marker)
	stopReader()

	if got := auditctlStatus(t)["pid"]; got != auditdPid {
		t.Errorf("audit pid = %s while recording, want auditd's %s", got, auditdPid)
	}
	// auditd got the records too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(log)) > size0 && bytes.Contains(log, []byte(marker)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("auditd's log (%d bytes, %d at start) has no record of %s after 10s", len(log), size0, marker)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := auditctlStatus(t)
	if st["pid"] != auditdPid {
		t.Errorf("audit pid = %s after Close, want auditd's %s", st["pid"], auditdPid)
	}
	if rules := auditctl(t, "-l"); strings.Contains(rules, "key="+RuleKey) {
		t.Errorf("proctrail rules left after Close:\n%s", rules)
	}

	stopAuditd()
	// auditd (not we) enabled audit; put back what it changed before
	// comparing with the state found.
	now := auditctlStatus(t)
	if now["enabled"] != before.Status["enabled"] {
		t.Logf("auditd left enabled=%s (was %s); restoring", now["enabled"], before.Status["enabled"])
		auditctl(t, "-e", before.Status["enabled"])
	}
	checkAuditRestored(t, before)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
