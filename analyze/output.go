package analyze

import (
	"cmp"
	"iter"
	"slices"
	"strings"

	"proctrail/analyze/internal/procstore"
	"proctrail/formats"
	"proctrail/replay"
)

// The output phase. After the replay, the options choose the processes
// to keep (select.go) and the forest of the kept ones is laid out, in
// output order; then each process is made into its output form, a
// Process, when its turn comes. Every output goes this one way: Build
// collects the Processes into a Model, BuildJSON and BuildText write each
// and drop it, so that memory stays what the replay needed.

// Build replays s through the filter and returns the model of what
// happened, reduced by opts (nil for everything). It reads s to io.EOF and
// does not close it. The capture alone determines the result: Build uses
// no clock, no map order and no live system state.
//
// The process connector is the authority on lifetimes, parentage and
// threads; audit adds exe, argv, cwd, files and namespaces; procfs records
// add the processes alive at the start, cgroups (containers) and
// identities when audit is off. See the package documentation for the
// rules.
func Build(s EventSource, opts *Options) (*Model, error) {
	ol, err := newOutline(s, opts)
	if err != nil {
		return nil, err
	}
	defer ol.close()
	m := &Model{Capture: ol.c, Containers: ol.conts}
	collect := func(i int32) *Process {
		out, files, net := ol.process(i)
		collectInto(out, files, net)
		return out
	}
	// Without recursion: a deep fork chain cannot exhaust the stack.
	type made struct {
		i   int32
		out *Process
	}
	var todo []made
	for _, r := range ol.f.roots {
		out := collect(r)
		m.Processes = append(m.Processes, out)
		todo = append(todo, made{r, out})
	}
	for len(todo) > 0 {
		t := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, k := range ol.f.kids(t.i) {
			out := collect(k)
			t.out.Children = append(t.out.Children, out)
			todo = append(todo, made{k, out})
		}
	}
	if err := ol.b.spoolErr(); err != nil {
		return nil, err
	}
	return m, nil
}

// collectInto sets out's Files and Net from what files and net yield
// (either nil for none).
func collectInto(out *Process, files iter.Seq[*File], net iter.Seq[*NetEntry]) {
	if files != nil {
		for f := range files {
			out.Files = append(out.Files, *f)
		}
	}
	if net != nil {
		for e := range net {
			out.Net = append(out.Net, *e)
		}
	}
}

// Walk is [Build] without the Model, for outputs that take the
// processes one at a time (a database): it replays s, calls head with
// the Capture and the Containers, then visit for each process opts keep,
// depth first, in output order, parents before their children. parent is
// the kept parent's output (nil for a root); neither has Children,
// Files or Net. files yields p's file accesses in output order, read from
// the spool as they are asked for (nil with opts.NoFiles), so that a
// process with millions of them is never held whole; each *File is valid
// until the next, and files is valid until visit returns. net yields its
// network entries the same way (nil with opts.NoNet, or when it has
// none). p and parent are visit's until it returns, and are not reused:
// a caller may keep them.
// An error from head or visit ends the walk and is returned.
func Walk(s EventSource, opts *Options, head func(Capture, []Container) error, visit func(p, parent *Process, files iter.Seq[*File], net iter.Seq[*NetEntry]) error) error {
	ol, err := newOutline(s, opts)
	if err != nil {
		return err
	}
	defer ol.close()
	if err := head(ol.c, ol.conts); err != nil {
		return err
	}
	return ol.walk(func(p, parent *Process, _ int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) error {
		return visit(p, parent, files, net)
	})
}

// walk is Walk's loop: it makes the kept processes, depth first, in
// output order, and hands each to visit with its kept parent's output
// and index in that order (nil and -1 for a root), then checks the
// spool.
func (ol *outline) walk(visit func(p, parent *Process, parentIndex int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) error) error {
	type made struct {
		i     int32
		out   *Process
		index int32 // out's index in the walk
	}
	var todo []made
	// Roots in reverse, so that the stack gives them in order.
	for _, r := range slices.Backward(ol.f.roots) {
		todo = append(todo, made{r, nil, -1})
	}
	for n := int32(0); len(todo) > 0; n++ {
		t := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		out, files, net := ol.process(t.i)
		if err := visit(out, t.out, t.index, files, net); err != nil {
			return err
		}
		for _, k := range slices.Backward(ol.f.kids(t.i)) {
			todo = append(todo, made{k, out, n})
		}
	}
	return ol.b.spoolErr()
}

