//go:build linux

package analyze_test

import (
	"os"
	"path/filepath"
	"testing"

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

// TestIntegrationLiveStaleFD records staleFD: the unlink is reported at
// the directory's path, not at the closed file's.
func TestIntegrationLiveStaleFD(t *testing.T) {
	needRoot(t)
	py := testenv.NeedTool(t, "/usr/bin/python3")
	dir := t.TempDir()
	script := filepath.Join(dir, "stalefd.py")
	if err := os.WriteFile(script, []byte(staleFD), 0o644); err != nil {
		t.Fatal(err)
	}
	m := recordAndAnalyze(t, py, script, dir)
	var got []string
	for _, p := range all(m) {
		for _, f := range p.Files {
			if f.Op == "unlink" {
				got = append(got, f.Path)
			}
		}
	}
	want := filepath.Join(dir, "sub", "x")
	if len(got) != 1 || got[0] != want {
		t.Errorf("unlinks %q, want [%s]", got, want)
	}
	if _, err := os.Stat(want); !os.IsNotExist(err) {
		t.Errorf("%s still there (%v): the script did not run as the test expects", want, err)
	}
}
