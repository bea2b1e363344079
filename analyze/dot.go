package analyze

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// WriteDOT writes m as a Graphviz digraph: a box per process labelled with
// its pid, comm, a short argv and its exit status; an edge from each
// parent to each child; one cluster per container, labelled with its id
// and rootfs; with opts.Files, a note per file path and edges for the
// accesses (file → process for reads and execs, process → file for writes
// and changes), and an ellipse per network endpoint (see dotGraph.netEdge). Processes alive before the capture are dashed, the
// recorded command is bold, a failed or killed process is red.
//
// Every label is escaped: quotes, backslashes, control characters,
// invisible or bidirectional formatting characters, invalid UTF-8 and
// the characters record shapes and entities use ({ } < > | &) are shown
// literally, so no name can end a label or inject statements. The output
// is deterministic.
func WriteDOT(w io.Writer, m *Model, opts *DOTOptions) error {
	return writeGraph(m, newDOTGraph(w, opts, &m.Capture, m.Containers))
}

// BuildDOT is [Build] then [WriteDOT]: it writes the same bytes, but it
// never holds the Model. Each process is made into its output form when
// its turn comes and dropped once its lines are written to a spool (see
// dotGraph); without opts.Files it reads no file accesses or network
// entries. It returns the Model's Capture.
func BuildDOT(w io.Writer, s EventSource, opts *Options, dotOpts *DOTOptions) (Capture, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if dotOpts == nil || !dotOpts.Files {
		o.NoFiles, o.NoNet = true, true
	}
	return buildGraph(s, &o, func(c *Capture, conts []Container) graph { return newDOTGraph(w, dotOpts, c, conts) })
}

func fmtTime(t int64) string {
	return time.Unix(0, t).UTC().Format(TimeLayout)
}

func writeNode(w io.Writer, indent, id string, p *Process, maxArgv int) {
	args := strings.Join(p.Argv, " ")
	if args == "" {
		args = p.Exe
	}
	if utf8.RuneCountInString(args) > maxArgv {
		r := []rune(args)
		args = string(r[:maxArgv]) + "…"
	}
	var status string
	switch {
	case p.Exited && p.Signal != 0:
		status = "signal " + strconv.Itoa(p.Signal)
		if p.CoreDumped {
			status += " (core dumped)"
		}
	case p.Exited:
		status = "exit " + strconv.Itoa(p.ExitCode)
	case p.End != 0:
		status = "ended"
	default:
		status = "running"
	}
	lines := []string{strings.TrimSpace(strconv.Itoa(int(p.PID)) + " " + p.Comm)}
	if args != "" {
		lines = append(lines, args)
	}
	attrs := []string{"label=" + dotLabel(append(lines, status)...)}
	var style []string
	if p.BeforeCapture {
		style = append(style, "dashed")
	}
	if p.Command {
		style = append(style, "bold")
	}
	if len(style) > 0 {
		attrs = append(attrs, "style=\""+strings.Join(style, ",")+"\"")
	}
	if p.Exited && (p.Signal != 0 || p.ExitCode != 0) {
		attrs = append(attrs, "color=\"#cc0000\"")
	}
	fmt.Fprintf(w, "%s%s [%s];\n", indent, id, strings.Join(attrs, ", "))
}

// drawn reports whether the graph shows an access: not a failed one,
// unless it was denied (a missing file is mostly a search's probe).
func drawn(f *File) bool {
	return f.Error == "" || f.Error == "EACCES" || f.Error == "EPERM"
}

// dotNode is an endpoint's node: its family and endpoint text.
type dotNode struct{ family, ep string }

// dotEndpoint is the endpoint node of a network entry, if it has one in
// the graph.
func dotEndpoint(e *NetEntry) (dotNode, bool) {
	switch e.Op {
	case "connect", "sendto", "sendmsg", "accept", "listen":
	default:
		return dotNode{}, false
	}
	ep := NetEndpoint(e)
	if ep == "" {
		return dotNode{}, false
	}
	return dotNode{e.Family, ep}, true
}

// dotLabel returns a quoted DOT string showing each line literally, lines
// separated by centred line breaks.
func dotLabel(lines ...string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, l := range lines {
		if i > 0 {
			b.WriteString(`\n`)
		}
		dotEscape(&b, l)
	}
	b.WriteByte('"')
	return b.String()
}

// dotEscape writes s so that Graphviz shows it as is inside a quoted
// label. Graphviz drops a backslash before a character it does not know
// as an escape, so \{ shows {, also in record shapes; & is written as an
// entity because labels expand entities.
func dotEscape(b *strings.Builder, s string) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			fmt.Fprintf(b, `\\x%02x`, s[i])
			i++
			continue
		}
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\\n`)
		case '\r':
			b.WriteString(`\\r`)
		case '\t':
			b.WriteString(`\\t`)
		case '{', '}', '<', '>', '|':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '&':
			b.WriteString("&amp;")
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(b, `\\x%02x`, r)
			} else if !unicode.IsPrint(r) && r != ' ' {
				fmt.Fprintf(b, `\\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
}
