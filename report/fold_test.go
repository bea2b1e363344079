package report

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// readsModel is a capture shaped like `dpkg -i` with mandb: dpkg reads
// a few files; mandb reads perDir manual pages in each of three
// directories, with a write, a failed open, a search, a rename and an
// unlink among them, a page whose name is not UTF-8 and one with markup
// in its name; cat reads exactly FoldReads files, cat2 one more.
func readsModel(perDir int) []byte {
	base := time.Date(2026, 12, 6, 9, 33, 30, 0, time.UTC)
	tick := 0
	ts := func() string {
		tick++
		return `"` + base.Add(time.Duration(tick)*37*time.Microsecond).Format("2006-01-02T15:04:05.000000000Z") + `"`
	}
	var b strings.Builder
	file := func(first *bool, path, op, extra string) {
		if !*first {
			b.WriteByte(',')
		}
		*first = false
		o := ts()
		fmt.Fprintf(&b, `{"path":%s,"op":%q%s,"open":%s,"close":%s}`, path, op, extra, o, ts())
	}
	q := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	proc := func(pid int, comm string, files func(first *bool)) {
		fmt.Fprintf(&b, `{"pid":%d,"ppid":1,"start":%s,"end":null,"exit_code":null,"signal":null,"uid":0,"comm":%q,"exe":"/usr/bin/%s","argv":[%q],"cwd":"/","before_capture":false,"execs":[],"threads":[],"files":[`,
			pid, ts(), comm, comm, comm)
		first := true
		files(&first)
		b.WriteString(`],"container":null,"children":[`)
	}
	b.WriteString(`{"schema":1,"capture":{"files":["dpkg.zst"],"host":"vm","kernel":"6.1","start":"2026-12-06T09:33:30.000000000Z","end":"2026-12-06T09:33:40.000000000Z","sources":{"connector":{"messages":1,"lost":0},"audit":{"messages":1,"events":1,"lost":0,"gaps":0},"procfs":{"records":0}},"unreadable_bytes":0},"containers":[],"processes":[`)
	proc(100, "dpkg", func(first *bool) {
		for k := range 20 {
			file(first, q(fmt.Sprintf("/var/lib/dpkg/info/pkg%d.list", k)), "open", `,"mode":"r"`)
		}
		file(first, q("/var/lib/dpkg/status-new"), "create", `,"mode":"w"`)
	})
	proc(101, "mandb", func(first *bool) {
		file(first, q("/usr/bin/mandb"), "exec", "")
		for k := range perDir {
			for _, d := range []string{"man1", "man5", "man8"} {
				file(first, q(fmt.Sprintf("/usr/share/man/%s/page%d.%s.gz", d, k, d[3:])), "open", `,"mode":"r"`)
			}
			switch k {
			case 3:
				file(first, q("/var/cache/man/index.db"), "create", `,"mode":"w"`)
			case 5:
				file(first, q("/usr/share/man/man1/missing.1.gz"), "open", `,"mode":"r","error":"ENOENT"`)
			case 7:
				file(first, q("/usr/local/lib/libz.so.1"), "open", `,"mode":"r","error":"ENOENT","search":true`)
				file(first, q("/usr/lib/libz.so.1"), "open", `,"mode":"r","search":true`)
			case 9:
				file(first, q("/var/cache/man/index.db"), "rename", `,"to":"/var/cache/man/index.db.old"`)
				file(first, q("/var/cache/man/index.db.old"), "unlink", "")
			case 11:
				file(first, "\"/usr/share/man/man1/caf\xe9.1.gz\"", "open", `,"mode":"r"`)
				file(first, q("/usr/share/man/man1/<script>&.1.gz"), "open", `,"mode":"r"`)
			}
		}
		file(first, q("/etc/manpath.config"), "open", `,"mode":"rw"`)
	})
	for _, c := range []struct {
		pid   int
		comm  string
		reads int
	}{{102, "cat", FoldReads}, {103, "cat2", FoldReads + 1}} {
		b.WriteString(`]},`)
		proc(c.pid, c.comm, func(first *bool) {
			for k := range c.reads {
				file(first, q(fmt.Sprintf("/srv/%s/f%d", c.comm, k)), "open", `,"mode":"r"`)
			}
		})
	}
	b.WriteString(`]}]}]}`)
	return []byte(b.String())
}

var foldedRE = regexp.MustCompile(`<script type="text/plain" id="files-folded">([^<]*)</script>`)

