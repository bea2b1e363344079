package analyze

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"

	"proctrail/analyze/internal/spool"
)

// dotGraph writes a DOT graph (see WriteDOT) from the processes handed
// to process in walk order. The graph's sections are not in that order:
// the nodes are grouped by container, and the file and endpoint nodes,
// numbered in sorted order, come before their edges. So process writes
// the lines it can to spools (node lines, signal, file and endpoint
// edges), and end writes them in the graph's order. In memory: 40 bytes
// per process, the distinct paths and endpoints, and one process's
// distinct edges at a time.
type dotGraph struct {
	w     *bufio.Writer
	o     DOTOptions
	conts []Container // the model's, in its order
	n     int32       // the processes so far

	lines *spool.Spool // node lines, in walk order
	nodes []dotLine
	group map[string]int32 // a container's group: 1, 2… in order seen
	kids  kinship
	ids   identities

	// signals holds the signal edges: from, target pid and start,
	// label; files and eps the file and endpoint edges.
	signals, files, eps *spool.Spool
	paths               map[string]int32 // a path's number in order seen
	endpoints           map[dotNode]int32
	done                map[dotEdge]bool // the process's edges so far
	rec                 []byte
}

// dotLine is a node line: its container's group (0: none) and where it
// is in lines.
type dotLine struct {
	group int32
	off   int64
}

// dotEdge is an edge of the current process to a file or endpoint: its
// direction (to the process or from it), the other end's number and its
// attributes.
type dotEdge struct {
	in    bool
	other int32
	attrs string
}

func newDOTGraph(w io.Writer, opts *DOTOptions, c *Capture, conts []Container) *dotGraph {
	g := &dotGraph{w: bufio.NewWriter(w), conts: conts,
		lines: spool.New(renderSpool), group: map[string]int32{},
		signals: spool.New(renderSpool), files: spool.New(renderSpool), eps: spool.New(renderSpool),
		paths: map[string]int32{}, endpoints: map[dotNode]int32{}, done: map[dotEdge]bool{}}
	if opts != nil {
		g.o = *opts
	}
	if g.o.MaxArgv <= 0 {
		g.o.MaxArgv = 60
	}
	bw := g.w
	fmt.Fprintln(bw, "digraph proctrail {")
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
	return g
}

// close releases the spools.
func (g *dotGraph) close() {
	for _, sp := range []*spool.Spool{g.lines, g.signals, g.files, g.eps} {
		sp.Close()
	}
}

// process adds p, whose parent is the process of index parent (-1 for
// none); files and net yield its accesses and network entries.
func (g *dotGraph) process(p *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) {
	i := g.n
	g.n++
	id := "p" + strconv.Itoa(int(i))
	indent := "  "
	var grp int32
	if p.Container != "" {
		grp = g.group[p.Container]
		if grp == 0 {
			grp = int32(len(g.group) + 1)
			g.group[p.Container] = grp
		}
		indent = "    "
	}
	var line bytes.Buffer
	writeNode(&line, indent, id, p, g.o.MaxArgv)
	g.nodes = append(g.nodes, dotLine{grp, g.lines.Append(line.Bytes())})
	g.kids.add(parent, i)
	g.ids = append(g.ids, identity{start: p.Start, pid: p.PID, index: i})
	for j := range p.Signals {
		sg := &p.Signals[j]
		if sg.TargetPID == 0 {
			continue
		}
		label := sg.Op + " " + SignalName(sg.Signal)
		if sg.Op == "ptrace" {
			label = "ptrace " + sg.Request
		}
		if sg.Error != "" {
			label += " " + sg.Error
		}
		g.rec = le.AppendUint32(g.rec[:0], uint32(i))
		g.rec = le.AppendUint32(g.rec, uint32(sg.TargetPID))
		g.rec = le.AppendUint64(g.rec, uint64(sg.TargetStart))
		g.signals.Append(append(g.rec, dotLabel(label)...))
	}
	if !g.o.Files {
		return
	}
	if files != nil {
		clear(g.done)
		for f := range files {
			g.fileEdges(i, f)
		}
	}
	if net != nil {
		clear(g.done)
		for e := range net {
			g.netEdge(i, e)
		}
	}
}

