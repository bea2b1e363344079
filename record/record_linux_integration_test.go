//go:build linux

package record_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"proctrail/formats"
	"proctrail/internal/testenv"
	"proctrail/record"
	"proctrail/replay"
)

var (
	needRoot = testenv.NeedRoot
	needTool = testenv.NeedTool
)

// captured is what a capture holds, decoded.
type captured struct {
	procs   []replay.ProcEvent
	audits  []replay.AuditEvent
	procfs  []formats.ProcRecord
	info    replay.CaptureInfo
	command int32
}

func readCapture(t *testing.T, files ...string) *captured {
	t.Helper()
	s, err := replay.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &captured{}
	for {
		ev, err := s.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Proc != nil:
			c.procs = append(c.procs, *ev.Proc)
		case ev.Audit != nil:
			c.audits = append(c.audits, *ev.Audit)
		case ev.ProcFS != nil:
			c.procfs = append(c.procfs, *ev.ProcFS)
			if ev.ProcFS.Kind == formats.ReasonCommand {
				c.command = ev.ProcFS.PID
			}
		}
	}
	c.info = s.Info()
	return c
}

// descendants returns the processes (tgids) created under root, root
// included, following the connector's fork events.
func (c *captured) descendants(root int32) map[int32]bool {
	set := map[int32]bool{root: true}
	for _, e := range c.procs {
		if e.Kind == replay.ProcFork && set[e.ParentTGID] && e.ChildPID == e.ChildTGID {
			set[e.ChildTGID] = true
		}
	}
	return set
}

// auditPID returns the pid= of an event's SYSCALL record.
func auditPID(ev replay.AuditEvent) string {
	for _, r := range ev.Records {
		if r.Type.String() == "SYSCALL" {
			return r.RawFields()["pid"]
		}
	}
	return ""
}

func TestIntegrationRecordWorkload(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "trace.zst")
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `cd "$1" && echo hello > a.txt && mv a.txt b.txt && cat b.txt > /dev/null && PROCTRAIL_TEST_WORKLOAD=threads "$2"`
	res, err := record.Record(context.Background(), &record.Config{
		Output:  out,
		Audit:   true,
		Command: []string{"sh", "-c", script, "sh", work, self},
		Stderr:  os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("workload exited %d", res.ExitCode)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("capture mode %v, %v; want 0600", fi.Mode(), err)
	}
	c := readCapture(t, out)
	if c.command == 0 {
		t.Fatal("no procfs record marks the command's pid")
	}
	pids := c.descendants(c.command)

	// Connector: an exec and an exit for every process of the workload,
	// and the helper's threads.
	execs := map[int32]int{}
	exits := map[int32]bool{}
	threads := map[int32]int{}
	for _, e := range c.procs {
		switch e.Kind {
		case replay.ProcExec:
			if pids[e.TGID] {
				execs[e.TGID]++
			}
		case replay.ProcExit:
			if pids[e.TGID] && e.PID == e.TGID {
				exits[e.TGID] = true
			}
		case replay.ProcFork:
			if pids[e.ChildTGID] && e.ChildPID != e.ChildTGID {
				threads[e.ChildTGID]++
			}
		}
	}
	// sh, mv, cat and the helper: four processes, each exec'd once.
	if len(pids) != 4 {
		t.Errorf("workload made %d processes %v, want 4 (sh, mv, cat, helper)", len(pids), pids)
	}
	for pid := range pids {
		if execs[pid] != 1 || !exits[pid] {
			t.Errorf("pid %d: %d exec events, exit seen %v; want 1 and true", pid, execs[pid], exits[pid])
		}
	}
	maxThreads := 0
	for _, n := range threads {
		maxThreads = max(maxThreads, n)
	}
	if maxThreads < 3 {
		t.Errorf("helper made %d threads seen by the connector, want at least 3", maxThreads)
	}

	// Audit: EXECVE argv of the workload's programs, PATH records of its
	// files.
	var argvs [][]string
	var paths []string
	for _, ev := range c.audits {
		pid := auditPID(ev)
		inWorkload := false
		for p := range pids {
			inWorkload = inWorkload || pid == strconv.Itoa(int(p))
		}
		if !inWorkload {
			continue
		}
		if argv, err := ev.Argv(); err == nil && len(argv) > 0 {
			argvs = append(argvs, argv)
		}
		for _, r := range ev.Records {
			if r.Type.String() == "PATH" {
				f := r.RawFields()
				paths = append(paths, strings.Trim(f["name"], `"`)+" "+f["nametype"])
			}
		}
	}
	for _, want := range [][]string{{"mv", "a.txt", "b.txt"}, {"cat", "b.txt"}} {
		if !slices.ContainsFunc(argvs, func(a []string) bool { return slices.Equal(a, want) }) {
			t.Errorf("no EXECVE with argv %q among %q", want, argvs)
		}
	}
	for _, want := range []string{"a.txt CREATE", "a.txt DELETE", "b.txt CREATE", "b.txt NORMAL"} {
		if !slices.Contains(paths, want) {
			t.Errorf("no PATH record %q among %q", want, paths)
		}
	}

	// procfs: the snapshot, and a record for each exec with the cgroup
	// the workload inherited from us.
	cgroup, _ := os.ReadFile("/proc/self/cgroup")
	snap, execRecs := 0, 0
	for _, p := range c.procfs {
		switch {
		case p.Kind == formats.ReasonSnapshot:
			snap++
		case p.Kind == formats.ReasonExec && pids[p.PID] && !p.Gone:
			execRecs++
			// The same hierarchies as ours (the paths within them may differ:
			// this host's agent moves processes between memory cgroups).
			if hierarchies(p.Cgroup) != hierarchies(string(cgroup)) {
				t.Errorf("procfs record of %d: cgroup %q, want the hierarchies of %q", p.PID, p.Cgroup, cgroup)
			}
		}
	}
	if snap < 2 || execRecs == 0 {
		t.Errorf("%d snapshot records, %d exec records of the workload", snap, execRecs)
	}
	if c.info.Lost != [formats.NumSources]uint64{} {
		t.Errorf("losses recorded: %v", c.info.Lost)
	}
}

