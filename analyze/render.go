package analyze

import (
	"cmp"
	"encoding/binary"
	"iter"
	"slices"
	"sort"

	"proctrail/analyze/internal/spool"
)

// The renderers whose output is not in the forest's order (DOT, PROV)
// take the processes one at a time, as the JSON does, from a Model
// (walkModel) or straight from the replay (outline.walk): whatever they
// must write after the last process (edges, entities, relations) goes to
// a spool of their own as it comes, and only what needs sorting across
// the whole output (the distinct paths and endpoints) stays in memory,
// with a few bytes per process.

// graph is a renderer that takes the processes one at a time: process
// adds a process, whose parent is the process of index parent (-1 for
// none), with its file accesses and network entries (nil for none); end
// writes what is left; close releases its spools.
type graph interface {
	process(p *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry])
	end() error
	close()
}

// writeGraph renders m with g.
func writeGraph(m *Model, g graph) error {
	defer g.close()
	walkModel(m, func(p *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) error {
		g.process(p, parent, files, net)
		return nil
	})
	return g.end()
}

// buildGraph replays s and renders what opts keep with the graph
// newGraph makes, a process at a time; it returns the Model's Capture.
func buildGraph(s EventSource, opts *Options, newGraph func(c *Capture, conts []Container) graph) (Capture, error) {
	ol, err := newOutline(s, opts)
	if err != nil {
		return Capture{}, err
	}
	defer ol.close()
	g := newGraph(&ol.c, ol.conts)
	defer g.close()
	err = ol.walk(func(p, _ *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) error {
		g.process(p, parent, files, net)
		return nil
	})
	if err != nil {
		return ol.c, err
	}
	return ol.c, g.end()
}

// renderSpool is the size of the renderers' spools' buffers: several
// are open at once.
var renderSpool = &spool.Sizes{Mem: 1 << 20}

// walkModel hands the processes of m to visit depth first, parents
// before children, with the index of the parent in that order (-1 for a
// root); files and net yield the process's Files and Net.
func walkModel(m *Model, visit func(p *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) error) error {
	type made struct {
		p      *Process
		parent int32
	}
	var stack []made
	for _, r := range slices.Backward(m.Processes) {
		stack = append(stack, made{r, -1})
	}
	for n := int32(0); len(stack) > 0; n++ {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if err := visit(t.p, t.parent, pointers(t.p.Files), pointers(t.p.Net)); err != nil {
			return err
		}
		for _, c := range slices.Backward(t.p.Children) {
			stack = append(stack, made{c, n})
		}
	}
	return nil
}

// pointers yields a pointer to each element of s.
func pointers[T any](s []T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for i := range s {
			if !yield(&s[i]) {
				return
			}
		}
	}
}

// preorder lists a forest depth first, parents before children, without
// recursion: a deep fork chain cannot exhaust the stack.
func preorder(roots []*Process) []*Process {
	var out []*Process
	stack := slices.Clone(roots)
	slices.Reverse(stack)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p)
		for i := len(p.Children) - 1; i >= 0; i-- {
			stack = append(stack, p.Children[i])
		}
	}
	return out
}

// records yields the records of sp in the order they were appended,
// each valid until the next; it stops at the spool's first error.
func records(sp *spool.Spool) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for off := int64(0); off < sp.Size(); {
			r := sp.Record(off)
			if r == nil || !yield(r) {
				return
			}
			off += spool.Overhead + int64(len(r))
		}
	}
}

// kinship is the parent-child pairs of a walk, by index, as
// parent<<32|child: sorted, they are each parent's children in the walk's
// order, parents in theirs.
type kinship []uint64

func (k *kinship) add(parent, child int32) {
	if parent >= 0 {
		*k = append(*k, uint64(parent)<<32|uint64(uint32(child)))
	}
}

// all yields the pairs in order.
func (k kinship) all() iter.Seq2[int32, int32] {
	slices.Sort(k)
	return func(yield func(int32, int32) bool) {
		for _, v := range k {
			if !yield(int32(v>>32), int32(uint32(v))) {
				return
			}
		}
	}
}

// identity is a process's pid and start, its index in a walk.
type identity struct {
	start int64
	pid   int32
	index int32
}

// identities finds processes by pid and start: add them in walk order,
// sort once, then ask last.
type identities []identity

func (ids identities) sort() {
	slices.SortFunc(ids, func(a, b identity) int {
		return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.start, b.start), cmp.Compare(a.index, b.index))
	})
}

// last returns the index of the last process added with pid and start.
func (ids identities) last(pid int32, start int64) (int32, bool) {
	i := sort.Search(len(ids), func(i int) bool {
		a := ids[i]
		return a.pid > pid || a.pid == pid && a.start > start
	})
	if i == 0 || ids[i-1].pid != pid || ids[i-1].start != start {
		return 0, false
	}
	return ids[i-1].index, true
}

// le is little-endian: the renderers' spool records.
var le = binary.LittleEndian
