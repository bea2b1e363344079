package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"proctrail/internal/testenv"
)

// TestIntegrationInstallerChanges records testdata/scenarios/installer.sh
// (a build in a temporary directory, an install into a prefix with a
// set-uid helper and a symlink, the temporary directory removed) and
// reads what it changed, as an analyst does after record --
// ./installer.sh: analyze --changes (text), the JSON's changes, and the
// changes of one process's subtree (--pid).
func TestIntegrationInstallerChanges(t *testing.T) {
	testenv.NeedRoot(t)
	script, _ := filepath.Abs("../../testdata/scenarios/installer.sh")
	prefix := filepath.Join(t.TempDir(), "prefix")
	out := filepath.Join(t.TempDir(), "trace.zst")
	if code, _, stderr := runCLI(t, "record", "-o", out, "--", "sh", script, prefix); code != 0 {
		t.Fatalf("record: exit %d: %s", code, stderr)
	}
	code, js, stderr := runCLI(t, "analyze", out, "--cmd")
	if code != 0 {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	var doc struct {
		Changes struct {
			Processes   int
			Counts      map[string]int
			Directories []struct {
				Dir     string
				Counts  map[string]int
				Changes []struct {
					Op, Path, From, Target, Perm, Comm string
					Setuid, Gone                       bool
					PID                                int32
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	// What the script did, in the prefix: each change once, by the
	// program that made it (sh: its redirections), gone when the script
	// removed it later.
	build := prefix + "/.build.tmp"
	want := []string{
		"mkdir " + prefix + " by mkdir",
		"mkdir " + prefix + "/bin by mkdir",
		"mkdir " + prefix + "/lib by mkdir",
		"mkdir " + prefix + "/share by mkdir",
		"mkdir " + prefix + "/share/doc by mkdir",
		"mkdir " + prefix + "/share/doc/tool by mkdir",
		"mkdir " + build + " by mkdir gone",
		"create " + build + "/tool by sh gone",
		"create " + build + "/helper by sh gone",
		"create " + build + "/libtool.so.1 by sh gone",
		"create " + prefix + "/bin/tool by cp",
		"chmod " + prefix + "/bin/tool 0755 by chmod",
		"create " + prefix + "/bin/tool-helper by cp",
		"chmod " + prefix + "/bin/tool-helper 4755 setuid by chmod",
		"rename " + prefix + "/lib/libtool.so.1 from " + build + "/libtool.so.1 by mv",
		"symlink " + prefix + "/lib/libtool.so → libtool.so.1 by ln",
		"create " + prefix + "/share/doc/tool/README by sh",
		"unlink " + build + "/tool by rm",
		"unlink " + build + "/helper by rm",
		"rmdir " + build + " by rm",
	}
	var got []string
	dirs := map[string]bool{}
	for _, d := range doc.Changes.Directories {
		dirs[d.Dir] = true
		for _, c := range d.Changes {
			if !strings.HasPrefix(c.Path, prefix) {
				continue
			}
			if filepath.Dir(c.Path) != d.Dir {
				t.Errorf("%s listed under %s", c.Path, d.Dir)
			}
			comm := c.Comm // sh for the script's own redirections
			k := c.Op + " " + c.Path
			if c.From != "" {
				k += " from " + c.From
			}
			if c.Target != "" {
				k += " → " + c.Target
			}
			if c.Perm != "" && c.Op == "chmod" {
				k += " " + c.Perm
			}
			if c.Setuid {
				k += " setuid"
			}
			k += " by " + comm
			if c.Gone {
				k += " gone"
			}
			got = append(got, k)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("changes in the prefix:\n got %q\nwant %q", got, want)
	}
	for _, d := range []string{prefix + "/bin", prefix + "/lib", build} {
		if !dirs[d] {
			t.Errorf("no directory %s in the changes", d)
		}
	}

	// The text: a line of totals, each directory with its counts, the
	// set-uid chmod called out, what is gone marked.
	code, text, stderr := runCLI(t, "analyze", out, "--cmd", "--changes")
	if code != 0 {
		t.Fatalf("analyze --changes: exit %d: %s", code, stderr)
	}
	for _, w := range []string{
		"\n" + prefix + "/bin  (create 2, chmod 2)\n",
		"chmod       " + prefix + "/bin/tool-helper 4755 SETUID   by ",
		"symlink     " + prefix + "/lib/libtool.so → libtool.so.1   by ",
		"rename      " + prefix + "/lib/libtool.so.1 ← " + build + "/libtool.so.1   by ",
		"rmdir       " + build + "   by ",
		" (gone)\n",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("analyze --changes lacks %q:\n%s", w, text)
		}
	}

	// One process's subtree: the chmod of the helper, alone.
	var chmodPid int32
	for _, d := range doc.Changes.Directories {
		for _, c := range d.Changes {
			if c.Op == "chmod" && c.Setuid {
				chmodPid = c.PID
			}
		}
	}
	code, text, _ = runCLI(t, "analyze", out, "--pid", itoa(chmodPid), "--changes")
	if code != 0 || !strings.Contains(text, "1 changes in 1 directories by 1 processes: chmod 1") {
		t.Errorf("analyze --pid %d --changes: exit %d:\n%s", chmodPid, code, text)
	}
}

func itoa(n int32) string { b, _ := json.Marshal(n); return string(b) }