// hierarchies returns the "ID:controllers" parts of /proc/PID/cgroup.
func hierarchies(cgroup string) string {
	var h []string
	for _, l := range strings.Split(strings.TrimSpace(cgroup), "\n") {
		if i := strings.LastIndexByte(l, ':'); i > 0 && strings.HasPrefix(l[i+1:], "/") {
			h = append(h, l[:i])
		}
	}
	return strings.Join(h, ",")
}

func TestIntegrationRecordRotation(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "trace.zst")
	// Enough exec churn to fill several 64 KiB files.
	script := `i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done`
	res, err := record.Record(context.Background(), &record.Config{
		Output: out, Audit: true, RotateSize: 64 << 10, RotateCount: 3,
		Command: []string{"sh", "-c", script},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 3 {
		t.Fatalf("kept files %v, want 3 (rotate count)", res.Files)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "trace*.zst"))
	if len(files) != 3 {
		t.Errorf("files on disk %v, want 3", files)
	}
	seqs := map[int]bool{}
	var id string
	for _, f := range res.Files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := formats.Summarize(fh, f)
		fh.Close()
		if err != nil {
			t.Fatalf("%s is not readable alone: %v", f, err)
		}
		if s.Unreadable != 0 || s.Messages[formats.SourceAudit] == 0 {
			t.Errorf("%s: %d unreadable bytes, %d audit messages", f, s.Unreadable, s.Messages[formats.SourceAudit])
		}
		if id == "" {
			id = s.Header.CaptureID
		}
		if s.Header.CaptureID != id {
			t.Errorf("%s: capture id %q, want %q", f, s.Header.CaptureID, id)
		}
		seqs[s.Header.Sequence] = true
	}
	if seqs[0] || len(seqs) != 3 {
		t.Errorf("sequences kept %v: the oldest files should be gone", seqs)
	}
	// Each file after the first begins with the mount tables, written at
	// the rotation (a file can fill with audit records before the next
	// procfs record comes).
	for _, f := range res.Files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := formats.NewReader(fh, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, err := r.Next()
		fh.Close()
		var rec formats.ProcRecord
		if err != nil || first.Source != formats.SourceProcfs || rec.UnmarshalBinary(first.Data) != nil || rec.Kind != formats.ReasonMounts {
			t.Errorf("%s begins with %v (%v), kind %v: want the mount tables", f, first.Source, err, rec.Kind)
		}
	}
	// Each file carries the host's mount table (this process's
	// namespace) first, so that it is analyzed alone as in its set.
	link, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Files {
		var first *formats.ProcRecord
		for _, r := range readCapture(t, f).procfs {
			if r.Mountinfo != "" {
				first = &r
				break
			}
		}
		if first == nil || fmt.Sprintf("mnt:[%d]", first.MountNS()) != link || !strings.Contains(first.Mountinfo, " / / ") {
			t.Errorf("%s: first mount table %+v, want the host's (%s)", f, first, link)
		}
	}
	// The set replays as one stream in order.
	c := readCapture(t, res.Files[2], res.Files[0], res.Files[1])
	if c.info.Files[0] != res.Files[0] {
		t.Errorf("replay order %v, want %v", c.info.Files, res.Files)
	}
}

