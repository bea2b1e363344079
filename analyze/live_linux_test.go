package analyze_test

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"proctrail/analyze"
	"proctrail/internal/testenv"
	"proctrail/record"
	"proctrail/replay"
)

// Live end-to-end tests: record fresh runs of the testdata scenarios on this
// kernel and assert facts of the analysis (parents, threads, argv, paths,
// containers), not bytes.

var (
	needRoot = testenv.NeedRoot
	needTool = func(t *testing.T, name string) { testenv.NeedTool(t, name) }
)

// recordAndAnalyze records cmd and returns the --cmd subtree's model.
func recordAndAnalyze(t *testing.T, cmd ...string) *analyze.Model {
	t.Helper()
	out := filepath.Join(t.TempDir(), "trace.zst")
	res, err := record.Record(context.Background(), &record.Config{Output: out, Audit: true, Command: cmd, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("%v exited %d", cmd, res.ExitCode)
	}
	s, err := replay.Open([]string{out}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := analyze.Build(s, &analyze.Options{Cmd: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Processes) != 1 || !m.Processes[0].Command {
		t.Fatalf("--cmd gave %d roots, want the command", len(m.Processes))
	}
	// Every live model renders with the real dot.
	var dot bytes.Buffer
	if err := analyze.WriteDOT(&dot, m, &analyze.DOTOptions{Files: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("dot"); err == nil {
		c := exec.Command("dot", "-Tsvg", "-o", os.DevNull)
		c.Stdin = &dot
		if msg, err := c.CombinedOutput(); err != nil {
			t.Errorf("dot rejects the graph: %v\n%s", err, msg)
		}
	}
	return m
}

func walk(p *analyze.Process, fn func(*analyze.Process)) {
	fn(p)
	for _, c := range p.Children {
		walk(c, fn)
	}
}

func all(m *analyze.Model) []*analyze.Process {
	var ps []*analyze.Process
	for _, r := range m.Processes {
		walk(r, func(p *analyze.Process) { ps = append(ps, p) })
	}
	return ps
}

func find(m *analyze.Model, pred func(*analyze.Process) bool) *analyze.Process {
	for _, p := range all(m) {
		if pred(p) {
			return p
		}
	}
	return nil
}

func hasFile(p *analyze.Process, path, op string) *analyze.File {
	for i, f := range p.Files {
		if f.Path == path && f.Op == op {
			return &p.Files[i]
		}
	}
	return nil
}

// seenFile is p's access of op to the file it named path, in a
// container or not.
func seenFile(p *analyze.Process, path, op string) *analyze.File {
	for i, f := range p.Files {
		if cmp.Or(f.ContainerPath, f.Path) == path && f.Op == op {
			return &p.Files[i]
		}
	}
	return nil
}

// checkHostFile checks that f's host path holds content: the file the
// container's process wrote is there.
func checkHostFile(t *testing.T, f *analyze.File, content string) {
	t.Helper()
	if f == nil {
		t.Error("no such access")
		return
	}
	if f.ContainerPath == "" || f.ContainerPath == f.Path {
		t.Errorf("%+v: no container path, or the same as the host's", f)
	}
	b, err := os.ReadFile(f.Path)
	if err != nil || string(b) != content {
		t.Errorf("%s (%s in the container) on the host: %q, %v; want %q", f.Path, f.ContainerPath, b, err, content)
	}
}

func buildC(t *testing.T, name string) string {
	t.Helper()
	needTool(t, "gcc")
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("gcc", "-O2", "-pthread", "-o", bin, "../testdata/scenarios/"+name+".c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	os.Chmod(filepath.Dir(bin), 0o755)
	return bin
}

func TestIntegrationLivePipeline(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script, _ := filepath.Abs("../testdata/scenarios/pipeline.sh")
	m := recordAndAnalyze(t, "sh", script, dir)
	sh := m.Processes[0]
	// The pipeline's programs are children of the shell, with their argv.
	for _, argv := range [][]string{{"tr", "a-z", "A-Z"}, {"sort"}, {"mv", "upper.txt", "../src/../out/final.txt"}, {"rm", "count.txt"}} {
		p := find(m, func(p *analyze.Process) bool { return slices.Equal(p.Argv, argv) })
		if p == nil {
			t.Errorf("no process with argv %q", argv)
		} else if p.PPID != sh.PID {
			t.Errorf("%q: parent %d, want the shell %d", argv, p.PPID, sh.PID)
		}
	}
	// Paths are absolute and clean, relative to each cwd.
	final := filepath.Join(dir, "out", "final.txt")
	mv := find(m, func(p *analyze.Process) bool { return len(p.Argv) > 0 && p.Argv[0] == "mv" })
	if mv != nil {
		if f := hasFile(mv, filepath.Join(dir, "out", "upper.txt"), "rename"); f == nil || f.To != final {
			t.Errorf("mv files %+v: want a rename of out/upper.txt to %s", mv.Files, final)
		}
	}
	rm := find(m, func(p *analyze.Process) bool { return len(p.Argv) > 0 && p.Argv[0] == "rm" })
	if rm != nil && hasFile(rm, filepath.Join(dir, "out", "count.txt"), "unlink") == nil {
		t.Errorf("rm files %+v: want an unlink of out/count.txt", rm.Files)
	}
	if f := hasFile(sh, filepath.Join(dir, "src", "input.txt"), "create"); f == nil || f.Close == 0 || f.Mode != "w" {
		t.Errorf("the shell's redirect to src/input.txt: %+v", f)
	}
}

func TestIntegrationLiveThreads(t *testing.T) {
	needRoot(t)
	m := recordAndAnalyze(t, buildC(t, "threads"))
	p := m.Processes[0]
	if len(p.Threads) != 4 || p.Threads[0].TID != p.PID {
		t.Fatalf("threads %+v: want 4, main first", p.Threads)
	}
	main := p.Threads[0]
	for _, th := range p.Threads[1:] {
		if th.End <= main.End {
			t.Errorf("thread %d ended at %d, before the main thread (%d) which exits first", th.TID, th.End, main.End)
		}
	}
	if p.End != p.Threads[3].End {
		t.Errorf("process ends at %d, its last thread at %d", p.End, p.Threads[3].End)
	}
}

func TestIntegrationLiveOrphan(t *testing.T) {
	needRoot(t)
	m := recordAndAnalyze(t, buildC(t, "orphan"), "/bin/echo", "orphaned")
	top := m.Processes[0]
	if len(top.Children) != 1 {
		t.Fatalf("orphan's creator has %d children, want the middle one", len(top.Children))
	}
	middle := top.Children[0]
	if len(middle.Children) != 1 {
		t.Fatalf("middle process has %d children, want the orphan (its true parent, not init)", len(middle.Children))
	}
	orphan := middle.Children[0]
	if orphan.PPID != middle.PID || !slices.Equal(orphan.Argv, []string{"/bin/echo", "orphaned"}) {
		t.Errorf("orphan ppid %d argv %q; want %d and its exec'd argv", orphan.PPID, orphan.Argv, middle.PID)
	}
	if len(orphan.Threads) < 2 {
		t.Errorf("orphan threads %+v: want its own and the one it made before exec", orphan.Threads)
	}
}

// needContainers skips, or fails under CI, without root, runc and
// busybox-static.
func needContainers(t *testing.T) {
	t.Helper()
	needRoot(t)
	needTool(t, "runc")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("busybox-static is required under CI")
		}
		t.Skip("busybox-static not installed")
	}
}

func TestIntegrationLiveContainer(t *testing.T) {
	needContainers(t)
	dir := t.TempDir()
	script, _ := filepath.Abs("../testdata/scenarios/container.sh")
	m := recordAndAnalyze(t, "sh", script, dir)
	if len(m.Containers) != 1 {
		t.Fatalf("containers %+v, want one", m.Containers)
	}
	c := m.Containers[0]
	if len(c.ID) != 64 || c.Runtime != "docker" || c.Rootfs != filepath.Join(dir, "bundle", "rootfs") {
		t.Errorf("container %+v: want a 64-hex docker id and rootfs %s", c, filepath.Join(dir, "bundle", "rootfs"))
	}
	// The container's process wrote /data files; runc exec's process is
	// attributed too. Their paths are on the host, under the rootfs, and
	// the paths they used are kept.
	writer := find(m, func(p *analyze.Process) bool { return seenFile(p, "/data/a.txt", "create") != nil })
	exec := find(m, func(p *analyze.Process) bool { return seenFile(p, "/data/exec.txt", "create") != nil })
	if writer == nil || writer.Container != c.ID {
		t.Errorf("the process creating /data/a.txt: %+v, want it in %s", writer, c.ID)
	}
	if exec == nil || exec.Container != c.ID {
		t.Fatalf("the runc exec process: %+v, want it in %s", exec, c.ID)
	}
	if f := seenFile(writer, "/data/a.txt", "create"); f.Path != filepath.Join(c.Rootfs, "data/a.txt") {
		t.Errorf("/data/a.txt is at %s on the host, want %s", f.Path, filepath.Join(c.Rootfs, "data/a.txt"))
	}
	checkHostFile(t, seenFile(exec, "/data/exec.txt", "create"), "exec\n")
	for _, p := range all(m) {
		if strings.HasPrefix(p.Comm, "runc") && len(p.Argv) > 1 && p.Argv[1] == "spec" && p.Container != "" {
			t.Errorf("host process %d %q attributed to %s", p.PID, p.Argv, p.Container)
		}
	}
}

// TestIntegrationLiveContainerOverlay runs a container whose rootfs is an
// overlay with a bind-mounted volume: the files it and `runc exec` wrote
// are reported at their host paths (the overlay's merged directory, the
// volume's source), which hold what was written, with the paths they
// used as container_path; /proc and the container's /dev have none.
func TestIntegrationLiveContainerOverlay(t *testing.T) {
	needContainers(t)
	dir := t.TempDir()
	merged := filepath.Join(dir, "bundle", "rootfs")
	// The script leaves the overlay mounted for the checks.
	t.Setenv("KEEP_MOUNTED", "1")
	t.Cleanup(func() { exec.Command("umount", merged).Run() })
	script, _ := filepath.Abs("../testdata/scenarios/container-overlay.sh")
	m := recordAndAnalyze(t, "sh", script, dir)
	if len(m.Containers) != 1 {
		t.Fatalf("containers %+v, want one", m.Containers)
	}
	id := m.Containers[0].ID
	writer := find(m, func(p *analyze.Process) bool { return seenFile(p, "/data/a.txt", "create") != nil })
	execd := find(m, func(p *analyze.Process) bool { return seenFile(p, "/data/exec.txt", "create") != nil })
	if writer == nil || writer.Container != id || execd == nil || execd.Container != id {
		t.Fatalf("writer %+v, runc exec's %+v: want both in %s", writer, execd, id)
	}
	vol := filepath.Join(dir, "volume")
	for _, c := range []struct {
		p          *analyze.Process
		path, host string
		content    string
	}{
		{writer, "/data/a.txt", filepath.Join(vol, "a.txt"), "vol\n"},
		{writer, "/etc/motd", filepath.Join(merged, "etc/motd"), "root\n"},
		{writer, "/tmp/t/b.txt", filepath.Join(merged, "tmp/t/b.txt"), "tmp\n"},
		{execd, "/data/exec.txt", filepath.Join(vol, "exec.txt"), "exec\n"},
		{execd, "/etc/exec.txt", filepath.Join(merged, "etc/exec.txt"), "exec\n"},
	} {
		f := seenFile(c.p, c.path, "create")
		if f == nil || f.Path != c.host {
			t.Errorf("%s: %+v, want it at %s on the host", c.path, f, c.host)
			continue
		}
		checkHostFile(t, f, c.content)
	}
	// What has no host path says its file system; nothing of the
	// container keeps a relative path or names a host file it did not
	// use.
	procs := 0
	for _, p := range []*analyze.Process{writer, execd} {
		for _, f := range p.Files {
			if !strings.HasPrefix(f.Path, "/") {
				t.Errorf("pid %d: relative path %+v", p.PID, f)
			}
			if strings.HasPrefix(cmp.Or(f.ContainerPath, f.Path), "/proc/") && f.Filesystem == "proc" {
				procs++
			}
			if f.ContainerPath != "" && !strings.HasPrefix(f.Path, merged) && !strings.HasPrefix(f.Path, vol) {
				t.Errorf("pid %d: %s mapped to %s, outside the rootfs and the volume", p.PID, f.ContainerPath, f.Path)
			}
		}
	}
	if procs == 0 {
		t.Error("no /proc access of the container's processes says filesystem proc")
	}
}
