//go:build linux

package analyze_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/internal/testenv"
)

// staleFD is a program whose dirfd would resolve to a stale path without
// close_range and fcntl(F_DUPFD_CLOEXEC) in the fd table, as dpkg's
// rm -rf did: fd 4 names a file, is closed by close_range, and becomes a
// copy of a directory's fd by fcntl; a file is then unlinked through it.
const staleFD = `
import ctypes, fcntl, os, sys
d = sys.argv[1]
os.makedirs(d + "/sub", exist_ok=True)
open(d + "/sub/x", "w").close()
dfd = os.open(d + "/sub", os.O_RDONLY | os.O_DIRECTORY)
decoy = os.open(d + "/decoy", os.O_CREAT | os.O_WRONLY)
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(436, decoy, decoy, 0) != 0:  # close_range(decoy, decoy, 0)
    sys.exit("close_range: %d" % ctypes.get_errno())
dup = fcntl.fcntl(dfd, fcntl.F_DUPFD_CLOEXEC, decoy)
assert dup == decoy, (dup, decoy)
os.close(dfd)
os.unlink("x", dir_fd=dup)
`

// recordPython records the Python script src run with args (the test's
// directory first), and returns the model and the unlinks it reports.
func recordPython(t *testing.T, src, dir string, args ...string) (*analyze.Model, []analyze.File) {
	t.Helper()
	needRoot(t)
	py := testenv.NeedTool(t, "/usr/bin/python3")
	script := filepath.Join(dir, "script.py")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m := recordAndAnalyze(t, append([]string{py, script, dir}, args...)...)
	var unlinks []analyze.File
	for _, p := range all(m) {
		for _, f := range p.Files {
			if f.Op == "unlink" {
				unlinks = append(unlinks, f)
			}
		}
	}
	return m, unlinks
}