// auditState returns `auditctl -s` without its moving counters, and
// `auditctl -l`.
func auditState(t *testing.T) string {
	t.Helper()
	s, err := exec.Command("auditctl", "-s").CombinedOutput()
	if err != nil {
		t.Fatalf("auditctl -s: %v\n%s", err, s)
	}
	var keep []string
	for _, l := range strings.Split(string(s), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "lost" || f[0] == "backlog" || f[0] == "backlog_wait_time_actual") {
			continue
		}
		keep = append(keep, l)
	}
	l, err := exec.Command("auditctl", "-l").CombinedOutput()
	if err != nil {
		t.Fatalf("auditctl -l: %v\n%s", err, l)
	}
	return strings.Join(keep, "\n") + "\n--\n" + string(l)
}

// buildProctrail builds the command into a temporary directory.
func buildProctrail(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "proctrail")
	cmd := exec.Command("go", "build", "-o", bin, "proctrail/cmd/proctrail")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as `make build`: capabilities can be dropped
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestIntegrationAuditStateAfterExit(t *testing.T) {
	needRoot(t)
	needTool(t, "auditctl")
	bin := buildProctrail(t)
	dir := t.TempDir()
	before := auditState(t)
	check := func(t *testing.T, when string) {
		t.Helper()
		if after := auditState(t); after != before {
			t.Errorf("audit state %s:\n%s\nwant:\n%s", when, after, before)
		}
	}
	started := func(t *testing.T, cmd *exec.Cmd) {
		// Wait until the recorder has installed its rules.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if l, _ := exec.Command("auditctl", "-l").Output(); strings.Contains(string(l), "proctrail") {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("recorder did not install its rules")
	}

	t.Run("command exits", func(t *testing.T) {
		cmd := exec.Command(bin, "record", "-o", filepath.Join(dir, "a.zst"), "--", "sh", "-c", "exit 3")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("record exited with %v, want the command's code 3", err)
		}
		check(t, "after the command exited")
	})
	t.Run("command killed by a signal", func(t *testing.T) {
		cmd := exec.Command(bin, "record", "-o", filepath.Join(dir, "k.zst"), "--", "sh", "-c", "kill -KILL $$")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 128+9 {
			t.Errorf("record exited with %v, want 137 (128 + SIGKILL)", err)
		}
		check(t, "after the command was killed")
	})
	t.Run("SIGTERM", func(t *testing.T) {
		cmd := exec.Command(bin, "record", "-o", filepath.Join(dir, "b.zst"), "--duration", "1m")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started(t, cmd)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("record after SIGTERM: %v", err)
		}
		check(t, "after SIGTERM")
	})
	t.Run("SIGINT with a command that ignores it", func(t *testing.T) {
		cmd := exec.Command(bin, "record", "-o", filepath.Join(dir, "c.zst"), "--", "sh", "-c", "trap '' INT TERM; sleep 30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started(t, cmd)
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("recorder did not stop after SIGINT")
		}
		check(t, "after SIGINT")
	})
	t.Run("SIGKILL then next start", func(t *testing.T) {
		out := filepath.Join(dir, "d.zst")
		cmd := exec.Command(bin, "record", "-o", out, "--duration", "1m")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		started(t, cmd)
		time.Sleep(1500 * time.Millisecond) // let a frame close
		cmd.Process.Kill()
		cmd.Wait()
		if after := auditState(t); after == before {
			t.Log("note: SIGKILL left no stale state")
		}
		// The capture reads up to its last closed frame.
		fh, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		s, err := formats.Summarize(fh, out)
		fh.Close()
		if err != nil || s.Messages[formats.SourceProcfs] == 0 {
			t.Fatalf("killed capture: %v, %+v", err, s)
		}
		next := exec.Command(bin, "record", "-o", filepath.Join(dir, "e.zst"), "--duration", "200ms")
		msg, err := next.CombinedOutput()
		if err != nil {
			t.Fatalf("next start: %v\n%s", err, msg)
		}
		if !strings.Contains(string(msg), "killed proctrail recorder") {
			t.Errorf("next start did not say it removed stale state:\n%s", msg)
		}
		check(t, "after SIGKILL and the next start")
	})
}
