package report

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FoldReads is the number of reads above which a process's reads are
// folded by directory in the page (see [WriteHTML]).
const FoldReads = 100

// foldBytes is the size of a process's file list above which its reads
// are folded however few they are: the list is held whole only until
// then, so the page is made in bounded memory.
const foldBytes = 4 << 20

// A read is a file access that an analyst scans rather than reads one by
// one: a successful open for reading, not part of a search. Everything
// else (writes, creations, deletions, renames, changes, failures, execs,
// the attempts of a search) stays in the page one by one.
type fileEntry struct {
	Path   string `json:"path"`
	Op     string `json:"op"`
	Mode   string `json:"mode"`
	Open   string `json:"open"`
	Close  string `json:"close"`
	Error  string `json:"error"`
	Search bool   `json:"search"`
}

func (f *fileEntry) isRead() bool {
	return f.Op == "open" && f.Mode == "r" && f.Error == "" && !f.Search
}

// readDir is one line of a folded process's "read_dirs": its reads in one
// directory.
type readDir struct {
	Dir   string `json:"dir"`
	Count int    `json:"count"`
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`

	first, last time.Time
}

func (rd *readDir) add(f *fileEntry) {
	rd.Count++
	if t, err := time.Parse(time.RFC3339Nano, f.Open); err == nil && (rd.First == "" || t.Before(rd.first)) {
		rd.first, rd.First = t, f.Open
	}
	end := f.Close
	if end == "" {
		end = f.Open
	}
	if t, err := time.Parse(time.RFC3339Nano, end); err == nil && (rd.Last == "" || t.After(rd.last)) {
		rd.last, rd.Last = t, end
	}
}

// dirOf is the directory of a read's path, as the page computes it: the
// path up to its last slash, "/" for a file at the root, "." for a name
// with no slash.
func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return p[:i]
}

// pageModel copies a JSON model from its input to the page, escaped for
// a script element (see appendEscaped), and folds the reads of the
// processes that have many. It holds one token, or one process's file
// list until that is folded, at a time; the folded lists go, compressed,
// to blob: the JSON array whose element k is, byte for byte as in the
// page's model, the "files" array of the process whose "files_folded" is
// k.
type pageModel struct {
	in  *bufio.Reader
	out *bufio.Writer
	err error // of in; io.EOF at the end

	n    int // lists folded
	blob bytes.Buffer
	gz   *gzip.Writer

	tok []byte // a string token, escaped, reused
	arr []byte // a files array or its element, escaped, reused

	// What WriteHTMLFrom checks: one top-level object, balanced, and its
	// "schema".
	top, bad  bool
	depth     int // open arrays and objects at the end
	hasSchema bool
	schema    []byte
}

func (pm *pageModel) next() (byte, bool) {
	if pm.err != nil {
		return 0, false
	}
	c, err := pm.in.ReadByte()
	if err != nil {
		pm.err = err
		return 0, false
	}
	return c, true
}

// appendString appends to b the rest of a string token whose opening
// quote was read, up to and with its closing quote, escaped.
func (pm *pageModel) appendString(b []byte) []byte {
	raw := append(pm.tok[:0], '"')
	for pm.err == nil {
		chunk, err := pm.in.ReadSlice('"')
		raw = append(raw, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			pm.err = err
			break
		}
		// The quote ends the string unless a backslash escapes it.
		n := 0
		for i := len(raw) - 2; i > 0 && raw[i] == '\\'; i-- {
			n++
		}
		if n%2 == 0 {
			break
		}
	}
	pm.tok = raw
	return appendEscaped(b, raw)
}

// isSchema reports whether the string token just read, a key of the
// top-level object, is "schema" as encoding/json matches a field's name
// (escapes decoded, case folded): what WriteHTML checks.
func (pm *pageModel) isSchema() bool {
	if len(pm.tok) > 64 {
		return false
	}
	var k string
	return json.Unmarshal(pm.tok, &k) == nil && strings.EqualFold(k, "schema")
}

// copyModel copies the model, folding what it should. It keeps a stack
// rather than recursing, so a fork chain of any depth is copied.
func (pm *pageModel) copyModel() {
	type frame struct {
		obj     bool
		key     string // an object's last key, quotes included (short ones only)
		process bool   // an object: a process
		procs   bool   // an array: processes
	}
	var stack []frame
	expectKey := false
	defer func() { pm.depth = len(stack) }()
	for {
		if n := len(stack); n > 1 || n == 1 && stack[0].key != `"schema"` {
			if run := pm.plainRun(); len(run) > 0 {
				pm.out.Write(run)
				pm.in.Discard(len(run))
				continue
			}
		}
		c, ok := pm.next()
		if !ok {
			return
		}
		if len(stack) == 0 && !isSpace(c) {
			// One object, and nothing after it.
			pm.bad = pm.bad || c != '{' || pm.top
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch c {
		case '"':
			pm.arr = pm.appendString(pm.arr[:0])
			pm.out.Write(pm.arr)
			if top != nil && top.obj && expectKey {
				top.key = ""
				if len(pm.tok) <= 16 {
					top.key = string(pm.tok)
				}
				expectKey = false
				if len(stack) == 1 && pm.isSchema() {
					// The key that follows sets it, as in encoding/json.
					pm.schema, pm.hasSchema = pm.schema[:0], true
					top.key = `"schema"`
				}
			} else if len(stack) == 1 && top.key == `"schema"` {
				pm.schema = append(pm.schema[:0], pm.tok...)
			}
			continue
		case '{':
			if len(stack) == 0 {
				pm.top = true
			}
			stack = append(stack, frame{obj: true, process: top != nil && !top.obj && top.procs})
			expectKey = true
		case '[':
			if top != nil && top.obj {
				if top.process && top.key == `"files"` {
					pm.files()
					continue
				}
				stack = append(stack, frame{procs: (len(stack) == 1 && top.key == `"processes"`) || (top.process && top.key == `"children"`)})
			} else {
				stack = append(stack, frame{})
			}
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = top != nil && top.obj
		default:
			if len(stack) == 1 && top.key == `"schema"` && c > ' ' && c != ':' {
				pm.schema = append(pm.schema, c)
			}
		}
		if c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' {
			pm.out.WriteByte(c)
		} else {
			pm.out.Write(appendEscapedByte(pm.tok[:0], c))
		}
	}
}

// appendEscapedByte appends c, a byte outside any string, escaped as
// appendEscaped would: in valid JSON none of these bytes needs it.
func appendEscapedByte(b []byte, c byte) []byte {
	if c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' {
		return append(b, c)
	}
	return appendEscaped(b, []byte{c})
}

// element reads one element of an array whose '[' was read, appending
// it to pm.arr with the white space around it and the ',' or ']' after
// it. It returns where the element is in pm.arr without the white space
// (empty for "[]"), and the byte that ended it (0 at the end of input).
func (pm *pageModel) element() (start, end int, last byte) {
	start, end = -1, -1
	depth := 0
	for {
		if run := pm.plainRun(); len(run) > 0 {
			for i, c := range run {
				if !isSpace(c) {
					if start < 0 {
						start = len(pm.arr) + i
					}
					end = len(pm.arr) + i + 1
				}
			}
			pm.arr = append(pm.arr, run...)
			pm.in.Discard(len(run))
			continue
		}
		c, ok := pm.next()
		if !ok {
			return max(start, 0), max(end, start, 0), 0
		}
		if depth == 0 && (c == ',' || c == ']') {
			pm.arr = append(pm.arr, c)
			if start < 0 {
				start, end = len(pm.arr)-1, len(pm.arr)-1
			}
			return start, end, c
		}
		if start < 0 && !isSpace(c) {
			start = len(pm.arr)
		}
		switch c {
		case '"':
			pm.arr = pm.appendString(pm.arr)
			end = len(pm.arr)
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
		pm.arr = appendEscapedByte(pm.arr, c)
		if !isSpace(c) {
			end = len(pm.arr)
		}
	}
}

// plain marks the bytes that need no attention outside strings: not a
// quote, bracket or comma, nor a byte to escape.
var plain = func() (p [256]bool) {
	for c := range utf8.RuneSelf {
		p[c] = !strings.ContainsRune(`"{}[],<>&`, rune(c))
	}
	return p
}()

