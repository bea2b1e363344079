package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"proctrail/internal/testenv"
)

// TestIntegrationHTMLFoldsReads records grep reading every file of three
// directories of perDir files and writes the HTML report: grep's reads
// are summed up per directory in the page, the page is a fraction of the
// size of the JSON it would otherwise embed, and the full list in the
// page, decompressed, is grep's list of the JSON, entry for entry; in
// headless Chromium a search for the one file grep found finds grep, and
// a click on a directory lists the files grep read in it.
func TestIntegrationHTMLFoldsReads(t *testing.T) {
	testenv.NeedRoot(t)
	grep := testenv.NeedTool(t, "grep")
	const perDir = 600
	dir := t.TempDir()
	for _, sub := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for k := range perDir {
			if err := os.WriteFile(filepath.Join(dir, sub, fmt.Sprintf("f%d", k)), []byte("hay\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	needle := filepath.Join(dir, "b", "f417")
	if err := os.WriteFile(needle, []byte("needle\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "trace.zst")
	if code, _, stderr := runCLI(t, "record", "-o", out, "--", grep, "-r", "-l", "needle", dir); code != 0 {
		t.Fatalf("record: exit %d: %s", code, stderr)
	}
	code, js, stderr := runCLI(t, "analyze", out, "--cmd")
	if code != 0 {
		t.Fatalf("analyze: exit %d: %s", code, stderr)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if code, _, stderr := runCLI(t, "analyze", out, "--cmd", "--html", "-o", page); code != 0 {
		t.Fatalf("analyze --html: exit %d: %s", code, stderr)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("JSON %d bytes, page %d bytes", len(js), len(html))
	// The page without folding holds the whole JSON.
	if len(html) > len(js)/3 {
		t.Errorf("page of %d bytes for a JSON of %d, want at most a third", len(html), len(js))
	}

	type proc struct {
		PID      int
		Comm     string
		Files    []map[string]any
		ReadDirs []struct {
			Dir   string
			Count int
		} `json:"read_dirs"`
		FilesFolded *int `json:"files_folded"`
		Children    []proc
	}
	var doc, emb struct{ Processes []proc }
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<script type="application/json" id="model">(.*?)</script>`).FindSubmatch(html)
	if m == nil {
		t.Fatal("no model in the page")
	}
	if err := json.Unmarshal(m[1], &emb); err != nil {
		t.Fatal(err)
	}
	b := regexp.MustCompile(`<script type="text/plain" id="files-folded">([^<]*)</script>`).FindSubmatch(html)
	if b == nil {
		t.Fatal("no folded lists in the page")
	}
	raw, err := base64.StdEncoding.DecodeString(string(b[1]))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var lists [][]map[string]any
	if err := json.Unmarshal(text, &lists); err != nil {
		t.Fatal(err)
	}
	find := func(ps []proc) *proc {
		for len(ps) > 0 {
			if ps[0].Comm == "grep" {
				return &ps[0]
			}
			ps = append(ps[1:], ps[0].Children...)
		}
		return nil
	}
	want, got := find(doc.Processes), find(emb.Processes)
	if want == nil || got == nil {
		t.Fatalf("no grep in the JSON (%v) or in the page (%v)", want != nil, got != nil)
	}
	if got.FilesFolded == nil || *got.FilesFolded < 0 || *got.FilesFolded >= len(lists) {
		t.Fatalf("grep's files_folded %v, %d lists", got.FilesFolded, len(lists))
	}
	if diff := cmp.Diff(want.Files, lists[*got.FilesFolded]); diff != "" {
		t.Errorf("grep's full list in the page differs from the JSON (-want +got):\n%s", diff)
	}
	counts := map[string]int{}
	for _, d := range got.ReadDirs {
		counts[d.Dir] = d.Count
	}
	for _, sub := range []string{"a", "b", "c"} {
		if n := counts[filepath.Join(dir, sub)]; n != perDir {
			t.Errorf("grep read %d files in %s, want %d", n, sub, perDir)
		}
	}
	for _, f := range got.Files {
		if f["op"] == "open" && f["mode"] == "r" && f["error"] == nil && f["search"] == nil {
			t.Errorf("a read kept in the page's files: %v", f)
			break
		}
	}
	found := false
	for _, f := range lists[*got.FilesFolded] {
		found = found || f["path"] == needle
	}
	if !found {
		t.Errorf("the needle %s is not in grep's full list", needle)
	}

	// In the browser: a search finds the one file, a directory lists its
	// reads on a click.
	ctx := openPage(t, page)
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	wait := func(js string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", js, err)
		}
	}
	q, _ := json.Marshal("path:" + needle)
	eval(`window.proctrail.search(` + string(q) + `), ''`)
	wait(`document.getElementById('search-count').dataset.query === ` + string(q))
	if hits := eval(`Array.from(document.querySelectorAll('#tree .row.hit')).map(function (r) { return r.dataset.pid; }).join(' ')`); hits != fmt.Sprint(want.PID) {
		t.Errorf("search %s: hits %q, want grep's pid %d", q, hits, want.PID)
	}
	eval(`window.proctrail.select(window.proctrail.indexOfPid(` + fmt.Sprint(want.PID) + `)), ''`)
	wait(`document.getElementById('detail').dataset.pid === '` + fmt.Sprint(want.PID) + `'`)
	d, _ := json.Marshal(filepath.Join(dir, "b"))
	eval(`document.querySelector('#detail tr.rd-dir[data-dir=' + JSON.stringify(` + string(d) + `) + ']').click(), ''`)
	wait(`!!document.querySelector('#detail tr.rd-list[data-ready="1"]')`)
	if n := eval(`String(document.querySelectorAll('#detail tr.rd-list tr.rd-file').length)`); n != "500" {
		t.Errorf("directory b lists %s files, want the first 500", n)
	}
	eval(`document.querySelector('#detail tr.rd-list button').click(), ''`) // Show all
	if n := eval(`String(document.querySelectorAll('#detail tr.rd-list tr.rd-file').length)`); n != fmt.Sprint(perDir) {
		t.Errorf("directory b lists %s files after Show all, want %d", n, perDir)
	}
	if !strings.Contains(eval(`document.querySelector('#detail tr.rd-list').textContent`), needle) {
		t.Errorf("directory b does not list %s", needle)
	}
}

// openPage opens the HTML file in headless Chromium (Debian package
// chromium; CHROMIUM names another binary) and waits until it is
// rendered. Without Chromium it skips, or fails under CI=true.
func openPage(t *testing.T, file string) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "chromium"
	}
	bin = testenv.NeedTool(t, bin)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	u := (&url.URL{Scheme: "file", Path: file}).String()
	if err := chromedp.Do(ctx, chromedp.Navigate(u),
		chromedp.Poll[chromedp.Void](`document.documentElement.dataset.ready === '1'`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("open %s: %v", file, err)
	}
	return ctx
}
