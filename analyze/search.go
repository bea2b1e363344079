package analyze

import (
	"path"
	"slices"
	"strconv"
)

// Searches: a program that looks for a file by name tries it in one
// directory after another, and each failed try is a failed open or exec
// (ld.so's library directories, execvp's and dash's $PATH, the locale
// directories). The output marks the accesses of each search (File.Search)
// so that the tree and the report can show it as one line; JSON keeps
// every attempt.

// maxSearch bounds the attempts of one search: a longer run is cut into
// searches of this many, so that marking holds little in memory.
const maxSearch = 256

// continuesSearch reports whether next is the next attempt of the search
// whose last attempt was prev: prev failed, and next is the same
// operation (open or exec) on the same name in another directory, or,
// for an exec, in the same one again (a $PATH that names a directory
// twice: execvp tries it twice). An open of the same path again is a
// retry, not a search.
func continuesSearch(prev, next *File) bool {
	return prev.Error != "" && prev.Op == next.Op && (next.Op == "open" || next.Op == "exec") &&
		path.Base(prev.Path) == path.Base(next.Path) &&
		(path.Dir(prev.Path) != path.Dir(next.Path) || next.Op == "exec")
}

// markSearches yields what files yields, in order, with the attempts of
// each search of two or more marked. It holds at most maxSearch accesses.
func markSearches(files func(yield func(*File) bool)) func(yield func(*File) bool) {
	return func(yield func(*File) bool) {
		var pend []File
		// flush yields the pending accesses, marked when they are a
		// search; false when yield said stop.
		flush := func() bool {
			mark := len(pend) >= 2
			for i := range pend {
				pend[i].Search = mark
				if !yield(&pend[i]) {
					return false
				}
			}
			pend = pend[:0]
			return true
		}
		for f := range files {
			if n := len(pend); n > 0 && n < maxSearch && continuesSearch(&pend[n-1], f) {
				pend = append(pend, *f)
				if f.Error == "" && !flush() {
					return
				}
				continue
			}
			if !flush() {
				return
			}
			if f.Error != "" && (f.Op == "open" || f.Op == "exec") {
				pend = append(pend, *f)
				continue
			}
			if !yield(f) {
				return
			}
		}
		flush()
	}
}

// MarkSearches sets the Search field of files, a process's accesses in
// the order made, as the output does: true for each attempt of a search
// of two or more (consecutive accesses, each but the last failed, the
// same open or exec of the same name in other directories), false for the
// others.
func MarkSearches(files []File) {
	i := 0
	for f := range markSearches(slices.Values(ptrs(files))) {
		files[i] = *f
		i++
	}
}

// ptrs is the elements' addresses, as an iterator yields them.
func ptrs(files []File) []*File {
	out := make([]*File, len(files))
	for i := range files {
		out[i] = &files[i]
	}
	return out
}

// notFound reports whether a failed access is an exec of a file that is
// not there: a command not found.
func notFound(f *File) bool {
	return f.Op == "exec" && (f.Error == "ENOENT" || f.Error == "ENOTDIR")
}

// searchLine is the tree's line for the attempts of one search: the path
// found ("exec /usr/bin/make (tried 3 places)"), or the name that was
// not ("exec frobnicate: command not found (tried 6 places)", "open
// libfoo.so.1 ENOENT (tried 14 places)").
func searchLine(run []File) string {
	last := &run[len(run)-1]
	places := map[string]bool{}
	for i := range run {
		places[run[i].Path] = true
	}
	tried := " (tried " + strconv.Itoa(len(places)) + " places)"
	if last.Error == "" {
		f := *last
		return fileLine(&f) + tried
	}
	all := true
	for i := range run {
		all = all && notFound(&run[i])
	}
	name := safe(path.Base(last.Path))
	if all {
		return last.Op + " " + name + ": command not found" + tried
	}
	return last.Op + " " + name + " " + last.Error + tried
}
