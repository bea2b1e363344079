package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"go.yaml.in/yaml/v3"

	"proctrail/formats"
	"proctrail/internal/corpus"
)

// jsonModel is the part of analyze's JSON output the tests look at.
type jsonModel struct {
	Capture struct {
		SkippedLines int `json:"skipped_lines"`
		Sources      struct {
			Audit struct {
				Messages int `json:"messages"`
				Events   int `json:"events"`
			} `json:"audit"`
		} `json:"sources"`
	} `json:"capture"`
	Processes []jsonProcess `json:"processes"`
}

type jsonProcess struct {
	PID      int      `json:"pid"`
	PPID     int      `json:"ppid"`
	ExitCode *int     `json:"exit_code"`
	Exe      string   `json:"exe"`
	Argv     []string `json:"argv"`
	Cwd      string   `json:"cwd"`
	End      *string  `json:"end"`
	Files    []struct {
		Path string `json:"path"`
	} `json:"files"`
	Children []jsonProcess `json:"children"`
}

// all returns every process of the forest, parents before children.
func (m *jsonModel) all() []jsonProcess {
	var out []jsonProcess
	var walk func([]jsonProcess)
	walk = func(ps []jsonProcess) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Children)
		}
	}
	walk(m.Processes)
	return out
}

func analyzeJSON(t *testing.T, args ...string) (jsonModel, string) {
	t.Helper()
	code, out, stderr := runCLI(t, append([]string{"analyze"}, args...)...)
	if code != 0 {
		t.Fatalf("analyze %q: exit %d: %s", args, code, stderr)
	}
	var m jsonModel
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("analyze %q: output is not JSON: %v", args, err)
	}
	return m, stderr
}

// TestAnalyzeCorpus runs every file of the public corpus through analyze,
// in place: no panic, no error exit, JSON out. Then the YAML files of
// go-libaudit are taken apart and each test case's audit lines analyzed
// on their own: every record line must be read.
func TestAnalyzeCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	if len(files) < 100 {
		t.Fatalf("only %d corpus files", len(files))
	}
	var processes, messages, nCases int
	for _, p := range files {
		m, _ := analyzeJSON(t, p)
		processes += len(m.all())
		messages += m.Capture.Sources.Audit.Messages
		if !strings.HasSuffix(p, ".yaml") {
			continue
		}
		for name, lines := range yamlCases(t, p) {
			nCases++
			want := 0
			for l := range strings.Lines(lines) {
				if strings.HasPrefix(strings.TrimSpace(l), "type=") {
					want++
				}
			}
			tmp := filepath.Join(t.TempDir(), "case.log")
			os.WriteFile(tmp, []byte(lines), 0o600)
			m, _ := analyzeJSON(t, tmp)
			if got := m.Capture.Sources.Audit.Messages; got != want {
				t.Errorf("%s: case %s: %d records read, want %d", p, name, got, want)
			}
		}
	}
	if processes == 0 || messages == 0 || nCases == 0 {
		t.Fatalf("corpus: %d processes from %d records, %d yaml cases", processes, messages, nCases)
	}
	t.Logf("corpus: %d files, %d audit records, %d processes, %d yaml cases", len(files), messages, processes, nCases)
}

// yamlCases returns the audit log blocks of a go-libaudit test file: the
// string values of its maps that hold audit records.
func yamlCases(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cases := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(prefix+"/"+k, e)
			}
		case []any:
			for _, e := range v {
				walk(prefix, e)
			}
		case string:
			if strings.Contains(v, "type=") {
				cases[prefix] = v
			}
		}
	}
	walk("", doc)
	if len(cases) == 0 {
		t.Fatalf("%s: no audit lines in the YAML", path)
	}
	return cases
}