// paths is the paths of files.
func paths(files []analyze.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// TestIntegrationLiveStaleFD records staleFD: the unlink is reported at
// the directory's path, not at the closed file's.
func TestIntegrationLiveStaleFD(t *testing.T) {
	dir := t.TempDir()
	_, unlinks := recordPython(t, staleFD, dir)
	got := paths(unlinks)
	want := filepath.Join(dir, "sub", "x")
	if len(got) != 1 || got[0] != want {
		t.Errorf("unlinks %q, want [%s]", got, want)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("%s still there (%v): the script did not run as the test expects", want, err)
	}
}

// outOfView makes a dirfd stale out of the audit's view, as no rule can
// prevent: fd N names directory a, is marked close-on-exec by
// fcntl(F_SETFD) (not audited), and the exec closes it; the new program
// gets fd N again from open_tree (not audited), an O_PATH fd of
// directory b (seen before: the first stage opened it) or c (made before
// the recording, never named in it), and unlinks a file through it.
const outOfView = `
import ctypes, fcntl, os, sys
d, stage = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
if stage == "1":
    os.close(os.open(d + "/b", os.O_RDONLY | os.O_DIRECTORY))
    fd = os.open(d + "/a", os.O_RDONLY | os.O_DIRECTORY)
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    with open(d + "/fd", "w") as f:
        f.write(str(fd))
    os.execv(sys.executable, [sys.executable, sys.argv[0], d, "2", str(fd)])
want = int(sys.argv[3])
for x in "bc":
    fd = libc.syscall(428, -100, (d + "/" + x).encode(), 0o2000000)  # open_tree(AT_FDCWD, …, OPEN_TREE_CLOEXEC)
    if fd != want:
        sys.exit("open_tree gave fd %d (errno %d), want %d" % (fd, ctypes.get_errno(), want))
    os.unlink("x", dir_fd=fd)
    os.close(fd)
`

// TestIntegrationLiveDirfdOutOfView records outOfView: the unlink through
// b's fd is reported at b/x (its PARENT record's inode is b's, found
// among the directories seen), the one through c's at
// /proc/PID/fd/N/x, marked unresolved; neither at the stale a/x.
func TestIntegrationLiveDirfdOutOfView(t *testing.T) {
	dir := t.TempDir()
	for _, x := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, x), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, x, "x"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, unlinks := recordPython(t, outOfView, dir, "1")
	got := paths(unlinks)
	var pid int32
	for _, p := range all(m) {
		for _, f := range p.Files {
			if f.Op == "unlink" {
				pid = p.PID
			}
		}
	}
	if len(got) != 2 {
		t.Fatalf("unlinks %q, want 2", got)
	}
	if want := filepath.Join(dir, "b", "x"); got[0] != want || unlinks[0].Unresolved {
		t.Errorf("unlink through b's fd: %s (unresolved %v), want %s", got[0], unlinks[0].Unresolved, want)
	}
	fd, err := os.ReadFile(filepath.Join(dir, "fd"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("/proc/%d/fd/%s/x", pid, fd); got[1] != want || !unlinks[1].Unresolved {
		t.Errorf("unlink through c's fd: %s (unresolved %v), want %s, unresolved", got[1], unlinks[1].Unresolved, want)
	}
	for _, x := range []string{"b", "c"} {
		if _, err := os.Stat(filepath.Join(dir, x, "x")); !os.IsNotExist(err) {
			t.Errorf("%s/x still there (%v): the script did not run as the test expects", x, err)
		}
	}
}

// pidfdCopy: a child takes its parent's dirfd with pidfd_getfd (the
// parent opened it after the fork, and says its number through a pipe)
// and unlinks a file through it.
const pidfdCopy = `
import ctypes, os, sys
d = sys.argv[1]
os.makedirs(d + "/sub", exist_ok=True)
open(d + "/sub/x", "w").close()
libc = ctypes.CDLL(None, use_errno=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    fd = int(os.read(r, 16))
    pidfd = libc.syscall(434, os.getppid(), 0)  # pidfd_open
    mine = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
    if pidfd < 0 or mine < 0:
        os._exit(3)
    os.unlink("x", dir_fd=mine)
    os._exit(0)
os.close(r)
decoy = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
fd = os.open(d + "/sub", os.O_RDONLY | os.O_DIRECTORY)
os.write(w, str(fd).encode())
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`

// TestIntegrationLivePidfdGetfd records pidfdCopy: the child's unlink is
// at the parent's directory.
func TestIntegrationLivePidfdGetfd(t *testing.T) {
	dir := t.TempDir()
	_, unlinks := recordPython(t, pidfdCopy, dir)
	got := paths(unlinks)
	for _, f := range unlinks {
		if f.Unresolved {
			t.Errorf("%s marked unresolved", f.Path)
		}
	}
	if want := filepath.Join(dir, "sub", "x"); len(got) != 1 || got[0] != want {
		t.Errorf("unlinks %q, want [%s]", got, want)
	}
}

// TestIntegrationLiveTarRm records `tar xf` of a tree (tar works through
// dirfds and /proc/self/fd) and `rm -rf` of it (unlinkat on dirfds of
// each level): every path is absolute and resolved, tar creates each
// file of the tree, and rm removes each.
func TestIntegrationLiveTarRm(t *testing.T) {
	needRoot(t)
	tar := testenv.NeedTool(t, "tar")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	var files, dirs []string // relative to src
	for _, d := range []string{"a", "a/b", "a/b/c", "a/d"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
		for _, f := range []string{"zstd", "f1", "f2"} {
			if err := os.WriteFile(filepath.Join(src, d, f), []byte(d+f), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, filepath.Join(d, f))
		}
	}
	archive := filepath.Join(dir, "t.tar")
	if out, err := exec.Command(tar, "cf", archive, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar cf: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	m := recordAndAnalyze(t, "/bin/sh", "-c", `cd "$1" && "$2" xf "$3" -C out && rm -rf out/a`, "sh", dir, tar, archive)
	got := map[string][]string{} // op → paths under out
	for _, p := range all(m) {
		for _, f := range p.Files {
			for _, s := range []string{f.Path, f.To, f.Target} {
				if s != "" && !strings.HasPrefix(s, "/") && f.Op != "symlink" {
					t.Errorf("pid %d: %s of a relative path %q", p.PID, f.Op, s)
				}
				if strings.HasPrefix(s, "/proc/") && strings.Contains(s, "/fd/") {
					// tar's fchmodat(AT_FDCWD, "/proc/self/fd/4")
					t.Errorf("pid %d: %s %s, not the fd's path", p.PID, f.Op, s)
				}
			}
			if f.Unresolved {
				t.Errorf("pid %d: %s %s unresolved", p.PID, f.Op, f.Path)
			}
			if rel, ok := strings.CutPrefix(f.Path, out+"/"); ok && f.Error == "" {
				got[f.Op] = append(got[f.Op], rel)
			}
		}
	}
	for _, c := range []struct {
		op   string
		want []string
	}{{"create", files}, {"mkdir", dirs}, {"chmod", append(slices.Clone(files), dirs...)}, {"unlink", files}, {"rmdir", dirs}} {
		g := slices.Sorted(slices.Values(got[c.op]))
		g = slices.Compact(g)
		if diff := cmp.Diff(slices.Sorted(slices.Values(c.want)), g); diff != "" {
			t.Errorf("%s (-tree +analyze):\n%s", c.op, diff)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "a")); !os.IsNotExist(err) {
		t.Errorf("out/a still there (%v)", err)
	}
}

// TestIntegrationLiveDpkg records dpkg installing, then removing, a small
// package built with dpkg-deb (maintainer scripts, a conffile): dpkg's
// rm -rf of /var/lib/dpkg/tmp.ci works through dirfds (the original
// stale-path case reported tmp.ci's files under /var/lib/dpkg/lock/).
// Every path is absolute and resolved; what dpkg unlinks under
// /var/lib/dpkg is in tmp.ci, info or updates, and the package's files
// are created and removed at their paths.
func TestIntegrationLiveDpkg(t *testing.T) {
	needRoot(t)
	dpkgDeb := testenv.NeedTool(t, "dpkg-deb")
	dpkg := testenv.NeedTool(t, "dpkg")
	const pkg = "proctrail-fd-test"
	if exec.Command(dpkg, "-s", pkg).Run() == nil {
		t.Fatalf("%s is installed: remove it first (dpkg -r %s)", pkg, pkg)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "pkg")
	for name, content := range map[string]string{
		"DEBIAN/control":                    "Package: " + pkg + "\nVersion: 1.0\nArchitecture: all\nMaintainer: proctrail tests <tests@example.invalid>\nDescription: proctrail's fd-table test\n",
		"DEBIAN/postinst":                   "#!/bin/sh\nset -e\nmkdir -p /var/lib/" + pkg + "\necho installed > /var/lib/" + pkg + "/state\n",
		"DEBIAN/postrm":                     "#!/bin/sh\nset -e\nrm -rf /var/lib/" + pkg + "\n",
		"usr/share/" + pkg + "/a/one.txt":   "one\n",
		"usr/share/" + pkg + "/a/b/two.txt": "two\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "DEBIAN/post") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, pkg+".deb")
	if out, err := exec.Command(dpkgDeb, "--build", "--root-owner-group", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(dpkg, "--purge", pkg).Run() })
	m := recordAndAnalyze(t, "/bin/sh", "-c", `"$1" -i "$2" && "$1" -r "$3"`, "sh", dpkg, deb, pkg)
	made, gone := map[string]bool{}, map[string]bool{}
	for _, p := range all(m) {
		for _, f := range p.Files {
			for _, s := range []string{f.Path, f.To} {
				if s != "" && !strings.HasPrefix(s, "/") {
					t.Errorf("pid %d %s: %s of a relative path %q", p.PID, p.Comm, f.Op, s)
				}
			}
			if f.Unresolved {
				t.Errorf("pid %d %s: %s %s unresolved", p.PID, p.Comm, f.Op, f.Path)
			}
			if f.Error != "" {
				continue
			}
			switch f.Op {
			case "unlink", "rmdir":
				gone[f.Path] = true
				if rel, ok := strings.CutPrefix(f.Path, "/var/lib/dpkg/"); ok {
					if top, _, _ := strings.Cut(rel, "/"); top != "tmp.ci" && top != "info" && top != "updates" && !strings.HasPrefix(top, "status") && !strings.HasPrefix(top, "available") && !strings.HasPrefix(top, "diversions") && !strings.HasPrefix(top, "statoverride") && top != "triggers" {
						t.Errorf("pid %d %s: %s %s", p.PID, p.Comm, f.Op, f.Path)
					}
				}
			case "create", "rename":
				made[f.Path] = true
				if f.To != "" {
					made[f.To] = true
				}
			}
		}
	}
	for _, name := range []string{"/usr/share/" + pkg + "/a/one.txt", "/usr/share/" + pkg + "/a/b/two.txt", "/var/lib/" + pkg + "/state"} {
		if !made[name] {
			t.Errorf("%s not created (nor renamed to)", name)
		}
		if !gone[name] {
			t.Errorf("%s not removed", name)
		}
	}
	if !gone["/var/lib/dpkg/tmp.ci/control"] {
		t.Errorf("dpkg's rm -rf of tmp.ci: /var/lib/dpkg/tmp.ci/control not among the removals")
	}
}
