package analyze_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
	// The capture is an artifact: `go test -artifacts` keeps it, for a
	// failure that does not come back when run again.
	out := capturePath(t)
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

// capturePath is where recordAndAnalyze records t's capture.
func capturePath(t *testing.T) string {
	return filepath.Join(t.ArtifactDir(), "trace.zst")
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
		if seenPath(&f) == path && f.Op == op {
			return &p.Files[i]
		}
	}
	return nil
}

// seenPath is the path f's process used.
func seenPath(f *analyze.File) string {
	if f.ContainerPath != "" {
		return f.ContainerPath
	}
	return f.Path
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
	explained := false
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
			if !explained {
				explained = true
				explainMounts(t, capturePath(t), m, c.p)
			}
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
			if strings.HasPrefix(seenPath(&f), "/proc/") && f.Filesystem == "proc" {
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

// TestIntegrationLiveFileChanges records testdata/scenarios/fschanges.sh
// (mkdir, rmdir, ln, ln -s, chmod u+s, chown, truncate, mkfifo, setfattr,
// touch -d, mount and umount of a tmpfs, kill -TERM of a child, a ptrace
// attach, a fileless exec) and compares what analyze found with strace -f
// of the same script run again: every change strace saw succeed, with
// its details, and nothing more; and the pids the script wrote down for
// its kill and its ptrace attach (strace cannot show that one: it traces
// the child already).
func TestIntegrationLiveFileChanges(t *testing.T) {
	needRoot(t)
	strace := testenv.NeedTool(t, "strace")
	testenv.NeedTool(t, "setfattr")
	testenv.NeedTool(t, "/usr/bin/python3")
	script, _ := filepath.Abs("../testdata/scenarios/fschanges.sh")

	dir := t.TempDir()
	m := recordAndAnalyze(t, "sh", script, dir)
	var got []string
	for _, p := range all(m) {
		got = append(got, changeKeys(p, dir)...)
	}

	dir2 := t.TempDir()
	prefix := filepath.Join(t.TempDir(), "st")
	cmd := exec.Command(strace, "-ff", "-qq", "-y", "-o", prefix, "-e", "trace="+straceCalls, "sh", script, dir2)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace: %v\n%s", err, out)
	}
	traces, _ := filepath.Glob(prefix + ".*")
	var want []string
	for _, f := range traces {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, ok := straceKey(line, dir2); ok {
				want = append(want, k)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	t.Logf("changes both saw: %q", got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-strace +analyze):\n%s", d)
	}
	for _, k := range []string{"chmod f 4644 setuid", "chmod sub 2755 setgid", "fileless", "kill SIGTERM", "symlink sym ../target"} {
		if !slices.Contains(got, k) {
			t.Errorf("analyze lacks %q (strace does not see it either, or the script changed)", k)
		}
	}

	// The pids only the run knows.
	facts, err := os.ReadFile(filepath.Join(dir, "facts"))
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]bool{}
	for _, p := range all(m) {
		for _, s := range p.Signals {
			if s.Error == "" {
				sent[fmt.Sprintf("%s %d", map[bool]string{true: "traced", false: "killed"}[s.Op == "ptrace"], s.TargetPID)] = true
			}
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(facts)), "\n") {
		if !sent[line] {
			t.Errorf("the script says %q; analyze's signals and attaches: %v", line, sent)
		}
	}
	if !strings.Contains(string(facts), "traced") {
		t.Errorf("the script's ptrace attach failed: %q", facts)
	}
}

// straceCalls are the syscalls the comparison traces.
const straceCalls = "mkdir,mkdirat,rmdir,unlinkat,link,linkat,symlink,symlinkat,chmod,fchmod,fchmodat," +
	"chown,fchown,fchownat,lchown,truncate,ftruncate,mknod,mknodat,setxattr,lsetxattr,fsetxattr," +
	"removexattr,lremovexattr,fremovexattr,utimensat,utimes,futimesat,utime,mount,umount2,kill,tkill,tgkill,execveat"

// changeKeys are p's changes in dir, and its signals and fileless execs,
// in the comparison's words.
func changeKeys(p *analyze.Process, dir string) []string {
	var out []string
	for _, f := range p.Files {
		if f.Error != "" || !strings.HasPrefix(f.Path, dir+"/") {
			continue
		}
		name := filepath.Base(f.Path)
		k := ""
		switch f.Op {
		case "mkdir", "chmod":
			k = f.Op + " " + name + " " + f.Perm
			if f.Setuid() {
				k += " setuid"
			}
			if f.Setgid() {
				k += " setgid"
			}
		case "rmdir", "setxattr", "removexattr", "mount", "umount":
			k = f.Op + " " + name
		case "link":
			k = "link " + name + " " + filepath.Base(f.Target)
		case "symlink":
			k = "symlink " + name + " " + f.Target
		case "chown":
			k = "chown " + name + " " + f.Owner
		case "truncate":
			k = "truncate " + name + " " + f.Size
		case "mknod":
			k = "mknod " + name + " " + f.Type + " " + f.Perm
		case "utime":
			k = "utime " + name + " " + f.Flags
		}
		if k != "" {
			out = append(out, k)
		}
	}
	for _, s := range p.Signals {
		if s.Op != "ptrace" && s.Error == "" {
			out = append(out, s.Op+" "+analyze.SignalName(s.Signal))
		}
	}
	for _, x := range p.Execs {
		if x.Fileless {
			out = append(out, "fileless")
		}
	}
	return out
}

var straceLine = regexp.MustCompile(`^(\w+)\((.*)\)\s+= (\d+)`)

// straceKey reads one line of strace -y: a successful call of a change in
// dir (relative names are: the script works there) in changeKeys' words.
func straceKey(line, dir string) (string, bool) {
	m := straceLine.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	call, args := m[1], splitArgs(m[2])
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	// A path argument, or an fd's path (-y prints 3</dir/f>).
	in := true
	name := func(s string) string {
		if i := strings.Index(s, "</"); i >= 0 && strings.HasSuffix(s, ">") {
			s = s[i+1 : len(s)-1]
		} else if u, err := strconv.Unquote(s); err == nil {
			s = u
		}
		if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, dir+"/") {
			in = false
		}
		return filepath.Base(s)
	}
	perm := func(s string, umask bool) string {
		if i := strings.LastIndexByte(s, '|'); i >= 0 {
			s = s[i+1:]
		}
		v, _ := strconv.ParseUint(s, 8, 32)
		if umask {
			v &^= 0o022
		}
		out := fmt.Sprintf("%04o", v&0o7777)
		if v&0o4000 != 0 {
			out += " setuid"
		}
		if v&0o2000 != 0 {
			out += " setgid"
		}
		return out
	}
	id := func(s string) string {
		if s == "-1" {
			return ""
		}
		return s
	}
	var k string
	switch call {
	case "mkdir":
		k = "mkdir " + name(arg(0)) + " " + perm(arg(1), true)
	case "mkdirat":
		k = "mkdir " + name(arg(1)) + " " + perm(arg(2), true)
	case "rmdir":
		k = "rmdir " + name(arg(0))
	case "unlinkat":
		if !strings.Contains(arg(2), "AT_REMOVEDIR") {
			return "", false
		}
		k = "rmdir " + name(arg(1))
	case "link":
		k = "link " + name(arg(1)) + " " + name(arg(0))
	case "linkat":
		k = "link " + name(arg(3)) + " " + name(arg(1))
	case "symlink":
		t, _ := strconv.Unquote(arg(0))
		k = "symlink " + name(arg(1)) + " " + t
	case "symlinkat":
		t, _ := strconv.Unquote(arg(0))
		k = "symlink " + name(arg(2)) + " " + t
	case "chmod", "fchmod":
		k = "chmod " + name(arg(0)) + " " + perm(arg(1), false)
	case "fchmodat":
		k = "chmod " + name(arg(1)) + " " + perm(arg(2), false)
	case "chown", "fchown", "lchown":
		k = "chown " + name(arg(0)) + " " + id(arg(1)) + ":" + id(arg(2))
	case "fchownat":
		k = "chown " + name(arg(1)) + " " + id(arg(2)) + ":" + id(arg(3))
	case "truncate", "ftruncate":
		k = "truncate " + name(arg(0)) + " " + arg(1)
	case "mknod":
		k = "mknod " + name(arg(0)) + " " + nodeKind(arg(1)) + " " + perm(arg(1), true)
	case "mknodat":
		k = "mknod " + name(arg(1)) + " " + nodeKind(arg(2)) + " " + perm(arg(2), true)
	case "setxattr", "lsetxattr", "fsetxattr":
		k = "setxattr " + name(arg(0))
	case "removexattr", "lremovexattr", "fremovexattr":
		k = "removexattr " + name(arg(0))
	case "utimensat":
		n := arg(1)
		if n == "NULL" {
			n = arg(0)
		}
		k = "utime " + name(n) + " " + map[bool]string{true: "now", false: "set"}[arg(2) == "NULL"]
	case "mount":
		k = "mount " + name(arg(1))
	case "umount2":
		k = "umount " + name(arg(0))
	case "kill", "tkill":
		return call + " " + arg(1), true
	case "tgkill":
		return call + " " + arg(2), true
	case "execveat":
		return "fileless", strings.Contains(arg(0), "memfd:")
	default:
		return "", false
	}
	return k, in
}

