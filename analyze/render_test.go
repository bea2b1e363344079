package analyze

import (
	"bytes"
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/formats"
)

// richScript exercises every part of the model: threads, execs, files,
// a container with its rootfs, a snapshot process and a running one.
func richScript(t *testing.T) *script {
	s := newScript(t)
	s.at(0).procfs(formats.ProcRecord{Kind: formats.ReasonSnapshot, PID: 1, Comm: "init", Exe: "/sbin/init", Cmdline: []string{"/sbin/init"}, Cwd: "/"})
	s.at(1).fork(1, 10)
	s.at(2).exec(10)
	s.at(2).audit(10, 1, "execve", `comm="sh" exe="/usr/bin/dash"`, execve("sh", "-c", "cd /w && mv a b"), cwd("/"), pathRec(0, "/bin/sh", "NORMAL"))
	s.at(2.5).procfs(formats.ProcRecord{Kind: formats.ReasonCommand, PID: 10, PPID: 1})
	s.at(3).audit(10, 1, "chdir", "", cwd("/"), dirPath(0, "/w", "NORMAL", 5))
	s.at(4).fork(10, 11)
	s.at(5).exec(11)
	s.at(5).audit(11, 10, "execve", `comm="mv" exe="/usr/bin/mv"`, execve("mv", "a", "b"), cwd("/w"), pathRec(0, "/usr/bin/mv", "NORMAL"))
	s.at(6).audit(11, 10, "renameat2", "a0=ffffff9c a2=ffffff9c", cwd("/w"),
		dirPath(0, "/w", "PARENT", 5), dirPath(1, "/w", "PARENT", 5), pathRec(2, "a", "DELETE"), pathRec(3, "b", "CREATE"))
	s.at(7).exit(11, 11, 1, 0, 10)
	s.at(8).fork(10, 12)
	s.at(8).thread(10, 12, 13)
	s.at(9).audit(12, 10, "openat", "exit=3 a0=ffffff9c a2=0", cwd("/w"), pathRec(0, "b", "NORMAL"))
	s.at(10).audit(12, 10, "openat", "exit=4 a0=ffffff9c a2=241", cwd("/w"), dirPath(0, "/w", "PARENT", 5), pathRec(1, "c", "CREATE"))
	s.at(11).exit(12, 13, 0, 0, 10)
	s.at(12).fork(1, 20)
	s.at(12).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 20, PPID: 1, Cgroup: "0::/docker/" + cid + "\n"})
	s.at(13).audit(20, 1, "openat", "exit=5 a0=ffffff9c a2=10000", cwd("/b"), dirPath(0, "/b/rootfs", "NORMAL", 6))
	s.at(13).audit(20, 1, "fchdir", "a0=5", cwd("/b"))
	s.at(14).audit(20, 1, "pivot_root", "", cwd("/"), dirPath(0, ".", "NORMAL", 6), dirPath(1, ".", "NORMAL", 6))
	s.at(15).exit(20, 20, 0, 11|0x80, 1)
	s.at(16).exit(10, 10, 0, 0, 1)
	return s
}

