package report

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed assets/page.html assets/style.css assets/app.js
var assets embed.FS

// SchemaVersion is the only "schema" of the analyze JSON model that
// [WriteHTML] accepts.
const SchemaVersion = 1

// ErrSchema is wrapped by the error of [WriteHTML] for a model that is
// valid JSON but has no top-level "schema" equal to [SchemaVersion].
var ErrSchema = errors.New("report: model is not a schema 1 analyze document")

// layout is the template cut at its placeholders, once, when the first
// page is written (not at init: every command would pay for it); the
// hashes of the inline style and script go into the
// Content-Security-Policy.
var layout = sync.OnceValue(mustPage)

type pageParts struct {
	head, afterStyle, afterModel, afterFolded, tail string // literal text between the inserts
	style, script                                   string
	csp                                             string
}

func mustPage() pageParts {
	read := func(name string) string {
		b, err := assets.ReadFile(name)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	tmpl := read("assets/page.html")
	var p pageParts
	p.style = read("assets/style.css")
	p.script = read("assets/app.js")
	// The script is allowed by its hash, not by 'unsafe-inline': injected
	// markup, should any ever get in, could not run an event handler.
	p.csp = "default-src 'none'; script-src " + hashSource(p.script) +
		"; style-src " + hashSource(p.style) +
		"; img-src data:; base-uri 'none'; form-action 'none'"
	parts := strings.Split(tmpl, "{{")
	if len(parts) != 6 {
		panic("report: page template has a wrong number of placeholders")
	}
	var lit []string
	for i, s := range parts {
		if i == 0 {
			lit = append(lit, s)
			continue
		}
		name, rest, ok := strings.Cut(s, "}}")
		if !ok {
			panic("report: unclosed placeholder in page template")
		}
		want := []string{"CSP", "STYLE", "MODEL", "FOLDED", "SCRIPT"}[i-1]
		if name != want {
			panic("report: page template placeholder " + name + ", want " + want)
		}
		lit = append(lit, rest)
	}
	// lit[0] CSP lit[1] STYLE lit[2] MODEL lit[3] FOLDED lit[4] SCRIPT lit[5]
	p.head = lit[0] + p.csp + lit[1]
	p.afterStyle = lit[2]
	p.afterModel = lit[3]
	p.afterFolded = lit[4]
	p.tail = lit[5]
	return p
}

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// WriteHTML writes the report page for model, an analyze JSON document of
// schema 1, to w as one self-contained HTML file. It reads model and does
// not keep it. Before writing anything it checks that model is one valid
// JSON object whose "schema" is 1, and returns an error otherwise (wrapping
// [ErrSchema] when only the schema is wrong). Strings that are not valid
// UTF-8 show with U+FFFD for the bad bytes. WriteHTML is safe for
// concurrent use.
//
// The page embeds model as it is, except for the processes with more
// than [FoldReads] reads (successful opens for reading, not part of a
// search) or a file list of more than 4 MiB: their "files" keep every
// other entry, and their reads are
// summed up per directory in a "read_dirs" member; their whole "files"
// array, unchanged, goes into a gzip-compressed list that the page
// decompresses when the analyst asks for it. Besides model, WriteHTML
// holds what [WriteHTMLFrom] does; it writes the page as it makes it,
// so an error of w can leave part of a page written.
func WriteHTML(w io.Writer, model []byte) error {
	if err := checkModel(model); err != nil {
		return err
	}
	_, err := writePage(w, bytes.NewReader(model))
	return err
}

// WriteHTMLFrom is [WriteHTML] for a model read from r, which it reads
// once, to its end, and does not hold: the page is written as the model
// is read, in memory bounded by the compressed file lists, one file list
// of at most about 4 MiB and the longest string of the model. It checks
// what it can as it goes (one JSON object, balanced, with "schema": 1)
// and returns an error when the model was not that or r failed; part
// of a page may then have been written.
func WriteHTMLFrom(w io.Writer, r io.Reader) error {
	pm, err := writePage(w, r)
	if err != nil {
		return err
	}
	return pm.check()
}

// writePage writes the page of the model read from r.
func writePage(w io.Writer, r io.Reader) (*pageModel, error) {
	page := layout()
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(page.head)
	bw.WriteString(page.style)
	bw.WriteString(page.afterStyle)
	pm := &pageModel{in: bufio.NewReaderSize(r, 64<<10), out: bw}
	pm.copyModel()
	bw.WriteString(page.afterModel)
	if blob := pm.lists(); blob != nil {
		// Base64 holds no '<': the text cannot end the element early.
		bw.WriteString(`<script type="text/plain" id="files-folded">`)
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		enc.Write(blob)
		enc.Close()
		bw.WriteString("</script>\n")
	}
	bw.WriteString(page.afterFolded)
	bw.WriteString(page.script)
	bw.WriteString(page.tail)
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return pm, nil
}

// checkModel checks that model is exactly one JSON object with "schema": 1.
// It walks tokens rather than unmarshalling, so a fork chain nested deeper
// than encoding/json's depth limit is still accepted.
func checkModel(model []byte) error {
	var schema json.Number
	found := false
	if json.Valid(model) {
		var doc struct {
			Schema *json.RawMessage `json:"schema"`
		}
		if err := json.Unmarshal(model, &doc); err != nil {
			// Valid JSON that is not an object.
			return fmt.Errorf("report: model is not a JSON object")
		}
		if doc.Schema != nil {
			found = true
			schema = json.Number(*doc.Schema)
		}
	} else {
		// json.Valid also says no to documents nested deeper than 10,000
		// levels, which a long fork chain produces; the token walk has no
		// such limit and still finds every real syntax error.
		err := walkTokens(model, func(key string, dec *json.Decoder) error {
			if key != "schema" {
				return nil
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			found, schema = true, json.Number(raw)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("%w: no \"schema\"", ErrSchema)
	}
	if schema != json.Number(strconv.Itoa(SchemaVersion)) {
		return fmt.Errorf("%w: \"schema\" is %.20s", ErrSchema, schema)
	}
	return nil
}

// walkTokens reads model as one JSON object to its end. For each key of
// the top-level object it calls topKey, which may consume the key's value
// with dec.Token when it returns nil; the walk skips the value otherwise.
func walkTokens(model []byte, topKey func(key string, dec *json.Decoder) error) error {
	dec := json.NewDecoder(bytes.NewReader(model))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("report: model is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("report: model is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("report: model is not JSON: %w", err)
		}
		key, _ := tok.(string)
		before := dec.InputOffset()
		if topKey != nil {
			if err := topKey(key, dec); err != nil {
				return fmt.Errorf("report: model is not JSON: %w", err)
			}
		}
		if dec.InputOffset() == before {
			if err := skipValue(dec); err != nil {
				return fmt.Errorf("report: model is not JSON: %w", err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fmt.Errorf("report: model is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("report: model is not JSON: data after the top-level object")
	}
	return nil
}

// skipValue consumes one value with a depth counter instead of recursion.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// appendEscaped appends to b the valid JSON document model (or a piece
// of it that does not cut a string) so that it can sit inside a <script>
// element: '<', '>' and '&' become \u escapes, so no "</script" or
// "<!--" can appear, and U+2028, U+2029 and the bytes of invalid UTF-8
// become \u2028, \u2029 and \ufffd. In valid JSON these characters only
// occur inside strings, where the escapes mean the same.
func appendEscaped(b []byte, model []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(model); {
		c := model[i]
		if c < utf8.RuneSelf {
			if c == '<' || c == '>' || c == '&' {
				b = append(b, model[start:i]...)
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				i++
				start = i
			} else {
				i++
			}
			continue
		}
		r, size := utf8.DecodeRune(model[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, model[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, model[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, model[start:]...)
}