// plainRun returns the plain bytes that are buffered at the start of
// the input, without reading; the caller discards what it uses.
func (pm *pageModel) plainRun() []byte {
	if pm.err != nil {
		return nil
	}
	buf, _ := pm.in.Peek(pm.in.Buffered())
	n := 0
	for n < len(buf) && plain[buf[n]] {
		n++
	}
	return buf[:n]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// files copies a process's "files" array, whose '[' was read. The array
// is held until it has more than FoldReads reads or foldBytes bytes;
// then its reads are folded: the page's array keeps the other entries,
// followed by the members "read_dirs" and "files_folded", and the whole
// array goes to the compressed lists.
func (pm *pageModel) files() {
	pm.arr = append(pm.arr[:0], '[')
	type span struct{ start, end int }
	var kept []span // the entries that are not reads, while held
	var f fileEntry
	dirs := map[string]*readDir{}
	reads := 0
	folding := false
	first := true // no entry written to the page's array yet
	for {
		if folding {
			pm.arr = pm.arr[:0] // what was held went to the lists
		}
		start, end, last := pm.element()
		if end > start {
			e := pm.arr[start:end]
			f = fileEntry{}
			// An element that is not a file entry of the schema (another
			// type, too deep) is not a read.
			if json.Unmarshal(e, &f) == nil && f.isRead() {
				reads++
				d := dirOf(f.Path)
				rd := dirs[d]
				if rd == nil {
					rd = &readDir{Dir: d}
					dirs[d] = rd
				}
				rd.add(&f)
			} else if folding {
				if !first {
					pm.out.WriteByte(',')
				}
				first = false
				pm.out.Write(e)
			} else {
				kept = append(kept, span{start, end})
			}
		}
		if !folding && (reads > FoldReads || len(pm.arr) > foldBytes) {
			folding = true
			pm.out.WriteByte('[')
			for _, s := range kept {
				if !first {
					pm.out.WriteByte(',')
				}
				first = false
				pm.out.Write(pm.arr[s.start:s.end])
			}
			if pm.gz == nil {
				pm.gz, _ = gzip.NewWriterLevel(&pm.blob, gzip.DefaultCompression)
				pm.gz.Write([]byte{'['}) // a bytes.Buffer does not fail
			} else {
				pm.gz.Write([]byte{','})
			}
		}
		if folding {
			pm.gz.Write(pm.arr)
		}
		if last != ',' {
			break
		}
	}
	if !folding {
		pm.out.Write(pm.arr)
		return
	}
	pm.out.WriteString(`],"read_dirs":[`)
	list := make([]*readDir, 0, len(dirs))
	for _, rd := range dirs {
		list = append(list, rd)
	}
	slices.SortFunc(list, func(a, b *readDir) int { return strings.Compare(a.Dir, b.Dir) })
	for k, rd := range list {
		if k > 0 {
			pm.out.WriteByte(',')
		}
		b, err := json.Marshal(rd)
		if err != nil {
			panic(err) // strings and ints only
		}
		pm.out.Write(appendEscaped(pm.tok[:0], b))
	}
	pm.out.WriteString(`],"files_folded":`)
	pm.out.WriteString(strconv.Itoa(pm.n))
	pm.n++
}

// lists returns the gzip stream of the folded lists, nil when nothing was
// folded.
func (pm *pageModel) lists() []byte {
	if pm.gz == nil {
		return nil
	}
	pm.gz.Write([]byte{']'})
	pm.gz.Close()
	return pm.blob.Bytes()
}

// check is what WriteHTMLFrom knows of the model once copied: an error
// for input that ended early or was not one object with "schema": 1.
func (pm *pageModel) check() error {
	if pm.err != io.EOF {
		return fmt.Errorf("report: read model: %w", pm.err)
	}
	if !pm.top || pm.bad {
		return errors.New("report: model is not one JSON object")
	}
	if pm.depth > 0 {
		return fmt.Errorf("report: model is not JSON: %w", io.ErrUnexpectedEOF)
	}
	if !pm.hasSchema {
		return fmt.Errorf("%w: no \"schema\"", ErrSchema)
	}
	if string(pm.schema) != strconv.Itoa(SchemaVersion) {
		return fmt.Errorf("%w: \"schema\" is %.20s", ErrSchema, pm.schema)
	}
	return nil
}
