package analyze

import (
	"bufio"
	"fmt"
	"io"
	"slices"
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
// and changes), and an ellipse per network endpoint (see writeEndpoints). Processes alive before the capture are dashed, the
// recorded command is bold, a failed or killed process is red.
//
// Every label is escaped: quotes, backslashes, control characters,
// invisible or bidirectional formatting characters, invalid UTF-8 and
// the characters record shapes and entities use ({ } < > | &) are shown
// literally, so no name can end a label or inject statements. The output
// is deterministic.
func WriteDOT(w io.Writer, m *Model, opts *DOTOptions) error {
	var o DOTOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxArgv <= 0 {
		o.MaxArgv = 60
	}
	bw := bufio.NewWriter(w)

	// Processes in depth-first order; node ids follow it.
	procs := preorder(m.Processes)
	id := make(map[*Process]string, len(procs))
	for i, p := range procs {
		id[p] = "p" + strconv.Itoa(i)
	}

	fmt.Fprintln(bw, "digraph proctrail {")
	c := m.Capture
	title := []string{"proctrail"}
	if c.Host != "" || c.Kernel != "" {
		title = append(title, strings.TrimSpace(c.Host+" "+c.Kernel))
	}
	if c.Start != 0 {
		title = append(title, fmtTime(c.Start)+" to "+fmtTime(c.End))
	}
	fmt.Fprintf(bw, "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label=%s];\n", dotLabel(title...))
	fmt.Fprintln(bw, "  node [shape=box, fontname=\"Helvetica\", fontsize=10];")
	fmt.Fprintln(bw, "  edge [fontname=\"Helvetica\", fontsize=8];")

	// One cluster per container, in the model's order.
	byCont := map[string][]*Process{}
	for _, p := range procs {
		byCont[p.Container] = append(byCont[p.Container], p)
	}
	conts := slices.Clone(m.Containers)
	for cid := range byCont {
		if cid != "" && !slices.ContainsFunc(conts, func(c Container) bool { return c.ID == cid }) {
			conts = append(conts, Container{ID: cid, Runtime: RuntimeUnknown})
		}
	}
	slices.SortStableFunc(conts[len(m.Containers):], func(a, b Container) int { return strings.Compare(a.ID, b.ID) })
	for _, p := range byCont[""] {
		writeNode(bw, "  ", id[p], p, o.MaxArgv)
	}
	for i, ct := range conts {
		members := byCont[ct.ID]
		if len(members) == 0 {
			continue
		}
		rootfs := ct.Rootfs
		if rootfs == "" {
			rootfs = "unknown"
		}
		fmt.Fprintf(bw, "  subgraph cluster_%d {\n", i)
		fmt.Fprintf(bw, "    label=%s;\n", dotLabel("container "+ct.ID+" ("+ct.Runtime+")", "rootfs "+rootfs))
		fmt.Fprintln(bw, "    style=rounded; color=\"#3366cc\";")
		for _, p := range members {
			writeNode(bw, "    ", id[p], p, o.MaxArgv)
		}
		fmt.Fprintln(bw, "  }")
	}
	for _, p := range procs {
		for _, ch := range p.Children {
			fmt.Fprintf(bw, "  %s -> %s;\n", id[p], id[ch])
		}
	}
	// Signals and ptrace attaches between processes of the graph.
	byIdentity := make(map[[2]int64]string, len(procs))
	for _, p := range procs {
		byIdentity[[2]int64{int64(p.PID), p.Start}] = id[p]
	}
	for _, p := range procs {
		for i := range p.Signals {
			sg := &p.Signals[i]
			if to, ok := byIdentity[[2]int64{int64(sg.TargetPID), sg.TargetStart}]; ok && sg.TargetPID != 0 {
				label := sg.Op + " " + SignalName(sg.Signal)
				if sg.Op == "ptrace" {
					label = "ptrace " + sg.Request
				}
				if sg.Error != "" {
					label += " " + sg.Error
				}
				fmt.Fprintf(bw, "  %s -> %s [style=dotted, color=\"#993399\", constraint=false, label=%s];\n", id[p], to, dotLabel(label))
			}
		}
	}
	if o.Files {
		writeFiles(bw, procs, id)
		writeEndpoints(bw, procs, id)
	}
	fmt.Fprintln(bw, "}")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("analyze: dot: %w", err)
	}
	return nil
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

// writeFiles writes a note per path the processes touched and an edge per
// distinct (process, file, kind) access.
func writeFiles(w io.Writer, procs []*Process, id map[*Process]string) {
	var paths []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			paths = append(paths, s)
		}
	}
	for _, p := range procs {
		for _, f := range p.Files {
			if !drawn(&f) {
				continue
			}
			add(f.Path)
			if f.To != "" {
				add(f.To)
			}
		}
	}
	slices.Sort(paths)
	fid := make(map[string]string, len(paths))
	for i, s := range paths {
		fid[s] = "f" + strconv.Itoa(i)
		fmt.Fprintf(w, "  %s [shape=note, color=\"#777777\", label=%s];\n", fid[s], dotLabel(s))
	}
	done := map[string]bool{}
	edge := func(from, to, attrs string) {
		key := from + ">" + to + " " + attrs
		if done[key] {
			return
		}
		done[key] = true
		if attrs != "" {
			attrs = " [" + attrs + "]"
		}
		fmt.Fprintf(w, "  %s -> %s%s;\n", from, to, attrs)
	}
	for _, p := range procs {
		pn := id[p]
		for _, f := range p.Files {
			if !drawn(&f) {
				continue
			}
			fn := fid[f.Path]
			switch {
			case f.Error != "":
				edge(pn, fn, "style=dashed, color=\"#cc0000\", label="+dotLabel(f.Error))
			case f.Op == "open" || f.Op == "create":
				switch f.Mode {
				case "r":
					edge(fn, pn, "color=\"#3366cc\"")
				case "w":
					edge(pn, fn, "color=\"#cc6600\", label="+dotLabel(f.Op))
				case "rw":
					edge(pn, fn, "dir=both, color=\"#cc6600\", label="+dotLabel(f.Op))
				default:
					edge(fn, pn, "style=dotted, label="+dotLabel(f.Op))
				}
			case f.Op == "exec":
				edge(fn, pn, "color=\"#339933\", label=\"exec\"")
			case f.Op == "chdir" || f.Op == "pivot_root" || f.Op == "setns":
				edge(pn, fn, "style=dashed, label="+dotLabel(f.Op))
			case f.Op == "rename":
				edge(pn, fn, "color=\"#cc6600\", label=\"rename\"")
				if f.To != "" {
					edge(pn, fid[f.To], "color=\"#cc6600\", label=\"renamed to\"")
				}
			default:
				edge(pn, fn, "color=\"#cc6600\", label="+dotLabel(f.Op+fileDetailText(&f)))
			}
		}
	}
}

