package report

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FoldReads is the number of reads above which a process's reads are
// folded by directory in the page (see [WriteHTML]).
const FoldReads = 100

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

// folder collects the full file lists of the folded processes, compressed:
// the JSON array whose element k is the "files" array of the process whose
// "files_folded" is k, each byte for byte as in the model (escaped as the
// page's model is).
type folder struct {
	n   int
	buf bytes.Buffer
	gz  *gzip.Writer
	esc bytes.Buffer // reused for escaping
}

// fold returns what replaces the "files" array arr (a valid JSON array,
// the value of a process's "files") in the page, or nil to keep it as it
// is: the array without its reads, then the process's "read_dirs" and
// "files_folded" members. The replacement is valid inside the process
// object because it follows the "files" key.
func (fd *folder) fold(arr []byte) []byte {
	elems := splitArray(arr)
	reads := 0
	isRead := make([]bool, len(elems))
	var f fileEntry
	dirs := map[string]*readDir{}
	for k, e := range elems {
		f = fileEntry{}
		// An element that is not a file entry of the schema (another
		// type, too deep) is not a read.
		if json.Unmarshal(e, &f) != nil || !f.isRead() {
			continue
		}
		isRead[k] = true
		reads++
		d := dirOf(f.Path)
		rd := dirs[d]
		if rd == nil {
			rd = &readDir{Dir: d}
			dirs[d] = rd
		}
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
	if reads <= FoldReads {
		return nil
	}
	var out bytes.Buffer
	out.WriteByte('[')
	first := true
	for k, e := range elems {
		if isRead[k] {
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		out.Write(e)
	}
	out.WriteString(`],"read_dirs":[`)
	list := make([]*readDir, 0, len(dirs))
	for _, rd := range dirs {
		list = append(list, rd)
	}
	slices.SortFunc(list, func(a, b *readDir) int { return strings.Compare(a.Dir, b.Dir) })
	for k, rd := range list {
		if k > 0 {
			out.WriteByte(',')
		}
		b, err := json.Marshal(rd)
		if err != nil {
			panic(err) // strings and ints only
		}
		out.Write(b)
	}
	out.WriteString(`],"files_folded":`)
	out.WriteString(strconv.Itoa(fd.n))

	if fd.gz == nil {
		fd.gz, _ = gzip.NewWriterLevel(&fd.buf, gzip.BestCompression)
		fd.gz.Write([]byte{'['}) // a bytes.Buffer does not fail
	} else {
		fd.gz.Write([]byte{','})
	}
	fd.esc.Reset()
	appendScriptJSON(&fd.esc, arr)
	fd.gz.Write(fd.esc.Bytes())
	fd.n++
	return out.Bytes()
}

// blob returns the gzip stream of the folded lists, nil when nothing was
// folded.
func (fd *folder) blob() []byte {
	if fd.gz == nil {
		return nil
	}
	fd.gz.Write([]byte{']'})
	fd.gz.Close()
	return fd.buf.Bytes()
}

// splitArray returns the elements of the valid JSON array arr, without
// the white space around them.
func splitArray(arr []byte) [][]byte {
	var elems [][]byte
	depth, start := 0, -1
	for i := 0; i < len(arr); i++ {
		c := arr[i]
		switch c {
		case '"':
			i = stringEnd(arr, i) - 1
		case '[', '{':
			depth++
			if depth == 1 {
				start = i + 1
			}
		case ']', '}':
			if depth == 1 {
				if e := bytes.TrimSpace(arr[start:i]); len(e) > 0 {
					elems = append(elems, e)
				}
			}
			depth--
		case ',':
			if depth == 1 {
				elems = append(elems, bytes.TrimSpace(arr[start:i]))
				start = i + 1
			}
		}
	}
	return elems
}

// stringEnd returns the index just after the JSON string starting at
// m[i] ('"'), or len(m).
func stringEnd(m []byte, i int) int {
	for i++; i < len(m); i++ {
		switch m[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(m)
}

// valueEnd returns the index just after the JSON array or object
// starting at m[i].
func valueEnd(m []byte, i int) int {
	depth := 0
	for ; i < len(m); i++ {
		switch m[i] {
		case '"':
			i = stringEnd(m, i) - 1
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(m)
}

// filesArrays calls visit with the byte range of each process's "files"
// array in the valid JSON document model, in document order: the
// "files" member of an object in the top-level "processes" array or in a
// process's "children". It keeps a stack rather than recursing, so a
// fork chain of any depth is walked.
func filesArrays(model []byte, visit func(start, end int)) {
	type frame struct {
		obj     bool
		key     []byte // an object's last key, quotes included
		process bool   // an object: a process
		procs   bool   // an array: processes
	}
	var stack []frame
	expectKey := false
	for i := 0; i < len(model); {
		c := model[i]
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch c {
		case '"':
			j := stringEnd(model, i)
			if top != nil && top.obj && expectKey {
				top.key = model[i:j]
				expectKey = false
			}
			i = j
			continue
		case '{':
			stack = append(stack, frame{obj: true, process: top != nil && !top.obj && top.procs})
			expectKey = true
		case '[':
			if top != nil && top.obj {
				key := string(top.key)
				if top.process && key == `"files"` {
					end := valueEnd(model, i)
					visit(i, end)
					i = end
					continue
				}
				stack = append(stack, frame{procs: (len(stack) == 1 && key == `"processes"`) || (top.process && key == `"children"`)})
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
		}
		i++
	}
}