// outline is the output phase: a replayed builder, and the forest of the
// processes the options keep, in output order, made without holding any
// process's output.
type outline struct {
	b     *builder
	o     *Options
	c     Capture
	conts []Container
	f     *layout
	fam   *family
	keep  []bool // by index: the processes the options keep
	// boot and start are the capture's boot time and first capture time.
	boot, start int64
}

// newOutline replays s and lays out what opts keeps. The caller closes
// it.
func newOutline(s EventSource, opts *Options) (*outline, error) {
	return newOutlineTracking(s, opts, nil)
}

// newOutlineTracking is newOutline, with the replay's touched (see
// runFilter).
func newOutlineTracking(s EventSource, opts *Options, touched func([]ref)) (*outline, error) {
	b, o, err := runFilter(s, opts, touched)
	if err != nil {
		return nil, err
	}
	info := s.Info()
	ol := &outline{b: b, o: o, c: captureOf(info), boot: bootOf(info), start: info.Start}
	// The containers and identities first, in the order of the
	// processes: they are memoized, and a parent cycle (only hostile
	// input makes one) makes the memos depend on that order.
	fam := newFamily(b.procs.Len(), b.cutMarked)
	for p := range b.procs.All() {
		b.containerOf(p.Ref())
		b.baseIdentity(p.Ref())
		start, _ := outStart(p, ol.boot, ol.start)
		fam.set(p, start)
	}
	// The filters choose with each process's output made anew (files
	// read from the spool only to match PathGlob), not with all of them
	// held: memory stays what it is without filters.
	keep, err := b.selection(o, fam, func(i int) (out *Process, names []string) {
		b.procs.View(func() { out, names = b.process(b.procs.Get(procstore.RefOf(i)), ol.boot, ol.start) })
		return out, names
	}, func(i int) (hit bool) {
		b.procs.View(func() {
			for f := range b.spooled(b.procs.Stub(procstore.RefOf(i)).FirstFile) {
				if touches(f, o.PathGlob) {
					hit = true
					return
				}
			}
		})
		return hit
	}, func(i int) (hit bool) {
		b.procs.View(func() {
			for e := range b.spooledNet(b.procs.Get(procstore.RefOf(i)).FirstNet) {
				if o.addr.match(e) {
					hit = true
					return
				}
			}
		})
		return hit
	})
	if err != nil {
		ol.close()
		return nil, err
	}
	ol.f, ol.fam, ol.keep = b.forest(keep, fam), fam, keep
	ol.conts = b.containers(keep)
	return ol, nil
}

// close releases the spool.
func (ol *outline) close() { ol.b.spool.Close() }

// process makes process i's output, without its files and network
// entries: files and net yield them from the spool (nil with
// Options.NoFiles and NoNet), until the next call.
func (ol *outline) process(i int32) (out *Process, files iter.Seq[*File], net iter.Seq[*NetEntry]) {
	po := ol.proc(i)
	files, net = ol.lists(&po, ol.b.spool)
	return po.out, files, net
}

// procOut is process's first part, proc: a process's output, and what
// its lists need.
type procOut struct {
	out             *Process
	first, firstNet int64    // where its file accesses and network entries begin
	pm              *pathMap // how its paths map to the host's
}

// proc makes process i's output, without its files and network
// entries.
func (ol *outline) proc(i int32) procOut {
	b := ol.b
	var po procOut
	var firstSig int64
	b.procs.View(func() {
		p := b.procs.Get(procstore.RefOf(int(i)))
		po.out, _ = b.process(p, ol.boot, ol.start)
		po.first, firstSig, po.firstNet = p.FirstFile, p.FirstSignal, p.FirstNet
		po.pm = b.pathMapOf(p.Ref())
	})
	if firstSig != 0 {
		po.out.Signals = b.signals(firstSig, po.out, ol.boot, ol.start)
	}
	return po
}

// lists is process's second part: the file accesses and network entries
// of po, read from the spool with sp. It uses nothing of the builder but
// the spool, read with sp, and po, which it changes (pm's progress): it
// may run on another goroutine than proc, one process behind.
func (ol *outline) lists(po *procOut, sp spoolReader) (files iter.Seq[*File], net iter.Seq[*NetEntry]) {
	if !ol.o.NoFiles {
		files = markSearches(outFiles(sp, po.first, po.out, po.pm))
	}
	if !ol.o.NoNet && po.firstNet != 0 {
		net = outNets(sp, po.firstNet, po.out)
	}
	return files, net
}