// drawn reports whether the graph shows an access: not a failed one,
// unless it was denied (a missing file is mostly a search's probe).
func drawn(f *File) bool {
	return f.Error == "" || f.Error == "EACCES" || f.Error == "EPERM"
}

// writeEndpoints writes an ellipse per endpoint the processes talked to
// (connect, sendto, sendmsg: the remote; accept: the peer) or listened on,
// and an edge per distinct (process, endpoint, op, error): to the
// endpoint for what the process sent or asked, from it for an accepted
// peer and a listen. Failed calls are dashed and red, labelled with their
// errno.
func writeEndpoints(w io.Writer, procs []*Process, id map[*Process]string) {
	type node = dotNode
	var nodes []node
	seen := map[node]bool{}
	for _, p := range procs {
		for i := range p.Net {
			if n, ok := dotEndpoint(&p.Net[i]); ok && !seen[n] {
				seen[n] = true
				nodes = append(nodes, n)
			}
		}
	}
	slices.SortFunc(nodes, func(a, b node) int {
		if c := strings.Compare(a.family, b.family); c != 0 {
			return c
		}
		return strings.Compare(a.ep, b.ep)
	})
	nid := make(map[node]string, len(nodes))
	for i, n := range nodes {
		nid[n] = "n" + strconv.Itoa(i)
		fmt.Fprintf(w, "  %s [shape=ellipse, color=\"#6633cc\", label=%s];\n", nid[n], dotLabel(n.ep, n.family))
	}
	done := map[string]bool{}
	for _, p := range procs {
		pn := id[p]
		for i := range p.Net {
			e := &p.Net[i]
			n, ok := dotEndpoint(e)
			if !ok {
				continue
			}
			from, to := pn, nid[n]
			if e.Op == "accept" || e.Op == "listen" {
				from, to = to, from
			}
			attrs := "color=\"#6633cc\", label=" + dotLabel(e.Op)
			if e.Error != "" {
				attrs = "style=dashed, color=\"#cc0000\", label=" + dotLabel(e.Op+" "+e.Error)
			}
			key := from + ">" + to + " " + attrs
			if done[key] {
				continue
			}
			done[key] = true
			fmt.Fprintf(w, "  %s -> %s [%s];\n", from, to, attrs)
		}
	}
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
