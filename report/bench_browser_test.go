package report

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// BenchmarkBrowserRender opens a report in headless Chromium and waits
// until the page is rendered (data-ready on the root element): ns/op is
// the wall time from navigation to that point, render-ms the page's own
// time from its script's start, page-bytes the file's size. "reads" is
// readsModel shaped like `dpkg -i` with mandb (54,000 reads); the pages
// named in PROCTRAIL_BENCH_HTML (a list split by commas), made by
// `proctrail analyze --html` of a real capture, are measured as they
// are, so that a page made before a change can be set beside one made
// after it.
func BenchmarkBrowserRender(b *testing.B) {
	bctx := newBrowser(b)
	pages := map[string]string{}
	var buf bytes.Buffer
	if err := WriteHTML(&buf, readsModel(18000)); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "reads.html")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	pages["reads"] = file
	for _, f := range strings.Split(os.Getenv("PROCTRAIL_BENCH_HTML"), ",") {
		if f != "" {
			abs, err := filepath.Abs(f)
			if err != nil {
				b.Fatal(err)
			}
			pages[filepath.Base(f)] = abs
		}
	}
	for name, file := range pages {
		b.Run(name, func(b *testing.B) {
			st, err := os.Stat(file)
			if err != nil {
				b.Fatal(err)
			}
			u := (&url.URL{Scheme: "file", Path: file}).String()
			var ms float64
			for b.Loop() {
				ctx, cancel := chromedp.NewContext(bctx)
				err := chromedp.Do(ctx,
					chromedp.Navigate(u),
					chromedp.Poll[chromedp.Void](`document.documentElement.dataset.ready === '1'`))
				var v string
				if err == nil {
					v, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.dataset.renderMs`))
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				f, _ := strconv.ParseFloat(v, 64)
				ms += f
			}
			b.ReportMetric(ms/float64(b.N), "render-ms")
			b.ReportMetric(float64(st.Size()), "page-bytes")
		})
	}
}