func render(t *testing.T, m *Model, files bool) (js, dot []byte) {
	t.Helper()
	var j, d bytes.Buffer
	if err := WriteJSON(&j, m); err != nil {
		t.Fatal(err)
	}
	if err := WriteDOT(&d, m, &DOTOptions{Files: files}); err != nil {
		t.Fatal(err)
	}
	return j.Bytes(), d.Bytes()
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestJSONSchema(t *testing.T) {
	m := richScript(t).build(nil)
	js, _ := render(t, m, false)
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	check := func(what string, obj any, want []string) {
		t.Helper()
		o, ok := obj.(map[string]any)
		if !ok {
			t.Fatalf("%s is %T, not an object", what, obj)
		}
		if diff := cmp.Diff(sorted(want...), keys(o)); diff != "" {
			t.Errorf("%s keys (-want +got):\n%s", what, diff)
		}
	}
	check("document", doc, []string{"schema", "capture", "containers", "processes", "changes"})
	ch := doc["changes"].(map[string]any)
	check("changes", ch, []string{"processes", "counts", "directories"})
	for _, d := range ch["directories"].([]any) {
		check("changes directory", d, []string{"dir", "counts", "changes"})
		for _, c := range d.(map[string]any)["changes"].([]any) {
			want := []string{"op", "path", "time", "pid", "start", "comm"}
			if c.(map[string]any)["op"] == "rename" {
				want = append(want, "from")
			}
			check("change", c, want)
		}
	}
	if doc["schema"] != float64(1) {
		t.Errorf("schema = %v, want 1", doc["schema"])
	}
	capt := doc["capture"].(map[string]any)
	check("capture", capt, []string{"files", "host", "kernel", "start", "end", "sources", "unreadable_bytes", "skipped_lines"})
	src := capt["sources"].(map[string]any)
	check("sources", src, []string{"connector", "audit", "procfs"})
	check("connector", src["connector"], []string{"messages", "lost"})
	check("audit", src["audit"], []string{"messages", "events", "lost", "gaps"})
	check("procfs", src["procfs"], []string{"records"})
	check("container", doc["containers"].([]any)[0], []string{"id", "runtime", "rootfs", "processes"})

	pKeys := []string{"pid", "ppid", "start", "end", "exit_code", "signal", "uid", "comm", "exe", "argv", "cwd",
		"before_capture", "execs", "threads", "files", "container", "children"}
	timeRE := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
	var visit func(p map[string]any)
	n := 0
	visit = func(p map[string]any) {
		n++
		var ks []string
		for _, k := range keys(p) {
			if k != "command" && k != "core_dumped" { // documented extras
				ks = append(ks, k)
			}
		}
		if diff := cmp.Diff(sorted(pKeys...), ks); diff != "" {
			t.Errorf("process %v keys (-want +got):\n%s", p["pid"], diff)
		}
		if !timeRE.MatchString(p["start"].(string)) {
			t.Errorf("start %q is not RFC 3339 with nanoseconds", p["start"])
		}
		for _, x := range p["execs"].([]any) {
			check("exec", x, []string{"time", "exe", "argv", "cwd"})
		}
		for _, x := range p["threads"].([]any) {
			check("thread", x, []string{"tid", "start", "end"})
		}
		for _, x := range p["files"].([]any) {
			f := x.(map[string]any)
			want := []string{"path", "op", "open", "close"}
			if f["op"] == "open" || f["op"] == "create" {
				want = append(want, "mode")
			}
			if f["op"] == "rename" {
				want = append(want, "to")
			}
			check("file", f, want)
		}
		for _, c := range p["children"].([]any) {
			visit(c.(map[string]any))
		}
	}
	for _, p := range doc["processes"].([]any) {
		visit(p.(map[string]any))
	}
	if n != 5 {
		t.Errorf("%d processes in the JSON, want 5", n)
	}
	// Nulls where the schema allows them.
	for _, want := range []string{`"end": null`, `"exit_code": null`, `"signal": 11`, `"container": null`, `"close": null`, `"core_dumped": true`, `"to": "/w/b"`} {
		if !bytes.Contains(js, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestDeterminism(t *testing.T) {
	var first [2][]byte
	for i, procs := range []int{1, 4, 1, 4} {
		prev := runtime.GOMAXPROCS(procs)
		m := richScript(t).build(nil)
		js, dot := render(t, m, true)
		runtime.GOMAXPROCS(prev)
		if i == 0 {
			first = [2][]byte{js, dot}
			continue
		}
		if !bytes.Equal(js, first[0]) {
			t.Errorf("run %d (GOMAXPROCS %d): JSON differs:\n%s", i, procs, cmp.Diff(string(first[0]), string(js)))
		}
		if !bytes.Equal(dot, first[1]) {
			t.Errorf("run %d (GOMAXPROCS %d): DOT differs:\n%s", i, procs, cmp.Diff(string(first[1]), string(dot)))
		}
	}
}

func TestDOTRenders(t *testing.T) {
	m := richScript(t).build(nil)
	for _, files := range []bool{false, true} {
		_, dot := render(t, m, files)
		renderDOT(t, dot, "svg")
		plain := string(renderDOT(t, dot, "plain"))
		nodes, edges := strings.Count(plain, "\nnode "), strings.Count(plain, "\nedge ")
		wantNodes, wantEdges := 5, 4
		if files {
			// Files /bin/sh /usr/bin/mv /w /w/a /w/b /w/c /b/rootfs;
			// accesses: exec and chdir; exec, rename and renamed to; read
			// and create; read, fchdir and pivot_root.
			wantNodes, wantEdges = 5+7, 4+10
		}
		if nodes != wantNodes || edges != wantEdges {
			t.Errorf("files=%v: %d nodes, %d edges; want %d, %d\n%s", files, nodes, edges, wantNodes, wantEdges, dot)
		}
		if !strings.Contains(string(dot), "subgraph cluster_0 {") || !strings.Contains(string(dot), `rootfs /b/rootfs`) {
			t.Errorf("files=%v: no container cluster with its rootfs:\n%s", files, dot)
		}
	}
}

// hostile are names that try to break out of a label or a JSON string.
var hostile = []string{
	`a"];x[label="`,
	"two\nlines\r\tand\x00nul\x1b[31m",
	`back\slash\`,
	`trailing\`,
	"{record|<port> shape}",
	"<b>html</b> &amp; &#10; \\N \\G \\L",
	"bad utf8 \xff\xfe \xc3",
	"bidi \u202egnp.exe\u202c zero\u200bwidth",
	"-> p0; digraph { a }",
	"ünïcødé ✓",
}

func TestHostileNames(t *testing.T) {
	s := newScript(t)
	for i, name := range hostile {
		pid := int32(100 + i)
		s.at(float64(i)).fork(1, pid)
		s.at(float64(i)).comm(pid, name)
		s.at(float64(i)+0.5).audit(pid, 1, "openat", "exit=3 a0=ffffff9c a2=1", cwd("/"),
			"PATH item=0 name="+hexName("/tmp/"+name)+" inode=1 dev=fe:00 mode=0100644 nametype=NORMAL")
	}
	s.at(50).procfs(formats.ProcRecord{Kind: formats.ReasonFork, PID: 100, Cgroup: "0::/docker/" + cid})
	s.at(51).procfs(formats.ProcRecord{Kind: formats.ReasonExec, PID: 101, Cmdline: hostile, Exe: hostile[0]})
	s.at(51).exec(101)
	s.at(51).procfs(formats.ProcRecord{Kind: formats.ReasonExec, PID: 101, Cmdline: hostile, Exe: hostile[0]})
	m := s.build(nil)
	m.Capture.Host = hostile[0]
	m.Containers[0].Rootfs = strings.Join(hostile, "/")

	js, dot := render(t, m, true)
	if !json.Valid(js) {
		t.Fatalf("invalid JSON:\n%s", js)
	}
	var doc struct {
		Processes []struct {
			Children []struct {
				Comm string
				Argv []string
			}
		}
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Processes[0].Children[0].Comm; got != hostile[0] {
		t.Errorf("comm round trip = %q, want %q", got, hostile[0])
	}

	renderDOT(t, dot, "svg")
	plain := string(renderDOT(t, dot, "plain"))
	nodes := strings.Count(plain, "\nnode ")
	wantNodes := 1 + len(hostile) + len(hostile) // init, the processes, their files
	if nodes != wantNodes {
		t.Errorf("%d nodes, want %d: a label escaped its quotes\n%s", nodes, wantNodes, dot)
	}
	// Every line of the DOT is one statement: no name brought a newline.
	for _, line := range strings.Split(strings.TrimSuffix(string(dot), "\n"), "\n") {
		line = strings.TrimSpace(line)
		if !(strings.HasSuffix(line, ";") || strings.HasSuffix(line, "{") || line == "}") {
			t.Errorf("line %q is not a whole statement", line)
		}
	}
}

// hexName is how the kernel writes a name holding special bytes.
func hexName(s string) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

func TestDOTEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", `"a\\nb"`},
		{"{a|b}<c>", `"\{a\|b\}\<c\>"`},
		{"x&y", `"x&amp;y"`},
		{"\xff", `"\\xff"`},
		{"\x07", `"\\x07"`},
		{"\u202e", `"\\u202e"`},
		{"é✓", `"é✓"`},
	}
	for _, tt := range tests {
		if got := dotLabel(tt.in); got != tt.want {
			t.Errorf("dotLabel(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
