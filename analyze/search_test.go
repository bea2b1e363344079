package analyze

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// searchScript: pid 70 runs "make" found in the fifth directory of $PATH
// (execvp's tries; $PATH names /usr/local/bin twice), ld.so then looks for a library in three directories,
// finds it in the third; pid 71 looks for "frobnicate" in every directory
// and finds it nowhere; then a lone failed exec and a lone missing file.
func searchScript(t *testing.T) *script {
	s := newScript(t)
	s.at(0).fork(1, 70)
	for i, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/local/bin", "/usr/sbin"} {
		s.at(1+float64(i)*0.1).audit(70, 1, "execve", "success=no exit=-2", cwd("/w"), pathRec(0, dir+"/make", "UNKNOWN"))
	}
	s.at(2).exec(70).audit(70, 1, "execve", `comm="make" exe="/usr/bin/make"`, execve("make"), cwd("/w"), pathRec(0, "/usr/bin/make", "NORMAL"))
	for i, dir := range []string{"/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3", "/lib/x86_64-linux-gnu/tls"} {
		s.at(3+float64(i)*0.1).audit(70, 1, "openat", "success=no exit=-2 a0=ffffff9c a2=80000", cwd("/w"), pathRec(0, dir+"/libgnumake.so.1", "UNKNOWN"))
	}
	s.at(4).audit(70, 1, "openat", "exit=3 a0=ffffff9c a2=80000", cwd("/w"), pathRec(0, "/lib/x86_64-linux-gnu/libgnumake.so.1", "NORMAL"))
	s.at(5).audit(70, 1, "close", "a0=3")
	s.at(6).fork(70, 71)
	for i, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		s.at(7+float64(i)*0.1).audit(71, 70, "execve", "success=no exit=-2", cwd("/w"), pathRec(0, dir+"/frobnicate", "UNKNOWN"))
	}
	s.at(8).audit(71, 70, "execve", "success=no exit=-13", cwd("/w"), pathRec(0, "/w/script.sh", "NORMAL"))
	s.at(9).audit(71, 70, "openat", "success=no exit=-2 a0=ffffff9c a2=0", cwd("/w"), pathRec(0, "/etc/frob.conf", "UNKNOWN"))
	s.at(10).exit(71, 71, 127, 0, 70)
	s.at(11).exit(70, 70, 0, 0, 1)
	return s
}

func TestSearches(t *testing.T) {
	s := searchScript(t)
	m := s.build(nil)
	type att struct {
		Path, Op, Error string
		Search          bool
	}
	got := func(p *Process) []att {
		var out []att
		for _, f := range p.Files {
			out = append(out, att{f.Path, f.Op, f.Error, f.Search})
		}
		return out
	}
	want70 := []att{
		{"/usr/local/sbin/make", "exec", "ENOENT", true},
		{"/usr/local/bin/make", "exec", "ENOENT", true},
		{"/usr/local/bin/make", "exec", "ENOENT", true},
		{"/usr/sbin/make", "exec", "ENOENT", true},
		{"/usr/bin/make", "exec", "", true},
		{"/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libgnumake.so.1", "open", "ENOENT", true},
		{"/lib/x86_64-linux-gnu/tls/libgnumake.so.1", "open", "ENOENT", true},
		{"/lib/x86_64-linux-gnu/libgnumake.so.1", "open", "", true},
	}
	if diff := cmp.Diff(want70, got(one(t, m, 70))); diff != "" {
		t.Errorf("make's accesses (-want +got):\n%s", diff)
	}
	want71 := []att{
		{"/usr/local/bin/frobnicate", "exec", "ENOENT", true},
		{"/usr/bin/frobnicate", "exec", "ENOENT", true},
		{"/bin/frobnicate", "exec", "ENOENT", true},
		{"/w/script.sh", "exec", "EACCES", false},
		{"/etc/frob.conf", "open", "ENOENT", false},
	}
	if diff := cmp.Diff(want71, got(one(t, m, 71))); diff != "" {
		t.Errorf("the child's accesses (-want +got):\n%s", diff)
	}

	// The tree folds each search into one line.
	var txt bytes.Buffer
	if err := WriteText(&txt, m, &TextOptions{Files: true}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(txt.String()) {
		if f := strings.TrimLeft(l, "│└├─ "); strings.HasPrefix(f, "exec") || strings.HasPrefix(f, "open") {
			lines = append(lines, strings.TrimSpace(f))
		}
	}
	wantLines := []string{
		"exec /usr/bin/make (tried 4 places)",
		"open /lib/x86_64-linux-gnu/libgnumake.so.1 (r) (tried 3 places)",
		"exec frobnicate: command not found (tried 3 places)",
		"exec /w/script.sh EACCES",
		"open /etc/frob.conf (r) ENOENT",
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("tree lines (-want +got):\n%s\n%s", diff, txt.String())
	}
	// Streamed, the same lines and JSON.
	var st bytes.Buffer
	if _, err := BuildText(&st, s.source(), nil, &TextOptions{Files: true}); err != nil {
		t.Fatal(err)
	}
	if st.String() != txt.String() {
		t.Errorf("BuildText:\n%s\nWriteText:\n%s", st.String(), txt.String())
	}
	var js, ref bytes.Buffer
	if _, err := BuildJSON(&js, s.source(), nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&ref, m); err != nil {
		t.Fatal(err)
	}
	if js.String() != ref.String() || strings.Count(js.String(), `"search": true`) != 11 {
		t.Errorf("JSON: %d searches marked, BuildJSON and WriteJSON equal: %v", strings.Count(js.String(), `"search": true`), js.String() == ref.String())
	}

	// MarkSearches finds the same on the bare accesses.
	for _, pid := range []int32{70, 71} {
		p := one(t, m, pid)
		bare := append([]File(nil), p.Files...)
		for i := range bare {
			bare[i].Search = false
		}
		MarkSearches(bare)
		if diff := cmp.Diff(p.Files, bare); diff != "" {
			t.Errorf("MarkSearches of %d (-output +MarkSearches):\n%s", pid, diff)
		}
	}
}

// TestSearchBounded: a run longer than maxSearch is cut, each part a
// search, and nothing is lost.
func TestSearchBounded(t *testing.T) {
	var files []File
	for i := range maxSearch + 10 {
		files = append(files, File{Path: "/d" + strings.Repeat("x", i) + "/lib.so", Op: "open", Error: "ENOENT"})
	}
	files = append(files, File{Path: "/lib/lib.so", Op: "open"}, File{Path: "/other", Op: "open", Error: "ENOENT"})
	MarkSearches(files)
	for i, f := range files {
		if want := i < len(files)-1; f.Search != want {
			t.Fatalf("access %d %s: search %v", i, f.Path, f.Search)
		}
	}
}
