package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// testdataModels globs the hand-written models; it fails when there are none.
func testdataModels(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../testdata/report/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no ../testdata/report/*.json")
	}
	return files
}

func render(t testing.TB, model []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, model); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.String()
}

var modelRE = regexp.MustCompile(`(?s)<script type="application/json" id="model">(.*?)</script>`)

// embedded returns the model text of a page; it fails unless there is
// exactly one.
func embedded(t testing.TB, page string) string {
	t.Helper()
	m := modelRE.FindAllStringSubmatch(page, -1)
	if len(m) != 1 {
		t.Fatalf("page has %d model scripts, want 1", len(m))
	}
	return m[0][1]
}

func unmarshal(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return v
}

// TestWriteHTMLRejects: WriteHTML rejects what is not a schema 1
// model, and writes nothing; WriteHTMLFrom, which writes as it reads,
// rejects it too.
func TestWriteHTMLRejects(t *testing.T) {
	tests := []struct {
		name               string
		model              string
		schema, fromSchema bool // the error of WriteHTML, WriteHTMLFrom wraps ErrSchema
	}{
		{"empty", ``, false, false},
		{"not json", `<html>`, false, false},
		{"truncated", `{"schema":1,"processes":[`, false, false},
		{"trailing data", `{"schema":1} {}`, false, false},
		{"array", `[{"schema":1}]`, false, false},
		{"string", `"schema"`, false, false},
		{"null", `null`, true, false},
		{"no schema", `{"processes":[]}`, true, true},
		{"schema 2", `{"schema":2,"processes":[]}`, true, true},
		{"schema as string", `{"schema":"1"}`, true, true},
		{"schema 1.0", `{"schema":1.0}`, true, true},
		{"schema twice", `{"schema":1,"schema":2}`, true, true},
		{"nested schema only", `{"capture":{"schema":1}}`, true, true},
		{"deep and broken", strings.Repeat(`{"a":`, 6000) + `1` + strings.Repeat(`}`, 5999), false, false},
		{"deep without schema", strings.Repeat(`{"a":`, 6000) + `1` + strings.Repeat(`}`, 6000), true, true},
	}
	check := func(t *testing.T, fn string, err error, schema bool) {
		t.Helper()
		if err == nil {
			t.Fatal(fn + " accepted the model")
		}
		if got := errors.Is(err, ErrSchema); got != schema {
			t.Errorf("%s: errors.Is(%v, ErrSchema) = %v, want %v", fn, err, got, schema)
		}
		if !strings.HasPrefix(err.Error(), "report: ") {
			t.Errorf("%s: error %q lacks the package prefix", fn, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			check(t, "WriteHTML", WriteHTML(&b, []byte(tt.model)), tt.schema)
			if b.Len() != 0 {
				t.Errorf("WriteHTML wrote %d bytes before failing", b.Len())
			}
			check(t, "WriteHTMLFrom", WriteHTMLFrom(io.Discard, strings.NewReader(tt.model)), tt.fromSchema)
		})
	}
}

// TestDeepModel: a fork chain deeper than encoding/json's nesting limit is
// still a model.
func TestDeepModel(t *testing.T) {
	model := chainModel(6000)
	if json.Valid(model) {
		t.Fatal("the chain should be deeper than json.Valid accepts; make it deeper")
	}
	page := render(t, model)
	if got := embedded(t, page); got != string(model) {
		t.Error("deep model not embedded verbatim")
	}
}

func TestScriptEscaping(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"close script", `"</script><script>alert(1)</script>"`, `"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"`},
		{"comment", `"<!--<script>"`, `"\u003c!--\u003cscript\u003e"`},
		{"ampersand", `"&amp;"`, `"\u0026amp;"`},
		{"escaped backslash", `"\\<"`, `"\\\u003c"`},
		{"line separators", "\"a\u2028b\u2029c\"", `"a\u2028b\u2029c"`},
		{"invalid utf-8", "\"a\xffb\xc3\"", `"a\ufffdb\ufffd"`},
		{"valid utf-8 kept", `"é→😀"`, `"é→😀"`},
		{"surrogate escape kept", `"\ud800"`, `"\ud800"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendEscaped([]byte("x"), []byte(tt.in))
			if diff := cmp.Diff("x"+tt.want, string(got)); diff != "" {
				t.Errorf("appendEscaped(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestPage checks each testdata page: the model is embedded once, escaped,
// and means the same; the only scripts are the model and the app, the CSP
// allows exactly the app's script and style, and there is no URL at all.
func TestPage(t *testing.T) {
	for _, file := range testdataModels(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			model, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			page := render(t, model)
			checkPage(t, page, model)
		})
	}
}

func checkPage(t *testing.T, page string, model []byte) {
	t.Helper()
	emb := embedded(t, page)
	if strings.ContainsAny(emb, "<>&\u2028\u2029") || !utf8.ValidString(emb) {
		t.Errorf("embedded model holds a raw <, >, &, U+2028, U+2029 or invalid UTF-8")
	}
	if diff := cmp.Diff(unmarshal(t, model), unfold(t, page)); diff != "" {
		t.Errorf("embedded model differs (-want +got):\n%s", diff)
	}
	scripts := 2
	blob := foldedRE.FindString(page)
	if blob != "" {
		scripts++
	}
	if n := strings.Count(strings.ToLower(page), "<script"); n != scripts {
		t.Errorf("page has %d <script, want %d", n, scripts)
	}
	if n := strings.Count(strings.ToLower(page), "</script"); n != scripts {
		t.Errorf("page has %d </script, want %d", n, scripts)
	}
	lower := strings.ToLower(page)
	for _, bad := range []string{"http://", "https://"} {
		if strings.Contains(lower, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The model may hold anything as data; the page around it holds no
	// reference to any resource.
	frame := strings.ToLower(strings.Replace(strings.Replace(page, emb, "", 1), blob, "", 1))
	for _, bad := range []string{"http:", "https:", "\"//", "'//", "=//", "@import", "url(", "src=", "<link rel=\"stylesheet", "<iframe", "<img"} {
		if strings.Contains(frame, bad) {
			t.Errorf("page outside the model contains %q", bad)
		}
	}
	csp := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]*)">`).FindStringSubmatch(page)
	if csp == nil {
		t.Fatal("no Content-Security-Policy meta tag")
	}
	script := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(page)
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if script == nil || style == nil {
		t.Fatal("no inline script or style")
	}
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	want := "default-src 'none'; script-src " + hash(script[1]) + "; style-src " + hash(style[1]) +
		"; img-src data:; base-uri 'none'; form-action 'none'"
	if csp[1] != want {
		t.Errorf("CSP = %q, want %q", csp[1], want)
	}
}

// TestDeterministic: the same model gives the same bytes.
func TestDeterministic(t *testing.T) {
	model, err := os.ReadFile("../testdata/report/small.json")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := render(t, model), render(t, model); a != b {
		t.Error("two renderings of the same model differ")
	}
}

// FuzzWriteHTML: WriteHTML either fails and writes nothing, or writes a
// page whose single model script means what the input meant and cannot
// be closed early.
func FuzzWriteHTML(f *testing.F) {
	for _, file := range testdataModels(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"schema":1,"processes":[{"comm":"</script>\u2028"}]}`))
	f.Add([]byte("{\"schema\":1,\"x\":\"\xff<\"}"))
	f.Add(readsModel(40))
	f.Add([]byte(`{"SChemA":1}`)) // encoding/json folds case
	f.Fuzz(func(t *testing.T, model []byte) {
		var b, from bytes.Buffer
		err := WriteHTML(&b, model)
		// WriteHTMLFrom checks less, but what it writes is escaped all the
		// same, and it writes what WriteHTML does for a model both accept.
		errFrom := WriteHTMLFrom(&from, bytes.NewReader(model))
		if emb := embedded(t, from.String()); strings.ContainsAny(emb, "<>&\u2028\u2029") || !utf8.ValidString(emb) {
			t.Fatalf("WriteHTMLFrom: embedded model not escaped: %q", emb)
		}
		if err == nil && (errFrom != nil || from.String() != b.String()) {
			t.Fatalf("WriteHTMLFrom: error %v, or a page other than WriteHTML's", errFrom)
		}
		if err != nil {
			if b.Len() != 0 {
				t.Fatalf("error %v, but %d bytes written", err, b.Len())
			}
			return
		}
		page := b.String()
		emb := embedded(t, page)
		if strings.ContainsAny(emb, "<>&\u2028\u2029") || !utf8.ValidString(emb) {
			t.Fatalf("embedded model not escaped: %q", emb)
		}
		if !json.Valid(model) {
			return // deeper than encoding/json compares
		}
		if bytes.Contains(model, []byte(`"files_folded"`)) || bytes.Contains(model, []byte(`"read_dirs"`)) {
			// The page's own members, which a model never holds: a
			// process that had them would have them twice.
			return
		}
		// reflect.DeepEqual first: cmp.Diff is slow under the fuzzer's
		// instrumentation, and only needed to show a difference.
		want, got := unmarshal(t, model), unfold(t, page)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("embedded model differs (-want +got):\n%s", cmp.Diff(want, got))
		}
	})
}
