package analyze

import (
	"path"
	"slices"
	"strings"
)

// selection returns which processes (by seq) the options keep.
func (b *builder) selection(o *Options, outs []*Process, names [][]string) ([]bool, error) {
	n := len(b.procs)
	keep := make([]bool, n)
	for i := range keep {
		keep[i] = true
	}
	and := func(sel []bool) {
		for i := range keep {
			keep[i] = keep[i] && sel[i]
		}
	}
	children := make([][]int, n)
	parents := make([]procLink, n)
	pids := make([]int32, n)
	for i := range b.procs {
		p := b.at(i)
		parents[i], pids[i] = p.parent, p.pid
		b.settle(false)
		if !p.parent.none() {
			children[p.parent.seq()] = append(children[p.parent.seq()], i)
		}
	}
	subtree := func(match func(i int) bool) []bool {
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
			for p, steps := parents[i], 0; !p.none() && !sel[p.seq()] && steps <= n; p, steps = parents[p.seq()], steps+1 {
				sel[p.seq()] = true
			}
		}
		return sel
	}

	if o.Pid != 0 {
		and(subtree(func(i int) bool { return pids[i] == o.Pid }))
	}
	if o.Cmd {
		if len(b.commands) == 0 {
			return nil, ErrNoCommand
		}
		and(subtree(func(i int) bool { return slices.Contains(b.commands, int32(i)) }))
	}
	if o.Container != "" {
		sel := make([]bool, n)
		for i, out := range outs {
			sel[i] = out.Container != "" && strings.HasPrefix(out.Container, o.Container)
		}
		and(sel)
	}
	if !o.Since.IsZero() || !o.Until.IsZero() {
		sel := make([]bool, n)
		for i, out := range outs {
			ok := true
			if !o.Since.IsZero() && out.End != 0 && out.End < o.Since.UnixNano() {
				ok = false
			}
			if !o.Until.IsZero() && out.Start > o.Until.UnixNano() {
				ok = false
			}
			sel[i] = ok
		}
		and(sel)
	}
	if o.Comm != "" {
		and(withAncestors(func(i int) bool { return slices.Contains(names[i], o.Comm) }))
	}
	if o.PathGlob != "" {
		and(withAncestors(func(i int) bool {
			for _, f := range outs[i].Files {
				if globMatch(o.PathGlob, f.Path) || (f.To != "" && globMatch(o.PathGlob, f.To)) {
					return true
				}
			}
			return false
		}))
	}
	return keep, nil
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