// auditOnlyLog is a log written for this test: a shell (pid 100) clones
// 101, which execs ls and exits 3; it vforks 102, which execs a missing
// program (the failed execve is no exec) and exits 127; 100 opens a file.
const auditOnlyLog = `# written for proctrail's tests: an x86_64 trace from audit alone
type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=56 success=yes exit=101 a0=1200011 a1=0 a2=0 a3=7f items=0 ppid=1 pid=100 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="proctrail"
type=EOE msg=audit(1700000000.100:10):
type=SYSCALL msg=audit(1700000000.110:11): arch=c000003e syscall=59 success=yes exit=0 a0=5616 a1=5617 a2=5618 a3=0 items=2 ppid=100 pid=101 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="ls" exe="/usr/bin/ls" key="proctrail"
type=EXECVE msg=audit(1700000000.110:11): argc=2 a0="ls" a1="-l"
type=CWD msg=audit(1700000000.110:11): cwd="/home/user"
type=PATH msg=audit(1700000000.110:11): item=0 name="/usr/bin/ls" inode=1 dev=fd:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0
type=PATH msg=audit(1700000000.110:11): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=2 dev=fd:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0
type=PROCTITLE msg=audit(1700000000.110:11): proctitle=6C73002D6C
type=EOE msg=audit(1700000000.110:11):
type=SYSCALL msg=audit(1700000000.120:12): arch=c000003e syscall=231 success=yes exit=0 a0=3 a1=0 a2=0 a3=0 items=0 ppid=100 pid=101 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="ls" exe="/usr/bin/ls" key="proctrail"
type=EOE msg=audit(1700000000.120:12):
type=SYSCALL msg=audit(1700000000.130:13): arch=c000003e syscall=58 success=yes exit=102 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=100 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="proctrail"
type=EOE msg=audit(1700000000.130:13):
type=SYSCALL msg=audit(1700000000.131:14): arch=c000003e syscall=59 success=no exit=-2 a0=5616 a1=5617 a2=5618 a3=0 items=1 ppid=100 pid=102 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="proctrail"
type=CWD msg=audit(1700000000.131:14): cwd="/home/user"
type=PATH msg=audit(1700000000.131:14): item=0 name="nosuch" nametype=UNKNOWN cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0
type=EOE msg=audit(1700000000.131:14):
type=SYSCALL msg=audit(1700000000.132:15): arch=c000003e syscall=231 success=yes exit=0 a0=7f a1=0 a2=0 a3=0 items=0 ppid=100 pid=102 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="proctrail"
type=EOE msg=audit(1700000000.132:15):
type=SYSCALL msg=audit(1700000000.140:16): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=5619 a2=0 a3=0 items=1 ppid=1 pid=100 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm="sh" exe="/bin/sh" key="proctrail"
type=CWD msg=audit(1700000000.140:16): cwd="/home/user"
type=PATH msg=audit(1700000000.140:16): item=0 name="../user/notes.txt" inode=3 dev=fd:01 mode=0100644 ouid=1000 ogid=1000 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0
type=EOE msg=audit(1700000000.140:16):
`

// TestAnalyzeAuditOnly builds the tree of a log that has no connector or
// procfs data: children from clone/vfork return values, argv from
// EXECVE, exits from exit_group, files from PATH records.
func TestAnalyzeAuditOnly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte(auditOnlyLog), 0o600)
	m, stderr := analyzeJSON(t, p)
	if !strings.Contains(stderr, "1 of 24 lines skipped (1 not audit records)") {
		t.Errorf("stderr %q: want the comment line counted", stderr)
	}
	byPID := map[int]jsonProcess{}
	for _, pr := range m.all() {
		byPID[pr.PID] = pr
	}
	for _, pid := range []int{100, 101, 102} {
		if _, ok := byPID[pid]; !ok {
			t.Fatalf("no process %d in %+v", pid, m.Processes)
		}
	}
	ls, vf, sh := byPID[101], byPID[102], byPID[100]
	if ls.PPID != 100 || vf.PPID != 100 {
		t.Errorf("parents: 101 → %d, 102 → %d; want 100", ls.PPID, vf.PPID)
	}
	if !slices.Equal(ls.Argv, []string{"ls", "-l"}) || ls.Exe != "/usr/bin/ls" || ls.Cwd != "/home/user" {
		t.Errorf("101: exe %q argv %q cwd %q", ls.Exe, ls.Argv, ls.Cwd)
	}
	if ls.ExitCode == nil || *ls.ExitCode != 3 || ls.End == nil {
		t.Errorf("101: exit %v end %v; want 3", ls.ExitCode, ls.End)
	}
	// 102's failed execve is no exec: its identity is that of its
	// records, the vforked shell's.
	if vf.ExitCode == nil || *vf.ExitCode != 127 || vf.Exe != "/bin/sh" {
		t.Errorf("102: exit %v exe %q; want 127 and /bin/sh", vf.ExitCode, vf.Exe)
	}
	var paths []string
	for _, f := range sh.Files {
		paths = append(paths, f.Path)
	}
	if !slices.Contains(paths, "/home/user/notes.txt") {
		t.Errorf("100's files %q: want /home/user/notes.txt", paths)
	}
}