func captureOf(info replay.CaptureInfo) Capture {
	return Capture{
		Files:             slices.Clone(info.Files),
		Host:              info.Host,
		Kernel:            info.Kernel,
		Start:             info.Start,
		End:               info.End,
		ConnectorMessages: info.Messages[formats.SourceConnector],
		ConnectorLost:     info.Lost[formats.SourceConnector],
		AuditMessages:     info.Messages[formats.SourceAudit],
		AuditEvents:       info.AuditEvents,
		AuditLost:         info.Lost[formats.SourceAudit],
		AuditGaps:         info.AuditGaps,
		ProcfsRecords:     info.Messages[formats.SourceProcfs],
		UnreadableBytes:   info.UnreadableBytes,
		SkippedLines:      info.SkippedLines(),
	}
}

func bootOf(info replay.CaptureInfo) int64 {
	if info.BootTime.IsZero() {
		return 0
	}
	return info.BootTime.UnixNano()
}

// family is what the output phase's passes need of every process, taken
// in one pass: its parent, its pid and its output start, by index; for a
// cut's capture whether it is of the cut's selection.
type family struct {
	parent []ref
	pid    []int32
	start  []int64
	cut    []bool // nil unless the capture is a cut
}

func newFamily(n int, cut bool) *family {
	f := &family{parent: make([]ref, n), pid: make([]int32, n), start: make([]int64, n)}
	if cut {
		f.cut = make([]bool, n)
	}
	return f
}

// set records p, whose output starts at start.
func (f *family) set(p *proc, start int64) {
	i := p.Ref().Index()
	f.parent[i], f.pid[i], f.start[i] = p.Parent, p.PID, start
	if f.cut != nil {
		f.cut[i] = p.CutSelected
	}
}

// layout is what forest lays out: the roots, and the kids of process i
// at the front of its range of kid, off[i] to off[i+1]: len[i] of them.
// Flat arrays of int32: a few bytes per process of the capture.
type layout struct {
	roots []int32
	off   []int32
	kid   []int32
	len   []int32
}

// kids returns the kids of i in output order.
func (f *layout) kids(i int32) []int32 { return f.kid[f.off[i] : f.off[i]+f.len[i]] }

// forest lays out the forest of the kept processes, given each process's
// output start time: the roots, and each process's children, in output
// order (start, pid, then order of creation). A parent cycle (only
// hostile input makes one) is cut at its earliest process.
func (b *builder) forest(keep []bool, fam *family) *layout {
	n := len(keep)
	parents := make([]int32, n) // index+1 of the kept parent; 0: a root
	f := &layout{off: make([]int32, n+1), kid: make([]int32, 0, n), len: make([]int32, n)}
	for i := range n {
		if !keep[i] {
			continue
		}
		if par := fam.parent[i]; !par.None() && keep[par.Index()] {
			parents[i] = int32(par)
			f.off[par.Index()+1]++
		} else {
			f.roots = append(f.roots, int32(i))
		}
	}
	// Each process's children, in order of creation, as a range of kid.
	for i := range n {
		f.off[i+1] += f.off[i]
	}
	f.kid = f.kid[:f.off[n]]
	next := slices.Clone(f.off[:n])
	for i := range n {
		if par := parents[i]; par != 0 {
			f.kid[next[par-1]] = int32(i)
			next[par-1]++
		}
	}
	next = nil
	order := func(a, c int32) int {
		return cmp.Or(cmp.Compare(fam.start[a], fam.start[c]), cmp.Compare(fam.pid[a], fam.pid[c]), cmp.Compare(a, c))
	}
	placed := make([]bool, n)
	place := func(root int32) {
		stack := []int32{root}
		placed[root] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			cs := f.kid[f.off[i]:f.off[i+1]]
			slices.SortFunc(cs, order)
			// The kids are the children not placed yet, moved to the
			// front of the range.
			for _, k := range cs {
				if placed[k] {
					continue
				}
				placed[k] = true
				f.kid[f.off[i]+f.len[i]] = k
				f.len[i]++
				stack = append(stack, k)
			}
		}
	}
	slices.SortFunc(f.roots, order)
	for _, r := range f.roots {
		place(r)
	}
	for i := range int32(n) {
		if keep[i] && !placed[i] {
			// In a cycle: cut it here. Its parent's list skips it, placed.
			f.roots = append(f.roots, i)
			place(i)
		}
	}
	slices.SortFunc(f.roots, order)
	return f
}

