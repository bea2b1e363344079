package report

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// TestBrowserFoldedReads: the reads of a process with many are shown by
// directory; a directory lists its files on a click, the full list in
// order on demand; a search finds one file read, from a page that has
// not decompressed anything yet.
func TestBrowserFoldedReads(t *testing.T) {
	bctx := newBrowser(t)
	const perDir = 700
	model := readsModel(perDir)
	hits := func(tb *tab) []int {
		return eval[[]int](t, tb, `Array.from(document.querySelectorAll('#tree .row.hit')).map(function (r) { return +r.dataset.pid; })`)
	}

	t.Run("search", func(t *testing.T) {
		tb := openReport(t, bctx, "folded-search", model)
		tb.waitFor(t, `document.documentElement.dataset.ready === '1'`)
		for _, tt := range []struct {
			q    string
			want []int
		}{
			{"page699.8.gz", []int{101}},        // a folded read, any field
			{"path:/srv/cat2/f100", []int{103}}, // a folded read, by path
			{"path:/srv/cat/f99", []int{102}},   // reads of a process below the threshold
			{"path:/var/cache/man/index.db", []int{101}},
			{"path:/usr/share/man/man1/caf\ufffd.1.gz", []int{101}},
			{"path:/usr/share/man/man9/", []int{}},
		} {
			tb.typeSearch(t, tt.q)
			if diff := cmp.Diff(tt.want, hits(tb)); diff != "" {
				t.Errorf("search %q: hits (-want +got):\n%s", tt.q, diff)
			}
			tb.clearSearch(t)
		}
		tb.checkClean()
	})

	t.Run("detail", func(t *testing.T) {
		tb := openReport(t, bctx, "folded", model)
		tb.waitFor(t, `document.documentElement.dataset.ready === '1'`)
		tb.do(t, clickOn(`#tree .row[data-pid="101"]`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '101'`)

		// The Files table: every access but the reads.
		files := eval[string](t, tb, `document.querySelector('#files-section tbody').textContent`)
		for _, w := range []string{"/usr/bin/mandb", "/var/cache/man/index.db", "index.db.old", "missing.1.gz", "ENOENT", "libz.so.1", "tried 2 places", "/etc/manpath.config"} {
			if !strings.Contains(files, w) {
				t.Errorf("Files table lacks %q", w)
			}
		}
		if strings.Contains(files, "/usr/share/man/man5/") {
			t.Error("Files table lists reads that are folded")
		}

		// The reads by directory.
		type dir struct{ Dir, Count string }
		dirs := eval[[]dir](t, tb, `Array.from(document.querySelectorAll('#detail tr.rd-dir')).map(function (r) { return {Dir: r.dataset.dir, Count: r.dataset.count}; })`)
		want := []dir{{"/usr/share/man/man1", "702"}, {"/usr/share/man/man5", "700"}, {"/usr/share/man/man8", "700"}}
		if diff := cmp.Diff(want, dirs); diff != "" {
			t.Errorf("reads by directory (-want +got):\n%s", diff)
		}

		// A directory lists its files: SHOW of them, then all.
		tb.do(t, clickOn(`#detail tr.rd-dir[data-dir="/usr/share/man/man5"]`))
		tb.waitFor(t, `!!document.querySelector('#detail tr.rd-list[data-dir="/usr/share/man/man5"][data-ready="1"]')`)
		listed := func(d string) []string {
			return eval[[]string](t, tb, `Array.from(document.querySelectorAll('#detail tr.rd-list[data-dir="`+d+`"] tr.rd-file')).map(function (r) { return r.firstChild.textContent; })`)
		}
		if got := listed("/usr/share/man/man5"); len(got) != 500 || got[0] != "/usr/share/man/man5/page0.5.gz" {
			t.Errorf("man5 lists %d files, first %q; want 500, page0.5.gz first", len(got), got[:min(1, len(got))])
		}
		tb.do(t, clickOn(`#detail tr.rd-list[data-dir="/usr/share/man/man5"] button`))
		got := listed("/usr/share/man/man5")
		if len(got) != perDir {
			t.Errorf("man5 lists %d files after Show all, want %d", len(got), perDir)
		}
		for _, p := range got {
			if !strings.HasPrefix(p, "/usr/share/man/man5/page") {
				t.Errorf("man5 lists %q", p)
			}
		}
		// Names that are not UTF-8 or hold markup show as text.
		tb.do(t, clickOn(`#detail tr.rd-dir[data-dir="/usr/share/man/man1"]`))
		tb.waitFor(t, `!!document.querySelector('#detail tr.rd-list[data-dir="/usr/share/man/man1"][data-ready="1"]')`)
		man1 := listed("/usr/share/man/man1")
		for _, w := range []string{"/usr/share/man/man1/caf\ufffd.1.gz", "/usr/share/man/man1/<script>&.1.gz"} {
			if !slices.Contains(man1, w) {
				t.Errorf("man1 does not list %q", w)
			}
		}
		if n := eval[int](t, tb, `document.querySelectorAll('#detail script').length`); n != 0 {
			t.Errorf("%d script elements in the detail panel", n)
		}
		tb.do(t, chromedp.Evaluate[chromedp.Void](`document.getElementById('files-section').scrollIntoView()`))
		tb.screenshot(t, "folded-dirs")
		// A second click folds the directory again.
		tb.do(t, clickOn(`#detail tr.rd-dir[data-dir="/usr/share/man/man1"]`))
		tb.waitFor(t, `!document.querySelector('#detail tr.rd-list[data-dir="/usr/share/man/man1"]')`)

		// The full list, in order: the exec, then the reads as they came.
		tb.do(t, clickOn(`#files-all`))
		tb.waitFor(t, `document.getElementById('files-section').dataset.full === '1'`)
		paths := eval[[]string](t, tb, `Array.from(document.querySelectorAll('#files-section tbody tr')).slice(0, 4).map(function (r) { return r.children[2].textContent; })`)
		if diff := cmp.Diff([]string{"/usr/bin/mandb", "/usr/share/man/man1/page0.1.gz", "/usr/share/man/man5/page0.5.gz", "/usr/share/man/man8/page0.8.gz"}, paths); diff != "" {
			t.Errorf("full list starts (-want +got):\n%s", diff)
		}
		// 3*700+2 reads and 8 other accesses, two of them one search.
		if n := eval[string](t, tb, `document.querySelector('#files-section h3 .n').textContent`); n != "2,109" {
			t.Errorf("full list counts %s rows, want 2,109", n)
		}
		tb.screenshot(t, "folded")
		tb.checkClean()
	})
}