func nodeKind(mode string) string {
	for _, k := range [...][2]string{{"S_IFIFO", "fifo"}, {"S_IFCHR", "char"}, {"S_IFBLK", "block"}, {"S_IFSOCK", "socket"}, {"S_IFREG", "file"}} {
		if strings.Contains(mode, k[0]) {
			return k[1]
		}
	}
	return "file"
}

// splitArgs splits strace's argument list at its top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '[' || c == '{' || c == '(' || c == '<':
			depth++
		case c == ']' || c == '}' || c == ')' || c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// explainMounts logs what the capture of t (recordAndAnalyze's artifact)
// says of how p's paths were mapped: the procfs records (namespaces,
// container, mount tables) and the connector events of p and its
// ancestors, and their calls that change a mount table. A failure that
// does not come back when run again is then read from the log.
func explainMounts(t *testing.T, capture string, m *analyze.Model, p *analyze.Process) {
	t.Helper()
	if p == nil {
		return
	}
	parent := map[int32]int32{}
	for _, q := range all(m) {
		parent[int32(q.PID)] = int32(q.PPID)
	}
	pids := map[int32]bool{}
	for q, n := int32(p.PID), 0; q > 1 && n < 8; q, n = parent[q], n+1 {
		pids[q] = true
	}
	s, err := replay.Open([]string{capture}, nil)
	if err != nil {
		t.Logf("explain: %v", err)
		return
	}
	defer s.Close()
	pidField := regexp.MustCompile(` pid=(\d+) `)
	mountCall := regexp.MustCompile(` syscall=(308|272|165|166|155|429) `)
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d and its ancestors %v in the capture:\n", p.PID, slices.Sorted(maps.Keys(pids)))
	for lines := 0; lines < 300; {
		msg, err := s.Next()
		if err != nil {
			break
		}
		line := ""
		switch {
		case msg.ProcFS != nil && pids[msg.ProcFS.PID]:
			r := msg.ProcFS
			cg, _, _ := strings.Cut(r.Cgroup, "\n")
			line = fmt.Sprintf("procfs %s pid=%d gone=%v after=%q mnt=%d cgroup=%q exe=%q root=%q mountinfo=%d lines",
				r.Kind, r.PID, r.Gone, r.After, r.MountNS(), cg, r.Exe, r.Root, strings.Count(r.Mountinfo, "\n"))
		case msg.Proc != nil && msg.Proc.Kind == replay.ProcFork && pids[msg.Proc.ChildTGID]:
			e := msg.Proc
			line = fmt.Sprintf("connector fork parent=%d/%d child=%d/%d", e.ParentPID, e.ParentTGID, e.ChildPID, e.ChildTGID)
		case msg.Proc != nil && msg.Proc.Kind != replay.ProcFork && pids[msg.Proc.TGID]:
			line = fmt.Sprintf("connector %s pid=%d/%d", msg.Proc.Kind, msg.Proc.PID, msg.Proc.TGID)
		case msg.Audit != nil && mountCall.MatchString(msg.Audit.Text):
			if sm := pidField.FindStringSubmatch(msg.Audit.Text); sm != nil {
				if n, _ := strconv.Atoi(sm[1]); pids[int32(n)] {
					line = "audit " + msg.Audit.Text[:min(len(msg.Audit.Text), 200)]
				}
			}
		}
		if line != "" {
			fmt.Fprintf(&b, "%d %s\n", msg.Time, line)
			lines++
		}
	}
	t.Log(b.String())
}