// containers lists the containers of the kept processes; the rootfs comes
// from any process of it.
func (b *builder) containers(keep []bool) []Container {
	conts := map[string]*Container{}
	for i := range keep {
		id := b.container(i)
		if id == "" {
			continue
		}
		c := conts[id]
		if c == nil {
			c = &Container{ID: id, Runtime: cmp.Or(b.runtimes[id], RuntimeUnknown)}
			conts[id] = c
		}
		if c.Rootfs == "" {
			b.procs.View(func() { c.Rootfs = b.procs.Get(procstore.RefOf(i)).PivotRoot })
		}
		if keep[i] {
			c.Processes++
		}
	}
	var out []Container
	for _, c := range conts {
		if c.Processes > 0 {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, c Container) int { return strings.Compare(a.ID, c.ID) })
	return out
}

// outStart is p's start time in the output, and whether it was alive
// before the capture started.
func outStart(p *proc, boot, captureStart int64) (start int64, before bool) {
	start = p.Start
	if !p.ForkSeen {
		known := p.StartTicks != 0 && boot != 0
		if known {
			start = min(boot+int64(p.StartTicks)*clockTick, p.Start)
		} else if p.InSnapshot && captureStart != 0 {
			start = min(p.Start, captureStart)
		}
		before = !p.CreatedByClone && !(known && start >= captureStart)
	}
	return start, before
}

// process converts p to its output form, without its files (see
// [builder.files]), and returns every name it bore.
func (b *builder) process(p *proc, boot, captureStart int64) (*Process, []string) {
	out := &Process{PID: p.PID, PPID: p.PPID, UID: p.UID, Container: b.containerOf(p.Ref()), Command: p.Command}
	if !p.Parent.None() {
		out.PPID = b.procs.Stub(p.Parent).PID
	}
	out.Start, out.BeforeCapture = outStart(p, boot, captureStart)
	out.End = p.End()
	if p.Exited {
		out.Exited, out.ExitCode, out.Signal, out.CoreDumped = true, p.ExitCode, p.Signal, p.CoreDumped
	} else if p.ExitGroup.Seen {
		out.Exited, out.ExitCode = true, p.ExitGroup.Code
		if out.End == 0 {
			out.End = p.ExitGroup.Time
		}
	}
	if out.End != 0 && out.End < out.Start {
		out.End = out.Start
	}
	clamp := func(t int64) int64 { return clampTo(t, out.Start, out.End) }

	id, names := b.identityOf(p)
	out.Comm, out.Exe, out.Argv, out.Cwd = id.Comm, id.Exe, id.Argv, id.Cwd
	if len(p.Execs) > 0 {
		out.Execs = make([]Exec, 0, len(p.Execs))
	}
	for _, x := range p.Execs {
		xi := execIdentity(x)
		out.Execs = append(out.Execs, Exec{Time: clamp(x.Time), Exe: xi.Exe, Argv: xi.Argv, Cwd: xi.Cwd, Fileless: x.Fileless})
	}
	out.Threads = make([]Thread, 0, len(p.Tasks))
	for _, tk := range p.Tasks {
		th := Thread{TID: tk.TID, Start: tk.Start, End: tk.End}
		if th.Start == 0 {
			th.Start = out.Start
		}
		th.Start = clamp(th.Start)
		if th.End == 0 {
			th.End = out.End
		} else {
			th.End = clamp(th.End)
		}
		out.Threads = append(out.Threads, th)
	}
	// The main thread first, the others by tid.
	slices.SortStableFunc(out.Threads[1:], func(a, c Thread) int { return cmp.Or(cmp.Compare(a.TID, c.TID), cmp.Compare(a.Start, c.Start)) })
	return out, names
}

// clampTo brings t within [start, end]; end 0 is no end.
func clampTo(t, start, end int64) int64 {
	if t < start {
		t = start
	}
	if end != 0 && t > end {
		t = end
	}
	return t
}

// outFiles yields, read with sp, the file accesses whose chain begins
// at first, of a process whose output form without files is out, in the
// order they were made, their paths mapped with pm and their times
// clamped to its life. The File is valid until the next.
func outFiles(sp spoolReader, first int64, out *Process, pm *pathMap) iter.Seq[*File] {
	return func(yield func(*File) bool) {
		for f := range spooledFiles(sp, first) {
			pm.apply(f)
			f.Open = clampTo(f.Open, out.Start, out.End)
			if f.Close != 0 {
				f.Close = max(clampTo(f.Close, out.Start, out.End), f.Open)
			} else if out.End != 0 {
				f.Close = out.End // never closed: closed at exit
			}
			if !yield(f) {
				return
			}
		}
	}
}