// unfold returns the model of page as the analyzer wrote it: the
// embedded model with each folded process's file list put back from the
// compressed lists. It fails unless every list is used once.
func unfold(t testing.TB, page string) any {
	t.Helper()
	doc := unmarshal(t, []byte(embedded(t, page)))
	var lists []any
	if m := foldedRE.FindAllStringSubmatch(page, -1); len(m) == 1 {
		raw, err := base64.StdEncoding.DecodeString(m[0][1])
		if err != nil {
			t.Fatalf("folded lists: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("folded lists: %v", err)
		}
		text, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("folded lists: %v", err)
		}
		if bytes.ContainsAny(text, "<>&\u2028\u2029") || !utf8Valid(text) {
			t.Errorf("folded lists hold a raw <, >, &, U+2028, U+2029 or invalid UTF-8")
		}
		if err := json.Unmarshal(text, &lists); err != nil {
			t.Fatalf("folded lists: %v", err)
		}
	} else if len(m) > 1 {
		t.Fatalf("page has %d folded lists", len(m))
	}
	used := make([]bool, len(lists))
	var walk func(ps any)
	walk = func(ps any) {
		list, _ := ps.([]any)
		for _, p := range list {
			p, _ := p.(map[string]any)
			if p == nil {
				continue
			}
			if k, ok := p["files_folded"].(float64); ok {
				i := int(k)
				if i < 0 || i >= len(lists) || used[i] {
					t.Fatalf("process %v: files_folded %v of %d lists", p["pid"], k, len(lists))
				}
				used[i] = true
				p["files"] = lists[i]
				delete(p, "files_folded")
				delete(p, "read_dirs")
			}
			walk(p["children"])
		}
	}
	if m, ok := doc.(map[string]any); ok {
		walk(m["processes"])
	}
	if i := slices.Index(used, false); i >= 0 {
		t.Errorf("folded list %d of %d is no process's", i, len(lists))
	}
	return doc
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\ufffd") == string(b) }

// procsByComm returns the processes of a model by comm.
func procsByComm(t *testing.T, model []byte) map[string]map[string]any {
	t.Helper()
	var doc struct{ Processes []map[string]any }
	if err := json.Unmarshal(model, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	var walk func(ps []map[string]any)
	walk = func(ps []map[string]any) {
		for _, p := range ps {
			out[p["comm"].(string)] = p
			var ch []map[string]any
			for _, c := range p["children"].([]any) {
				ch = append(ch, c.(map[string]any))
			}
			walk(ch)
		}
	}
	walk(doc.Processes)
	return out
}

// isReadEntry is the test's own reading of "a read": an open for reading
// that did not fail and is not a search attempt.
func isReadEntry(f map[string]any) bool {
	return f["op"] == "open" && f["mode"] == "r" && f["error"] == nil && f["search"] == nil
}

// TestFoldReads: a process with more than FoldReads reads keeps every
// other access in the page, its reads are counted per directory with
// their first and last times, and the full list, byte for byte, is in
// the page, compressed; the page is a fraction of the per-file one.
func TestFoldReads(t *testing.T) {
	const perDir = 700
	model := readsModel(perDir)
	page := render(t, model)

	if diff := cmp.Diff(unmarshal(t, model), unfold(t, page)); diff != "" {
		t.Errorf("model unfolded from the page differs (-want +got):\n%s", diff)
	}
	frame := render(t, []byte(`{"schema":1}`))
	if got, limit := len(page)-len(frame), len(model)/4; got > limit {
		t.Errorf("page adds %d bytes to a %d-byte model, want at most %d", got, len(model), limit)
	}
	t.Logf("model %d bytes, page %d bytes", len(model), len(page))

	orig := map[string][]any{}
	for comm, p := range procsByComm(t, model) {
		orig[comm] = p["files"].([]any)
	}
	procs := procsByComm(t, []byte(embedded(t, page)))
	for comm, folded := range map[string]bool{"dpkg": false, "mandb": true, "cat": false, "cat2": true} {
		p := procs[comm]
		_, hasDirs := p["read_dirs"]
		if hasDirs != folded {
			t.Errorf("%s: read_dirs present %v, want %v", comm, hasDirs, folded)
		}
		files := p["files"].([]any)
		if !folded {
			if len(files) != len(orig[comm]) {
				t.Errorf("%s: %d files in the page, want all %d", comm, len(files), len(orig[comm]))
			}
			continue
		}
		var want []string
		for _, f := range orig[comm] {
			if !isReadEntry(f.(map[string]any)) {
				want = append(want, fmt.Sprint(f))
			}
		}
		var got []string
		for _, f := range files {
			got = append(got, fmt.Sprint(f))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: the accesses kept one by one (-want +got):\n%s", comm, diff)
		}
	}

	// mandb's reads by directory: each directory's count, first and last.
	type dir struct {
		Dir         string
		Count       int
		First, Last string
	}
	wantDirs := map[string]*dir{}
	for _, f := range orig["mandb"] {
		f := f.(map[string]any)
		if !isReadEntry(f) {
			continue
		}
		path := f["path"].(string)
		d := path[:strings.LastIndexByte(path, '/')]
		if d == "" {
			d = "/"
		}
		w := wantDirs[d]
		if w == nil {
			w = &dir{Dir: d, First: f["open"].(string)}
			wantDirs[d] = w
		}
		w.Count++
		w.Last = f["close"].(string) // written in time order
	}
	var want []dir
	for _, w := range wantDirs {
		want = append(want, *w)
	}
	slices.SortFunc(want, func(a, b dir) int { return strings.Compare(a.Dir, b.Dir) })
	raw, _ := json.Marshal(procs["mandb"]["read_dirs"])
	var got []dir
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mandb's reads by directory (-want +got):\n%s", diff)
	}
	if len(got) != 3 || got[0].Count != perDir+2 {
		t.Errorf("mandb read %d directories, man1 %+v: want 3, %d reads in man1", len(got), got, perDir+2)
	}
}

func TestDirOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/usr/share/man/man1/ls.1.gz", "/usr/share/man/man1"},
		{"/vmlinuz", "/"},
		{"relative", "."},
		{"a/b", "a"},
	} {
		if got := dirOf(tt.in); got != tt.want {
			t.Errorf("dirOf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestWriteHTMLFrom: from a reader, the same page as from bytes; a
// reader's error is returned (the models both reject are in
// TestWriteHTMLRejects).
func TestWriteHTMLFrom(t *testing.T) {
	models := map[string][]byte{"reads": readsModel(300), "chain": chainModel(6000), "big": bigModel(2000),
		// encoding/json matches keys with escapes decoded and case folded
		"schema key": []byte(`{"SChemA":2,"sch\u0065ma":1}`)}
	for _, file := range testdataModels(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		models[filepath.Base(file)] = b
	}
	for name, model := range models {
		t.Run(name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := WriteHTML(&a, model); err != nil {
				t.Fatal(err)
			}
			if err := WriteHTMLFrom(&b, iotest.OneByteReader(bytes.NewReader(model))); err != nil {
				t.Fatal(err)
			}
			if a.String() != b.String() {
				t.Error("WriteHTMLFrom wrote another page than WriteHTML")
			}
		})
	}
	t.Run("reader fails", func(t *testing.T) {
		boom := errors.New("boom")
		r := io.MultiReader(bytes.NewReader(readsModel(300)[:5000]), iotest.ErrReader(boom))
		if err := WriteHTMLFrom(io.Discard, r); !errors.Is(err, boom) {
			t.Errorf("WriteHTMLFrom = %v, want the reader's error", err)
		}
	})
}

// BenchmarkWriteHTMLFrom writes the page of a model of 54,000 reads
// (readsModel) from a reader.
func BenchmarkWriteHTMLFrom(b *testing.B) {
	model := readsModel(18000)
	b.SetBytes(int64(len(model)))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteHTMLFrom(io.Discard, bytes.NewReader(model)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFoldLongList: a file list longer than foldBytes is folded however
// few reads it has, so it is never held whole; nothing of it is lost.
func TestFoldLongList(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"schema":1,"processes":[{"pid":7,"comm":"tar","files":[`)
	long := strings.Repeat("x", 200)
	n := 0
	for b.Len() < foldBytes+1000 {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"path":"/out/%s/%d","op":"create","mode":"w","open":"2026-12-06T09:33:30.000000000Z","close":null}`, long, n)
		n++
	}
	b.WriteString(`,{"path":"/etc/passwd","op":"open","mode":"r","open":"2026-12-06T09:33:31.000000000Z","close":"2026-12-06T09:33:32.000000000Z"}],"children":[]}]}`)
	model := []byte(b.String())
	page := render(t, model)
	if diff := cmp.Diff(unmarshal(t, model), unfold(t, page)); diff != "" {
		t.Errorf("model unfolded from the page differs (-want +got):\n%s", diff)
	}
	tar := procsByComm(t, []byte(embedded(t, page)))["tar"]
	if got := len(tar["files"].([]any)); got != n {
		t.Errorf("%d files kept, want the %d creations", got, n)
	}
	if diff := cmp.Diff([]any{map[string]any{"dir": "/etc", "count": 1.0, "first": "2026-12-06T09:33:31.000000000Z", "last": "2026-12-06T09:33:32.000000000Z"}}, tar["read_dirs"]); diff != "" {
		t.Errorf("read_dirs (-want +got):\n%s", diff)
	}
}
