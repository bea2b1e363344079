package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/go-cmp/cmp"
)

// The tests in this file drive the real page in headless Chromium (Debian
// package chromium). They skip when it is missing, except under CI=true,
// where they fail. CHROMIUM names another binary.

// chromium returns the browser binary or skips the test.
func chromium(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: apt-get install chromium")
	}
	t.Skip("chromium not found; install the Debian package chromium")
	return ""
}

// newBrowser starts one headless browser for the test; each page opens in
// a tab of its own.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	bin := chromium(t)
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, with a generous timeout for a cold start.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab is one report page open in the browser, with everything it did that
// a report must never do.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string

	mu         sync.Mutex
	requests   []string // URLs other than the page itself
	blocked    []string // requests the browser refused, with the reason
	dialogs    []string
	console    []string
	exceptions []string
}

// hookScript runs before the page's own script: it records CSP violations
// (blocked fetches or handlers), which would show an injection even when
// the policy stopped it.
const hookScript = `window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});`

// openReport renders model to dir/name.html and opens it in a new tab.
func openReport(t *testing.T, bctx context.Context, name string, model []byte) *tab {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, model); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".html")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, url: (&url.URL{Scheme: "file", Path: file}).String()}
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if u != tb.url && !strings.HasPrefix(u, "data:") {
				tb.requests = append(tb.requests, u)
			}
		case *network.EventLoadingFailed:
			if ev.BlockedReason != "" {
				tb.blocked = append(tb.blocked, string(ev.RequestID)+" "+ev.BlockedReason.String())
			}
		case *page.EventJavascriptDialogOpening:
			tb.dialogs = append(tb.dialogs, ev.Type.String()+": "+ev.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			tb.console = append(tb.console, ev.Type.String()+" "+strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			tb.exceptions = append(tb.exceptions, (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: hookScript}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(tb.url),
		chromedp.WaitReady(chromedp.CSS(`html[data-ready="1"]`)),
	); err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(tb.checkClean)
	return tb
}

// checkClean fails the test for any request, dialog, console call,
// exception or CSP violation the page caused.
func (tb *tab) checkClean() {
	t := tb.t
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp`))
	if err != nil {
		t.Errorf("read CSP violations: %v", err)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, list := range []struct {
		what string
		got  []string
	}{
		{"network requests", tb.requests},
		{"dialogs", tb.dialogs},
		{"console calls", tb.console},
		{"exceptions", tb.exceptions},
		{"CSP violations", csp},
	} {
		if len(list.got) > 0 {
			t.Errorf("the page made %s: %q", list.what, list.got)
		}
	}
}

// actionTimeout bounds each step: a query for an element that never
// shows would otherwise wait for ever.
const actionTimeout = 20 * time.Second

func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a JavaScript condition.
func (tb *tab) waitFor(t *testing.T, js string) {
	t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v", js, err)
	}
}

// typeSearch types q into the search box, a key at a time as a reader
// does, and waits until the page has applied the whole query. The page
// applies a search a moment after each key, so the count it shows first
// may be that of a prefix of q; #search-count's data-query says which
// query the page shows.
func (tb *tab) typeSearch(t *testing.T, q string) {
	t.Helper()
	tb.do(t, chromedp.SendKeys(chromedp.CSS("#search"), q))
	tb.waitFor(t, `document.getElementById('search-count').dataset.query === `+jsString(t, q))
}

// clearSearch clears the search with Escape, as a reader does.
func (tb *tab) clearSearch(t *testing.T) {
	t.Helper()
	tb.do(t, clickOn("#search"), chromedp.KeyEvent(kb.Escape))
	tb.waitFor(t, `(function (c) { return document.getElementById('search').value === '' && c.textContent === '' && c.dataset.query === undefined; })(document.getElementById('search-count'))`)
}

// jsString returns s as a JavaScript string literal.
func jsString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clickOn clicks the middle of the element that css selects, scrolled
// into view, with real mouse events. (chromedp.Click waits for chromedp's
// own copy of the DOM, which misses rows inserted deep in a subtree.)
func clickOn(css string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(function () {
		var e = document.querySelector(%q);
		if (!e) return null;
		e.scrollIntoView({block: 'nearest'});
		var r = e.getBoundingClientRect();
		return {x: r.left + r.width / 2, y: r.top + r.height / 2};
	})()`, css)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		pt, err := chromedp.Evaluate[*struct{ X, Y float64 }](js)(ctx, t)
		if err != nil {
			return chromedp.Void{}, err
		}
		if pt == nil {
			return chromedp.Void{}, fmt.Errorf("click: no element %s", css)
		}
		return chromedp.MouseClickXY(pt.X, pt.Y)(ctx, t)
	}
}