// TestAnalyzeLogProblems checks what analyze says about the lines it
// skipped: a count per log always, each line with --verbose.
func TestAnalyzeLogProblems(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte("type=CWD msg=audit(1.001:1): cwd=\"/\"\nnot a record\ntype=SYSCALL msg=audit(1.0\ntype=NOSUCHTYPE msg=audit(1.001:2): x=1\n"), 0o600)
	m, stderr := analyzeJSON(t, p)
	if m.Capture.SkippedLines != 3 {
		t.Errorf("JSON skipped_lines = %d, want 3", m.Capture.SkippedLines)
	}
	want := p + ": 3 of 4 lines skipped (1 not audit records, 1 truncated, 1 of unknown record types); --verbose lists them"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q\nwant %q", stderr, want)
	}
	_, stderr = analyzeJSON(t, "--verbose", p)
	for _, w := range []string{p + ":2: not an audit record", p + ":3: ", p + `:4: record type "NOSUCHTYPE" is not in the audit tables`} {
		if !strings.Contains(stderr, w) {
			t.Errorf("verbose stderr %q lacks %q", stderr, w)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.log")
	os.WriteFile(empty, []byte("# only a comment\n"), 0o600)
	if code, _, stderr := runCLI(t, "analyze", empty); code != 1 || !strings.Contains(stderr, "no audit record") {
		t.Errorf("a log without records: exit %d, %q", code, stderr)
	}
}

// TestImport turns rotated logs, one gzip-compressed, into a capture: it
// declares the audit interface alone, names its logs, holds every record,
// and analyzes to the same trees as the logs themselves.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	lines := strings.SplitAfter(auditOnlyLog, "\n")
	older, newer := filepath.Join(dir, "audit.log.1"), filepath.Join(dir, "audit.log")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(strings.Join(lines[:12], "")))
	zw.Close()
	os.WriteFile(older, z.Bytes(), 0o600)
	os.WriteFile(newer, []byte(strings.Join(lines[12:], "")), 0o600)
	out := filepath.Join(dir, "imported.zst")
	code, _, stderr := runCLI(t, "import", "-o", out, newer, older)
	if code != 0 || !strings.Contains(stderr, "imported 23 audit records") {
		t.Fatalf("import: exit %d, %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := formats.Summarize(f, out)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sum.Header.ImportedFrom, []string{newer, older}) || sum.Messages != [formats.NumSources]uint64{0, 23, 0} {
		t.Errorf("imported capture: from %q, messages %v", sum.Header.ImportedFrom, sum.Messages)
	}
	code, info, _ := runCLI(t, "info", out)
	if code != 0 || !strings.Contains(info, "imported from auditd logs "+newer+" "+older) || strings.Contains(info, "connector") {
		t.Errorf("info: exit %d\n%s", code, info)
	}
	fromLogs, _ := analyzeJSON(t, older, newer)
	fromCapture, _ := analyzeJSON(t, out)
	if diff := cmp.Diff(fromLogs.Processes, fromCapture.Processes); diff != "" || len(fromLogs.all()) != 4 {
		t.Errorf("the import analyzes differently from its logs (-logs +capture):\n%s", diff)
	}

	// The output may not be one of the logs: refused before it is touched.
	if code, _, stderr := runCLI(t, "import", "-o", newer, older, newer); code != 2 || !strings.Contains(stderr, "is one of the logs") {
		t.Errorf("import -o LOG LOG: exit %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(newer); string(b) != strings.Join(lines[12:], "") {
		t.Error("import -o LOG LOG changed the log")
	}

	// A capture is no log; a text without records neither; no output is
	// left behind.
	for _, bad := range []string{out, filepath.Join(dir, "empty.log")} {
		os.WriteFile(filepath.Join(dir, "empty.log"), []byte("# nothing\n"), 0o600)
		out2 := filepath.Join(dir, "out2.zst")
		code, _, stderr := runCLI(t, "import", "-o", out2, bad)
		if code != 1 || !strings.Contains(stderr, bad) {
			t.Errorf("import %s: exit %d, %s", bad, code, stderr)
		}
		if _, err := os.Stat(out2); !os.IsNotExist(err) {
			t.Errorf("import %s left %s behind", bad, out2)
		}
	}
}

// TestInfoLog describes a gzip-compressed log.
func TestInfoLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log.2.gz")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(auditOnlyLog + "type=SYSCALL msg=audit(17\n"))
	zw.Close()
	os.WriteFile(p, z.Bytes(), 0o600)
	code, out, stderr := runCLI(t, "info", "--json", "--verbose", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var infos []fileInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	fi := infos[0]
	if fi.Format != "auditd log" || !fi.Gzip || fi.Log == nil || fi.Log.Records != 23 || fi.Log.NotRecords != 1 || fi.Log.Truncated != 1 ||
		fi.Sources["audit"].Messages != 23 || fi.Integrity.OK || len(fi.Log.Issues) != 2 || !strings.HasPrefix(fi.Log.Issues[1], "line 25: ") {
		t.Errorf("info %+v, log %+v", fi, fi.Log)
	}
	if fi.Start == nil || fi.Start.UnixMilli() != 1700000000100 || fi.End.UnixMilli() != 1700000000140 {
		t.Errorf("span %v to %v", fi.Start, fi.End)
	}
}

// TestReplayLogProblems: replay reports skipped lines like analyze.
func TestReplayLogProblems(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte("# comment\ntype=CWD msg=audit(1.001:1): cwd=\"/\"\n"), 0o600)
	code, out, stderr := runCLI(t, "replay", p, "--verbose")
	if code != 0 || !strings.Contains(out, `CWD audit(1.001:1): cwd="/"`) || !strings.Contains(stderr, p+":1: not an audit record") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestAnalyzeAuditOnlyContainer replays the runc container capture as an
// auditd log (audit records alone: no cgroups, no connector) and checks
// that pivot_root starts the container, named by the cgroup runc wrote
// its pid to, and that setns (runc exec) joins it.
func TestAnalyzeAuditOnlyContainer(t *testing.T) {
	capture := "../../testdata/analyze/container/capture.zst"
	code, log, stderr := runCLI(t, "replay", "--format", "audit", capture)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	p := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(p, []byte(log), 0o600)
	var full, alone struct {
		Containers []struct {
			ID, Rootfs string
			Processes  int
		} `json:"containers"`
	}
	for _, c := range []struct {
		file string
		into any
	}{{capture, &full}, {p, &alone}} {
		code, out, stderr := runCLI(t, "analyze", c.file)
		if code != 0 {
			t.Fatalf("analyze %s: exit %d: %s", c.file, code, stderr)
		}
		if err := json.Unmarshal([]byte(out), c.into); err != nil {
			t.Fatal(err)
		}
	}
	if len(full.Containers) != 1 || len(alone.Containers) != 1 {
		t.Fatalf("containers: %+v from the capture, %+v from audit alone", full.Containers, alone.Containers)
	}
	got, want := alone.Containers[0], full.Containers[0]
	if got.ID != want.ID || got.Rootfs != want.Rootfs || got.Processes < want.Processes-1 {
		t.Errorf("from audit alone: %+v; from the capture: %+v", got, want)
	}
	m, _ := analyzeJSON(t, p, "--container", want.ID[:12])
	var argvs []string
	for _, pr := range m.all() {
		argvs = append(argvs, strings.Join(pr.Argv, " "))
	}
	if !slices.Contains(argvs, "sh -c echo exec > /data/exec.txt") {
		t.Errorf("the runc exec'd shell is not in the container: %q", argvs)
	}
}