// path returns the number of a path.
func (g *dotGraph) path(s string) int32 {
	n, ok := g.paths[s]
	if !ok {
		n = int32(len(g.paths))
		g.paths[strings.Clone(s)] = n
	}
	return n
}

// fileEdges adds the edges of process i's access f: one per distinct
// (process, file, kind).
func (g *dotGraph) fileEdges(i int32, f *File) {
	if !drawn(f) {
		return
	}
	fn := g.path(f.Path)
	var to int32
	if f.To != "" {
		to = g.path(f.To)
	}
	edge := func(in bool, file int32, attrs string) {
		k := dotEdge{in, file, attrs}
		if g.done[k] {
			return
		}
		g.done[k] = true
		g.edgeRecord(g.files, i, k)
	}
	switch {
	case f.Error != "":
		edge(false, fn, "style=dashed, color=\"#cc0000\", label="+dotLabel(f.Error))
	case f.Op == "open" || f.Op == "create":
		switch f.Mode {
		case "r":
			edge(true, fn, "color=\"#3366cc\"")
		case "w":
			edge(false, fn, "color=\"#cc6600\", label="+dotLabel(f.Op))
		case "rw":
			edge(false, fn, "dir=both, color=\"#cc6600\", label="+dotLabel(f.Op))
		default:
			edge(true, fn, "style=dotted, label="+dotLabel(f.Op))
		}
	case f.Op == "exec":
		edge(true, fn, "color=\"#339933\", label=\"exec\"")
	case f.Op == "chdir" || f.Op == "pivot_root" || f.Op == "setns":
		edge(false, fn, "style=dashed, label="+dotLabel(f.Op))
	case f.Op == "rename":
		edge(false, fn, "color=\"#cc6600\", label=\"rename\"")
		if f.To != "" {
			edge(false, to, "color=\"#cc6600\", label=\"renamed to\"")
		}
	default:
		edge(false, fn, "color=\"#cc6600\", label="+dotLabel(f.Op+fileDetailText(f)))
	}
}

// netEdge adds the edge of process i's network entry e, if it has an
// endpoint node. The graph has an ellipse per endpoint the processes
// talked to (connect, sendto, sendmsg: the remote; accept: the peer) or
// listened on, and an edge per distinct (process, endpoint, op, error):
// to the endpoint for what the process sent or asked, from it for an
// accepted peer and a listen. Failed calls are dashed and red, labelled
// with their errno.
func (g *dotGraph) netEdge(i int32, e *NetEntry) {
	nd, ok := dotEndpoint(e)
	if !ok {
		return
	}
	n, ok := g.endpoints[nd]
	if !ok {
		n = int32(len(g.endpoints))
		g.endpoints[dotNode{strings.Clone(nd.family), strings.Clone(nd.ep)}] = n
	}
	attrs := "color=\"#6633cc\", label=" + dotLabel(e.Op)
	if e.Error != "" {
		attrs = "style=dashed, color=\"#cc0000\", label=" + dotLabel(e.Op+" "+e.Error)
	}
	k := dotEdge{e.Op == "accept" || e.Op == "listen", n, attrs}
	if g.done[k] {
		return
	}
	g.done[k] = true
	g.edgeRecord(g.eps, i, k)
}

// edgeRecord appends edge k of process i to sp.
func (g *dotGraph) edgeRecord(sp *spool.Spool, i int32, k dotEdge) {
	in := byte(0)
	if k.in {
		in = 1
	}
	g.rec = append(g.rec[:0], in)
	g.rec = le.AppendUint32(g.rec, uint32(i))
	g.rec = le.AppendUint32(g.rec, uint32(k.other))
	sp.Append(append(g.rec, k.attrs...))
}

