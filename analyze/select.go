package analyze

import (
	"proctrail/analyze/internal/procstore"

	"path"
	"slices"
	"strings"
)

// selection returns which processes (by seq) the options keep. out
// returns process i's output (its Files need not be there) and every name
// it bore; touched reports whether i touched a path PathGlob matches,
// talked whether it has a network entry Addr matches. They are called
// only for the filters set, so a caller may compute them on demand rather
// than hold every process.
func (b *builder) selection(o *Options, fam *family, out func(i int) (*Process, []string), touched, talked func(i int) bool) ([]bool, error) {
	n := b.procs.Len()
	keep := make([]bool, n)
	for i := range keep {
		keep[i] = true
	}
	and := func(sel []bool) {
		for i := range keep {
			keep[i] = keep[i] && sel[i]
		}
	}
	var children [][]int // made by the first subtree
	subtree := func(match func(i int) bool) []bool {
		if children == nil {
			children = make([][]int, n)
			for i, par := range fam.parent {
				if !par.None() {
					children[par.Index()] = append(children[par.Index()], i)
				}
			}
		}
		sel := make([]bool, n)
		var stack []int
		for i := range n {
			if match(i) {
				stack = append(stack, i)
			}
		}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if sel[i] {
				continue
			}
			sel[i] = true
			stack = append(stack, children[i]...)
		}
		return sel
	}
	withAncestors := func(match func(i int) bool) []bool {
		sel := make([]bool, n)
		for i := range n {
			if !match(i) {
				continue
			}
			sel[i] = true
			// Bounded by n steps: a parent cycle cannot loop forever.
			for p, steps := fam.parent[i], 0; !p.None() && !sel[p.Index()] && steps <= n; p, steps = fam.parent[p.Index()], steps+1 {
				sel[p.Index()] = true
			}
		}
		return sel
	}

	if fam.cut != nil {
		// A cut's capture shows its selection, marked.
		and(fam.cut)
	}
	if o.Pid != 0 {
		and(subtree(func(i int) bool { return fam.pid[i] == o.Pid }))
	}
	if o.Cmd {
		if len(b.commands) == 0 {
			return nil, ErrNoCommand
		}
		and(subtree(func(i int) bool { return slices.Contains(b.commands, procstore.RefOf(i)) }))
	}
	if o.Container != "" {
		sel := make([]bool, n)
		for i := range n {
			p, _ := out(i)
			sel[i] = p.Container != "" && strings.HasPrefix(p.Container, o.Container)
		}
		and(sel)
	}
	if !o.Since.IsZero() || !o.Until.IsZero() {
		sel := make([]bool, n)
		for i := range n {
			p, _ := out(i)
			ok := true
			if !o.Since.IsZero() && p.End != 0 && p.End < o.Since.UnixNano() {
				ok = false
			}
			if !o.Until.IsZero() && p.Start > o.Until.UnixNano() {
				ok = false
			}
			sel[i] = ok
		}
		and(sel)
	}
	if o.Comm != "" {
		and(withAncestors(func(i int) bool {
			_, names := out(i)
			return slices.Contains(names, o.Comm)
		}))
	}
	if o.PathGlob != "" {
		and(withAncestors(touched))
	}
	if o.addr != nil {
		and(withAncestors(talked))
	}
	return keep, nil
}

// touches reports whether f's path, or the path it was renamed to,
// matches pattern (see globMatch).
func touches(f *File, pattern string) bool {
	return globMatch(pattern, f.Path) || (f.To != "" && globMatch(pattern, f.To))
}

// globMatch matches a path or one of its parent directories against
// pattern; a pattern without a slash matches the base name.
func globMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, path.Base(name))
		return ok
	}
	for q := name; ; q = path.Dir(q) {
		if ok, _ := path.Match(pattern, q); ok {
			return true
		}
		if q == "/" || q == "." || !strings.Contains(q, "/") {
			return false
		}
	}
}