// visiblePids lists the pids of the process rows a reader can see, in
// order (rows inside collapsed subtrees have no layout box).
func (tb *tab) visiblePids(t *testing.T) []int {
	t.Helper()
	return eval[[]int](t, tb, `Array.from(document.querySelectorAll('#tree .row[data-pid]'))
		.filter(function (r) { return r.getClientRects().length > 0; })
		.map(function (r) { return +r.dataset.pid; })`)
}

// screenshot saves the page as artifacts/report/NAME.png at the root of
// the module.
func (tb *tab) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "artifacts", "report")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readModel(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "report", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestBrowserSmall(t *testing.T) {
	bctx := newBrowser(t)
	model := readModel(t, "small.json")
	all := countProcs(t, model)
	tb := openReport(t, bctx, "small", model)

	t.Run("header", func(t *testing.T) {
		if got := eval[string](t, tb, `document.getElementById('host').textContent`); got != "buildbox" {
			t.Errorf("host = %q", got)
		}
		facts := eval[string](t, tb, `document.getElementById('facts').textContent`)
		for _, want := range []string{"6.1.0-18-amd64", "1,843 msgs", "5,120 msgs", "1,210 events", "212 records"} {
			if !strings.Contains(facts, want) {
				t.Errorf("header facts %q lack %q", facts, want)
			}
		}
		if eval[bool](t, tb, `!document.getElementById('loss-banner').hidden`) {
			t.Error("loss banner shown for a capture without losses")
		}
		if got := eval[string](t, tb, `document.getElementById('span').textContent`); !strings.Contains(got, "2024-05-14 09:30:00.000000000") || !strings.Contains(got, "12.5 s") {
			t.Errorf("time span = %q", got)
		}
	})

	t.Run("groups", func(t *testing.T) {
		got := eval[[]string](t, tb, `Array.from(document.querySelectorAll('#tree .group')).map(function (g) { return g.dataset.container; })`)
		want := []string{"", "3f2a9c41d7e8b0a5c6d2e1f4a3b5c7d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		head := eval[string](t, tb, `document.querySelector('#tree .group[data-container^="3f2a"] .group-head').textContent`)
		for _, w := range []string{"3f2a9c41d7e8", "docker", "/var/lib/docker/overlay2/9d1c0e7a/merged", "2 processes"} {
			if !strings.Contains(head, w) {
				t.Errorf("container heading %q lacks %q", head, w)
			}
		}
		inCt := eval[[]int](t, tb, `Array.from(document.querySelectorAll('#tree .group[data-container^="3f2a"] .row[data-pid]')).map(function (r) { return +r.dataset.pid; })`)
		if diff := cmp.Diff([]int{5001, 5002}, inCt); diff != "" {
			t.Errorf("container rows (-want +got):\n%s", diff)
		}
	})

	t.Run("expand all", func(t *testing.T) {
		tb.do(t, clickOn("#expand-all"))
		got := tb.visiblePids(t)
		if len(got) != len(all) {
			t.Errorf("%d rows after expanding all, model has %d processes", len(got), len(all))
		}
		if diff := cmp.Diff(sorted(all), sorted(got)); diff != "" {
			t.Errorf("pids (-want +got):\n%s", diff)
		}
	})

	t.Run("expand a node", func(t *testing.T) {
		tb.do(t, clickOn("#collapse-all"))
		if diff := cmp.Diff([]int{812, 3010, 5001}, tb.visiblePids(t)); diff != "" {
			t.Errorf("rows when collapsed (-want +got):\n%s", diff)
		}
		if n := eval[int](t, tb, `document.querySelectorAll('#tree .row[data-pid="4301"]').length`); n != 0 {
			t.Errorf("a collapsed subtree was built: %d rows of pid 4301", n)
		}
		tb.do(t, clickOn(`#tree .row[data-pid="812"] .tog`))
		if diff := cmp.Diff([]int{812, 4301, 3010, 5001}, tb.visiblePids(t)); diff != "" {
			t.Errorf("rows after expanding 812 (-want +got):\n%s", diff)
		}
		tb.do(t, clickOn(`#tree .row[data-pid="4301"] .tog`),
			clickOn(`#tree .row[data-pid="4420"] .tog`))
		if diff := cmp.Diff([]int{812, 4301, 4420, 4421, 4425, 4427, 4428, 3010, 5001}, tb.visiblePids(t)); diff != "" {
			t.Errorf("rows after expanding make (-want +got):\n%s", diff)
		}
		tb.do(t, clickOn(`#tree .row[data-pid="812"] .tog`))
		if diff := cmp.Diff([]int{812, 3010, 5001}, tb.visiblePids(t)); diff != "" {
			t.Errorf("rows after collapsing 812 (-want +got):\n%s", diff)
		}
	})

	search := func(t *testing.T, q string) {
		t.Helper()
		tb.clearSearch(t)
		tb.typeSearch(t, q)
	}
	for _, tt := range []struct {
		name, query string
		visible     []int // rows shown: matches and their ancestors
		hits        []int // rows marked as matches
	}{
		{"comm", "cc1", []int{812, 4301, 4420, 4421, 4422, 4423}, []int{4423}},
		{"argv", "--out", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"path", "tables.h", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"pid", "4426", []int{812, 4301, 4420, 4425, 4426}, []int{4426}},
		{"pid prefix", "pid:4426", []int{812, 4301, 4420, 4425, 4426}, []int{4426}},
		{"container id", "3f2a9c", []int{3010, 5001, 5002}, []int{3010, 5001, 5002}}, // the shim's argv holds it
		{"container only", "ct:3f2a9c", []int{3010, 5001, 5002}, []int{5001, 5002}},
		{"two terms", "sh main.o", []int{812, 4301, 4420, 4421, 4425}, []int{4421, 4425}},
		{"case", "PYTHON3", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"container path", "path:/data/out.txt", []int{3010, 5001, 5002}, []int{5002}},
		{"host path", "path:volumes/data/_data", []int{3010, 5001, 5002}, []int{5002}},
		{"address", "203.0.113.7", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"net address", "net:203.0.113.7", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"net inet6", "net:2001:db8::53", []int{812, 4301, 4420, 4428}, []int{4428}},
		{"net port", "net::443", []int{812, 4301, 4420, 4428}, []int{4428}}, // not 3010's :4430
		{"net other port", "net::4430", []int{3010}, []int{3010}},
		{"net unix path", "net:/run/containerd", []int{3010}, []int{3010}},
		{"net none", "net:192.0.2.1", []int{}, []int{}},
	} {
		t.Run("search "+tt.name, func(t *testing.T) {
			search(t, tt.query)
			if diff := cmp.Diff(tt.visible, tb.visiblePids(t)); diff != "" {
				t.Errorf("rows for %q (-want +got):\n%s", tt.query, diff)
			}
			hits := eval[[]int](t, tb, `Array.from(document.querySelectorAll('#tree .row.hit')).map(function (r) { return +r.dataset.pid; })`)
			if diff := cmp.Diff(tt.hits, hits); diff != "" {
				t.Errorf("matches for %q (-want +got):\n%s", tt.query, diff)
			}
		})
	}
	t.Run("search nothing", func(t *testing.T) {
		search(t, "no-such-thing")
		if got := tb.visiblePids(t); len(got) != 0 {
			t.Errorf("rows %v for a search without match", got)
		}
		if got := eval[string](t, tb, `document.getElementById('tree').textContent`); !strings.Contains(got, "No process matches") {
			t.Errorf("tree says %q", got)
		}
	})

	t.Run("detail", func(t *testing.T) {
		search(t, "cc1")
		tb.do(t, clickOn(`#tree .row[data-pid="4422"] .comm`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4422'`)
		kv := eval[map[string]string](t, tb, `Object.fromEntries(Array.from(document.querySelectorAll('#detail dd')).map(function (d) { return [d.dataset.k, d.textContent]; }))`)
		want := map[string]string{
			"exe":       "/usr/bin/x86_64-linux-gnu-gcc-12",
			"argv":      "cc-O2-cmain.c-omain.o",
			"cwd":       "/home/ana/src/app",
			"uid":       "1000",
			"parent":    "4421 sh",
			"container": "host",
			"start":     "2024-05-14 09:30:02.300000000 UTC (+2.30 s)",
			"end":       "2024-05-14 09:30:04.130000000 UTC (+4.13 s)",
			"duration":  "1.83 s",
			"exit":      "code 0",
		}
		if diff := cmp.Diff(want, kv); diff != "" {
			t.Errorf("detail of 4422 (-want +got):\n%s", diff)
		}
		tables := eval[map[string]int](t, tb, `Object.fromEntries(Array.from(document.querySelectorAll('#detail h3')).map(function (h) {
			var t = h.nextElementSibling; return [h.firstChild.textContent, t && t.tagName === 'TABLE' ? t.tBodies[0].rows.length : 0]; }))`)
		if diff := cmp.Diff(map[string]int{"Execs": 1, "Threads": 2, "Files": 1, "Children": 2}, tables); diff != "" {
			t.Errorf("detail tables of 4422 (-want +got):\n%s", diff)
		}
		files := eval[string](t, tb, `document.querySelector('#detail table:nth-of-type(3) tbody').textContent`)
		if !strings.Contains(files, "unlink") || !strings.Contains(files, "/tmp/ccA1b2c3.s") {
			t.Errorf("files table %q", files)
		}

		// A rename shows its new name; an open shows its mode.
		tb.do(t, clickOn(`#detail table:nth-of-type(4) a.link`)) // child 4423
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4423'`)
		search(t, "python3")
		tb.do(t, clickOn(`#tree .row[data-pid="4428"]`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4428'`)
		text := eval[string](t, tb, `document.getElementById('detail').textContent`)
		for _, w := range []string{"SIGKILL", "killed by SIGKILL (9)", "/home/ana/src/app/gen/tables.h.tmp → /home/ana/src/app/gen/tables.h", "mkdir", "rw", "4432"} {
			if !strings.Contains(text, w) {
				t.Errorf("detail of 4428 lacks %q", w)
			}
		}

		// A container's file shows its host path and the path used; one
		// with no host path, its file system.
		search(t, "pid:5001")
		tb.do(t, clickOn(`#tree .row[data-pid="5001"] .comm`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '5001'`)
		text = eval[string](t, tb, `document.getElementById('detail').textContent`)
		for _, w := range []string{"/var/lib/docker/overlay2/9d1c0e7a/merged/etc/passwd in the container /etc/passwd", "/proc/self/status proc, no host path", "/proc/5001/fd/7/lock (directory unknown)"} {
			if !strings.Contains(text, w) {
				t.Errorf("detail of 5001 lacks %q", w)
			}
		}
		search(t, "python3")
		tb.do(t, clickOn(`#tree .row[data-pid="4428"]`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4428'`)
		netRows := eval[[]string](t, tb, `(function () {
			var h = Array.from(document.querySelectorAll('#detail h3')).find(function (h) { return h.firstChild.textContent === 'Network'; });
			return h ? Array.from(h.nextElementSibling.tBodies[0].rows).map(function (r) {
				return Array.from(r.cells).slice(0, 3).map(function (c) { return c.textContent; }).join('|'); }) : null; })()`)
		wantNet := []string{"socket|inet tcp|–", "connect|inet tcp|203.0.113.7:443", "connect|inet tcp|198.51.100.9:80 ECONNREFUSED", "sendto|inet6 udp|[2001:db8::53]:53"}
		if diff := cmp.Diff(wantNet, netRows); diff != "" {
			t.Errorf("network table of 4428 (-want +got):\n%s", diff)
		}
	})

	t.Run("searches folded", func(t *testing.T) {
		rows := func(pid string) []string {
			search(t, "pid:"+pid)
			tb.do(t, clickOn(`#tree .row[data-pid="`+pid+`"] .comm`))
			tb.waitFor(t, `document.getElementById('detail').dataset.pid === '`+pid+`'`)
			return eval[[]string](t, tb, `(function () {
				var h = Array.from(document.querySelectorAll('#detail h3')).find(function (h) { return h.firstChild.textContent === 'Files'; });
				return Array.from(h.nextElementSibling.tBodies[0].rows).map(function (r) { return r.cells[0].textContent + ' ' + r.cells[2].textContent; }); })()`)
		}
		if diff := cmp.Diff([]string{"exec /usr/bin/cc (tried 3 places)"}, rows("4421")); diff != "" {
			t.Errorf("files of 4421 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"exec frobnicate: command not found (tried 3 places)", "open /etc/frob.conf ENOENT"}, rows("4425")); diff != "" {
			t.Errorf("files of 4425 (-want +got):\n%s", diff)
		}
		if title := eval[string](t, tb, `document.querySelector('#detail tr.search td.path').title`); title != "/usr/local/bin/frobnicate ENOENT\n/usr/bin/frobnicate ENOENT\n/bin/frobnicate ENOENT" {
			t.Errorf("the search's attempts: %q", title)
		}
		search(t, "python3")
		tb.do(t, clickOn(`#tree .row[data-pid="4428"]`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4428'`)
	})

	t.Run("clear search keeps selection", func(t *testing.T) {
		tb.clearSearch(t)
		if got := eval[string](t, tb, `(document.querySelector('#tree .row.sel') || {dataset: {}}).dataset.pid`); got != "4428" {
			t.Errorf("selected row after clearing the search: %q, want 4428", got)
		}
		if got := len(tb.visiblePids(t)); got <= 5 {
			t.Errorf("only %d rows after clearing the search", got)
		}
	})

	t.Run("cross-container link", func(t *testing.T) {
		tb.do(t, clickOn("#expand-all"),
			clickOn(`#tree .row.xref`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '5001'`)
		if got := eval[string](t, tb, `document.querySelector('#tree .row.sel').closest('.group').dataset.container`); !strings.HasPrefix(got, "3f2a") {
			t.Errorf("selected row in group %q", got)
		}
	})

	t.Run("changes, signals, set-uid, fileless", func(t *testing.T) {
		if got := eval[string](t, tb, `document.getElementById('changes-toggle').textContent`); got != "Changes (7)" {
			t.Errorf("changes button %q", got)
		}
		if !eval[bool](t, tb, `document.getElementById('changes-panel').hidden`) {
			t.Error("the changes view is open before it is asked for")
		}
		tb.do(t, clickOn("#changes-toggle"))
		tb.waitFor(t, `document.getElementById('changes-panel').dataset.ready === '1' && !document.getElementById('changes-panel').hidden`)
		dirs := eval[[]string](t, tb, `Array.from(document.querySelectorAll('#changes .ch-dir')).map(function (d) { return d.dataset.dir; })`)
		if diff := cmp.Diff([]string{"/home/ana/src/app", "/home/ana/src/app/bin", "/home/ana/src/app/gen", "/tmp"}, dirs); diff != "" {
			t.Errorf("changes directories (-want +got):\n%s", diff)
		}
		summary := eval[string](t, tb, `document.getElementById('changes-summary').textContent`)
		if !strings.Contains(summary, "7 changes in 4 directories by 4 processes") || !strings.Contains(summary, "chmod 1") {
			t.Errorf("changes summary %q", summary)
		}
		bin := eval[string](t, tb, `document.querySelector('#changes .ch-dir[data-dir="/home/ana/src/app/bin"]').textContent`)
		for _, w := range []string{"chmod", "/home/ana/src/app/bin/tool", "4755", "SETUID", "4428 python3"} {
			if !strings.Contains(bin, w) {
				t.Errorf("the chmod change %q lacks %q", bin, w)
			}
		}
		if n := eval[int](t, tb, `document.querySelectorAll('#changes tr.gone').length`); n != 2 {
			t.Errorf("%d changes shown gone, want 2", n)
		}
		gen := eval[string](t, tb, `document.querySelector('#changes .ch-dir[data-dir="/home/ana/src/app/gen"]').textContent`)
		if !strings.Contains(gen, "/home/ana/src/app/gen/tables.h ← /home/ana/src/app/gen/tables.h.tmp") {
			t.Errorf("the rename change %q", gen)
		}
		// A change names its process: a click selects it.
		tb.do(t, clickOn(`#changes .ch-dir[data-dir="/tmp"] a.link`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4422'`)
		tb.do(t, clickOn("#changes-close"))
		tb.waitFor(t, `document.getElementById('changes-panel').hidden`)

		// make's signal names python3, linked; python3's chmod is set-uid.
		search(t, "pid:4420")
		tb.do(t, clickOn(`#tree .row[data-pid="4420"] .comm`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4420'`)
		sigs := eval[string](t, tb, `Array.from(document.querySelectorAll('#detail h3')).filter(function (h) { return h.firstChild.textContent === 'Signals'; })[0].nextElementSibling.textContent`)
		for _, w := range []string{"kill", "SIGKILL (9)", "4428 python3"} {
			if !strings.Contains(sigs, w) {
				t.Errorf("signals of 4420 %q lack %q", sigs, w)
			}
		}
		tb.do(t, clickOn(`#detail table a.link`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '4428'`)
		if got := eval[string](t, tb, `document.getElementById('detail').textContent`); !strings.Contains(got, "4755SETUID") {
			t.Errorf("detail of 4428 lacks the set-uid chmod: %q", got)
		}
		search(t, "pid:5001")
		tb.do(t, clickOn(`#tree .row[data-pid="5001"] .comm`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '5001'`)
		if n := eval[int](t, tb, `document.querySelectorAll('#detail .badge.warn').length`); n != 2 {
			t.Errorf("5001: %d warning badges, want the title's fileless exec and its exec's", n)
		}
		tb.clearSearch(t)
	})

	t.Run("timeline", func(t *testing.T) {
		for _, pid := range []int{4428, 5002, 4423, 812} {
			pt := eval[map[string]float64](t, tb, fmt.Sprintf(`proctrail.barPoint(proctrail.indexOfPid(%d))`, pid))
			tb.do(t, chromedp.Sleep(50*time.Millisecond), chromedp.MouseClickXY(pt["x"], pt["y"]))
			tb.waitFor(t, `document.getElementById('detail').dataset.pid === '`+strconv.Itoa(pid)+`'`)
		}
		if eval[bool](t, tb, `document.getElementById('timeline-canvas').width < 100`) {
			t.Error("timeline canvas not sized")
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		tb.do(t, clickOn("#collapse-all"), clickOn(`#tree .row[data-pid="812"] .comm`))
		tb.waitFor(t, `document.getElementById('detail').dataset.pid === '812'`)
		steps := []struct {
			key  string
			sel  string
			rows []int
		}{
			{kb.ArrowRight, "812", []int{812, 4301, 3010, 5001}},
			{kb.ArrowDown, "4301", []int{812, 4301, 3010, 5001}},
			{kb.ArrowRight, "4301", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowDown, "4420", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowDown, "3010", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowDown, "5001", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowUp, "3010", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowUp, "4420", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowLeft, "4301", []int{812, 4301, 4420, 3010, 5001}},
			{kb.ArrowLeft, "4301", []int{812, 4301, 3010, 5001}},
		}
		for i, st := range steps {
			tb.do(t, chromedp.KeyEvent(st.key))
			if got := eval[string](t, tb, `document.getElementById('detail').dataset.pid`); got != st.sel {
				t.Errorf("step %d: selected %s, want %s", i, got, st.sel)
			}
			if diff := cmp.Diff(st.rows, tb.visiblePids(t)); diff != "" {
				t.Errorf("step %d: rows (-want +got):\n%s", i, diff)
			}
		}
	})

	tb.do(t, clickOn("#expand-all"), clickOn(`#tree .row[data-pid="4422"] .tog`), clickOn(`#tree .row[data-pid="4428"] .comm`))
	tb.screenshot(t, "small")
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	tb.do(t, chromedp.Sleep(100*time.Millisecond))
	tb.screenshot(t, "small-dark")
}

// TestBrowserSparse: models with the least the schema allows, or less, and
// odd values, open without an exception.
func TestBrowserSparse(t *testing.T) {
	bctx := newBrowser(t)
	for _, tt := range []struct {
		name, model string
		rows        int
	}{
		{"schema only", `{"schema":1}`, 0},
		{"empty lists", `{"schema":1,"capture":{},"containers":[],"processes":[]}`, 0},
		{"bare process", `{"schema":1,"processes":[{"pid":7}]}`, 1},
		{"nulls", `{"schema":1,"capture":{"host":null,"start":null,"end":null,"sources":null},"containers":[null],` +
			`"processes":[{"pid":7,"comm":null,"argv":null,"start":null,"end":null,"threads":null,"files":[null],"execs":null,"container":null,"children":null}]}`, 1},
		{"wrong types", `{"schema":1,"capture":[],"containers":{},"processes":[{"pid":"x","argv":"ls","start":5,"children":{"a":1},"files":"f"}, 3, "s"]}`, 3},
		{"wrong net and searches", `{"schema":1,"processes":[{"pid":7,"net":[null,"x",5,{"addr":5,"port":"p","path":[1]}],` +
			`"files":[{"search":true,"path":5,"op":"exec","error":"ENOENT"},{"search":true,"path":null},{"search":"yes"}]},{"pid":8,"net":{"a":1}}]}`, 2},
		{"unknown container and no end", `{"schema":1,"capture":{"start":"2024-01-01T00:00:00Z","end":"2024-01-01T00:00:01.5Z"},` +
			`"processes":[{"pid":1,"start":"2024-01-01T00:00:00.5+02:00","container":"abc","children":[{"pid":2,"start":"bad"}]}]}`, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tb := openReport(t, bctx, "sparse", []byte(tt.model))
			tb.do(t, clickOn("#expand-all"))
			if n := eval[int](t, tb, `document.querySelectorAll('#tree .row[data-pid]').length`); n != tt.rows {
				t.Errorf("%d rows, want %d", n, tt.rows)
			}
			if tt.rows > 0 {
				tb.do(t, clickOn(`#tree .row[data-pid] .comm`))
				tb.waitFor(t, `document.getElementById('detail').dataset.pid !== undefined`)
				tb.typeSearch(t, "x")
			}
		})
	}
}

func TestBrowserHostile(t *testing.T) {
	bctx := newBrowser(t)
	model := readModel(t, "hostile.json")
	tb := openReport(t, bctx, "hostile", model)
	tb.do(t, clickOn("#expand-all"), clickOn("#changes-toggle"))
	tb.waitFor(t, `document.getElementById('changes-panel').dataset.ready === '1'`)
	if got := eval[string](t, tb, `document.querySelector('#changes .ch-dir').dataset.dir`); got != `"><svg onload=alert(1)>` {
		t.Errorf("hostile changes directory shows %q", got)
	}

	// Nothing the model holds became markup.
	for _, js := range []string{
		`document.querySelectorAll('img, svg, iframe, object, embed, u, i, b:not(.fact > b), style:not(head > style)').length`,
		`document.scripts.length - 2`,
		`document.querySelectorAll('[onerror], [onload], [onclick], [onmouseover]').length`,
	} {
		if n := eval[int](t, tb, js); n != 0 {
			t.Errorf("%s = %d, want 0", js, n)
		}
	}
	if got := eval[string](t, tb, `document.getElementById('host').textContent`); got != "<b onmouseover=alert(1)>host</b>" {
		t.Errorf("host shows %q", got)
	}
	if got := eval[string](t, tb, `document.title`); !strings.Contains(got, "<b onmouseover=alert(1)>host</b>") {
		t.Errorf("title %q", got)
	}
	if got := eval[string](t, tb, `document.querySelector('#tree .row[data-pid="666"] .comm').textContent`); got != "<img src=x onerror=alert(1)>" {
		t.Errorf("comm shows %q", got)
	}
	// A right-to-left override cannot reorder a name.
	if got := eval[string](t, tb, `document.querySelector('#tree .row[data-pid="667"] .comm').textContent`); got != `evil\u202etxt.sh` {
		t.Errorf("bidi comm shows %q", got)
	}
	head := eval[string](t, tb, `Array.from(document.querySelectorAll('#tree .group')).filter(function (g) {
		return g.dataset.container === '"><svg onload=alert(1)>'; })[0].querySelector('.group-head').textContent`)
	if !strings.Contains(head, `"><svg onlo`) || !strings.Contains(head, "</style><script>alert(1)</script>") {
		t.Errorf("container heading %q", head)
	}

	tb.do(t, clickOn(`#tree .row[data-pid="666"] .comm`))
	tb.waitFor(t, `document.getElementById('detail').dataset.pid === '666'`)
	args := eval[[]string](t, tb, `Array.from(document.querySelectorAll('#detail dd[data-k="argv"] .arg')).map(function (a) { return a.textContent; })`)
	want := []string{"./x", "</script><script>alert(1)</script>", `"quoted" 'single'`, `line1\nline2`, `tab\there`,
		"\ufffdbad-\ufffd", "<style>*{display:none}</style>"}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	detail := eval[string](t, tb, `document.getElementById('detail').textContent`)
	for _, w := range []string{"/tmp/<script>alert(1)</script>", `/tmp/a\nb → /tmp/"><img src=x onerror=alert(2)>`,
		`\u0001\u001b[31mred`, "SIGSEGV (core)", "open<b>", "r<i>", "/tmp/<iframe src=//example.invalid>",
		"/tmp/<svg onload=alert(3)>.sock <b>E</b>", "unix <i>", "<img src=x onerror=alert(4)>", `"><script>alert(5)</script>:0`} {
		if !strings.Contains(detail, w) {
			t.Errorf("detail lacks %q", w)
		}
	}
	tb.do(t, clickOn(`#tree .row[data-pid="667"] .comm`))
	tb.waitFor(t, `document.getElementById('detail').dataset.pid === '667'`)
	if got := eval[string](t, tb, `document.querySelector('#detail dd[data-k="exe"]').textContent`); got != "javascript:alert(1)" {
		t.Errorf("exe %q", got)
	}
	if n := eval[int](t, tb, `document.querySelectorAll('#detail a[href]:not([href="#"])').length`); n != 0 {
		t.Errorf("%d links with a real href", n)
	}

	banner := eval[string](t, tb, `var b = document.getElementById('loss-banner'); b.hidden ? '' : b.textContent`)
	for _, w := range []string{"connector lost 3", "audit lost 12", "2 sequence gaps", "4,096 bytes", "7 lines of the auditd logs were skipped"} {
		if !strings.Contains(banner, w) {
			t.Errorf("loss banner %q lacks %q", banner, w)
		}
	}

	// Searching for markup finds it as text.
	tb.typeSearch(t, "<img")
	if diff := cmp.Diff([]int{666}, tb.visiblePids(t)); diff != "" {
		t.Errorf("rows for <img (-want +got):\n%s", diff)
	}
	tb.clearSearch(t)

	// Give any handler that got in a chance to run before checkClean.
	tb.do(t, chromedp.Sleep(200*time.Millisecond))
	if got := eval[bool](t, tb, `typeof window.__pwned === 'undefined'`); !got {
		t.Error("a payload ran")
	}
	tb.do(t, clickOn(`#tree .row[data-pid="666"] .comm`))
	tb.screenshot(t, "hostile")

	// Defense in depth: markup injected on purpose can neither fetch nor
	// run a handler, because the policy allows only the page's own script.
	tb.do(t, chromedp.Evaluate[chromedp.Void](`document.body.insertAdjacentHTML('beforeend',
		'<img id="injected" src="x.png" onerror="window.__pwned = 1"><div onclick="window.__pwned = 2"></div>');
		document.querySelector('[onclick]').click();`))
	tb.do(t, chromedp.Sleep(200*time.Millisecond))
	if got := eval[bool](t, tb, `typeof window.__pwned === 'undefined'`); !got {
		t.Error("an injected handler ran despite the Content-Security-Policy")
	}
	// Take what the injection caused, so that checkClean passes.
	csp := eval[[]string](t, tb, `window.__csp.splice(0)`)
	if !slices.Contains(csp, "script-src-attr inline") || !slices.Contains(csp, "img-src file") {
		t.Errorf("CSP violations of the injected markup: %q, want the handlers and the image", csp)
	}
	tb.mu.Lock()
	requests, blocked := tb.requests, tb.blocked
	tb.requests, tb.blocked = nil, nil
	tb.mu.Unlock()
	// Chromium reports the image's request, then blocks it before any read.
	if len(requests) != 1 || !strings.HasSuffix(requests[0], "/x.png") || len(blocked) != 1 || !strings.HasSuffix(blocked[0], " csp") {
		t.Errorf("injected image: requests %q, blocked %q; want one, blocked by csp", requests, blocked)
	}
	tb.do(t, chromedp.Evaluate[chromedp.Void](`document.getElementById('injected').remove(); document.querySelector('[onclick]').remove();`))
}

// TestBrowserDeep: a fork chain far deeper than the indentation renders,
// expands and searches without recursion.
func TestBrowserDeep(t *testing.T) {
	bctx := newBrowser(t)
	const depth = 6000
	tb := openReport(t, bctx, "deep", chainModel(depth))
	tb.do(t, clickOn("#expand-all"))
	if n := eval[int](t, tb, `document.querySelectorAll('#tree .row[data-pid]').length`); n != depth {
		t.Errorf("%d rows, want %d", n, depth)
	}
	tb.typeSearch(t, "pid:6999")
	if n := eval[int](t, tb, `document.querySelectorAll('#tree .row.hit').length`); n != 1 {
		t.Errorf("%d matches for the deepest pid", n)
	}
}

// TestBrowserLarge opens a 10,000-process capture and logs how long the
// page takes (not asserted: machines differ).
func TestBrowserLarge(t *testing.T) {
	bctx := newBrowser(t)
	model := bigModel(10000)
	all := countProcs(t, model)
	start := time.Now()
	tb := openReport(t, bctx, "large", model)
	wall := time.Since(start)
	ready := eval[string](t, tb, `document.documentElement.dataset.renderMs`)
	rows := eval[int](t, tb, `document.querySelectorAll('#tree .row[data-pid]').length`)
	t.Logf("%d processes, %d KiB page: first render at %s ms after navigation start (%d rows built), open to ready %v",
		len(all), len(model)/1024, ready, rows, wall.Round(time.Millisecond))
	t.Logf("timings (ms since navigation start): %s", eval[string](t, tb, `(function () {
		var n = performance.getEntriesByType('navigation')[0], m = proctrail.timings;
		return 'html read ' + n.responseEnd.toFixed(0) + ', script starts ' + m.script.toFixed(0) + ', JSON parsed ' + m.parsed.toFixed(0) +
			', model indexed ' + m.model.toFixed(0) + ', rendered ' + m.rendered.toFixed(0) + ', load event ' + n.loadEventEnd.toFixed(0);
	})()`))
	if rows >= len(all)/2 {
		t.Errorf("%d rows built at start: the tree is not lazy", rows)
	}
	if n := eval[int](t, tb, `proctrail.count`); n != len(all) {
		t.Errorf("page counts %d processes, model has %d", n, len(all))
	}

	ms := eval[float64](t, tb, `(function () { var t = performance.now(); proctrail.search('cc1'); document.body.offsetHeight; return performance.now() - t; })()`)
	hits := eval[int](t, tb, `document.querySelectorAll('#tree .row.hit').length`)
	t.Logf("search cc1: %.1f ms, %d matches", ms, hits)
	ms = eval[float64](t, tb, `(function () { var t = performance.now(); proctrail.search(''); document.body.offsetHeight; return performance.now() - t; })()`)
	t.Logf("clear search: %.1f ms", ms)
	ms = eval[float64](t, tb, `(function () { var t = performance.now(); document.getElementById('expand-all').click(); document.body.offsetHeight; return performance.now() - t; })()`)
	n := eval[int](t, tb, `document.querySelectorAll('#tree .row[data-pid]').length`)
	t.Logf("expand all: %.1f ms, %d rows", ms, n)
	if n != len(all) {
		t.Errorf("%d rows after expanding all, model has %d processes", n, len(all))
	}
	ms = eval[float64](t, tb, `(function () { var t = performance.now(); proctrail.select(proctrail.count - 1); document.body.offsetHeight; return performance.now() - t; })()`)
	t.Logf("select the last process: %.1f ms", ms)
	tb.do(t, clickOn("#collapse-all"))
	tb.do(t, clickOn(`#tree .row[data-pid="1"] .tog`))
	pt := eval[map[string]float64](t, tb, `proctrail.barPoint(proctrail.indexOfPid(4000))`)
	tb.do(t, chromedp.MouseClickXY(pt["x"], pt["y"]))
	tb.waitFor(t, `document.getElementById('detail').dataset.pid !== undefined`)
	tb.screenshot(t, "large")
}