// end writes the graph's sections and ends it.
func (g *dotGraph) end() error {
	bw := g.w
	// One cluster per container: the model's in its order, then those
	// only processes name, by id.
	conts := slices.Clone(g.conts)
	known := make(map[string]bool, len(conts))
	for _, c := range conts {
		known[c.ID] = true
	}
	for cid := range g.group {
		if !known[cid] {
			conts = append(conts, Container{ID: cid, Runtime: RuntimeUnknown})
		}
	}
	slices.SortStableFunc(conts[len(g.conts):], func(a, b Container) int { return strings.Compare(a.ID, b.ID) })
	rank := make([]int32, len(g.group)+1) // by group: its cluster's index+1
	for i, c := range conts {
		if grp, ok := g.group[c.ID]; ok && rank[grp] == 0 {
			rank[grp] = int32(i + 1)
		}
	}
	slices.SortStableFunc(g.nodes, func(a, b dotLine) int { return cmp.Compare(rank[a.group], rank[b.group]) })
	at := 0
	for c := int32(0); c <= int32(len(conts)); c++ {
		start := at
		for at < len(g.nodes) && rank[g.nodes[at].group] == c {
			at++
		}
		if at == start {
			continue
		}
		if c > 0 {
			ct := conts[c-1]
			rootfs := cmp.Or(ct.Rootfs, "unknown")
			fmt.Fprintf(bw, "  subgraph cluster_%d {\n", c-1)
			fmt.Fprintf(bw, "    label=%s;\n", dotLabel("container "+ct.ID+" ("+ct.Runtime+")", "rootfs "+rootfs))
			fmt.Fprintln(bw, "    style=rounded; color=\"#3366cc\";")
		}
		for _, nd := range g.nodes[start:at] {
			bw.Write(g.lines.Record(nd.off))
		}
		if c > 0 {
			fmt.Fprintln(bw, "  }")
		}
	}
	g.nodes = nil
	for par, kid := range g.kids.all() {
		fmt.Fprintf(bw, "  p%d -> p%d;\n", par, kid)
	}
	// Signals and ptrace attaches between processes of the graph.
	g.ids.sort()
	for r := range records(g.signals) {
		if to, ok := g.ids.last(int32(le.Uint32(r[4:])), int64(le.Uint64(r[8:]))); ok {
			fmt.Fprintf(bw, "  p%d -> p%d [style=dotted, color=\"#993399\", constraint=false, label=%s];\n", le.Uint32(r), to, r[16:])
		}
	}
	if g.o.Files {
		g.endFiles()
	}
	fmt.Fprintln(bw, "}")
	for _, sp := range []*spool.Spool{g.lines, g.signals, g.files, g.eps} {
		if err := sp.Err(); err != nil {
			return fmt.Errorf("analyze: dot: spool: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("analyze: dot: %w", err)
	}
	return nil
}

// endFiles writes a note per path the processes touched and an edge per
// distinct (process, file, kind) access, then the endpoints and theirs
// (see writeEndpoints).
func (g *dotGraph) endFiles() {
	bw := g.w
	paths := make([]string, len(g.paths))
	for s, n := range g.paths {
		paths[n] = s
	}
	order := make([]int32, len(paths)) // by number: the position sorted
	byName := slices.Clone(paths)
	slices.Sort(byName)
	for i, s := range byName {
		order[g.paths[s]] = int32(i)
		fmt.Fprintf(bw, "  f%d [shape=note, color=\"#777777\", label=%s];\n", i, dotLabel(s))
	}
	g.edges(g.files, "f", order)

	nodes := make([]dotNode, len(g.endpoints))
	for nd, n := range g.endpoints {
		nodes[n] = nd
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b dotNode) int {
		return cmp.Or(strings.Compare(a.family, b.family), strings.Compare(a.ep, b.ep))
	})
	order = make([]int32, len(nodes))
	for i, nd := range sorted {
		order[g.endpoints[nd]] = int32(i)
		fmt.Fprintf(bw, "  n%d [shape=ellipse, color=\"#6633cc\", label=%s];\n", i, dotLabel(nd.ep, nd.family))
	}
	g.edges(g.eps, "n", order)
}

// edges writes the edges of sp, whose other ends are nodes named prefix
// and their position in order.
func (g *dotGraph) edges(sp *spool.Spool, prefix string, order []int32) {
	for r := range records(sp) {
		p := "p" + strconv.FormatUint(uint64(le.Uint32(r[1:])), 10)
		o := prefix + strconv.Itoa(int(order[le.Uint32(r[5:])]))
		from, to := p, o
		if r[0] == 1 {
			from, to = to, from
		}
		fmt.Fprintf(g.w, "  %s -> %s [%s];\n", from, to, r[9:])
	}
}
