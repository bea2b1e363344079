package analyze

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
)

// What a run changed: the file accesses of the kept processes that
// changed the file system, summed up by directory, each naming the
// process that made it. Reads, execs and chdirs are left out.

// Changes is what the processes of a model changed in the file system.
type Changes struct {
	// Counts are the entries of each operation over every directory,
	// in ChangeOps order, those with none left out.
	Counts []OpCount
	// Processes is how many processes made a change.
	Processes int
	// Dirs are the directories changes were made in (the directory of
	// each changed path), sorted.
	Dirs []ChangeDir
}

// OpCount is a number of entries of one operation.
type OpCount struct {
	Op string
	N  int
}

// ChangeDir is the changes made in one directory.
type ChangeDir struct {
	Dir    string
	Counts []OpCount
	// Changes are sorted by time, then path, operation and pid.
	Changes []Change
}

// Change is one operation of one process on one path, once however
// often the process made it with the same details.
type Change struct {
	// Op is one of ChangeOps: an open for writing of a file that existed
	// is "write", a rename is listed at its new path.
	Op   string
	Path string
	// From is the old path of a rename.
	From string
	// Target, Perm, Owner, Type, Flags and Size are the File's.
	Target, Perm, Owner, Type, Flags, Size string
	// PID, Start and Comm name the process that made it.
	PID   int32
	Start int64
	Comm  string
	// Time is when it was first made, Last when last; Count how often.
	Time, Last int64
	Count      int
	// Gone is set when a later change in the model removed the path (or
	// a directory above it): an unlink, rmdir, a rename away from it, or
	// for a mount, an umount of it. Temporary files are gone.
	Gone bool
}

// ChangeOps are the operations a Changes counts, in its order.
var ChangeOps = []string{
	"create", "write", "mkdir", "link", "symlink", "mknod", "rename", "chmod", "chown",
	"truncate", "utime", "setxattr", "removexattr", "unlink", "rmdir", "mount", "umount",
}

var changeOpIndex = func() map[string]int {
	m := make(map[string]int, len(ChangeOps))
	for i, op := range ChangeOps {
		m[op] = i
	}
	return m
}()

// Setuid and Setgid report whether c's Perm has the set-uid or set-gid
// bit.
func (c *Change) Setuid() bool { return permBit(c.Perm, 04000) }
func (c *Change) Setgid() bool { return permBit(c.Perm, 02000) }

// changeOf returns the operation under which f is a change, if it is one.
func changeOf(f *File) (op string, ok bool) {
	if f.Error != "" || f.Path == "" {
		return "", false
	}
	switch f.Op {
	case "open":
		return "write", (f.Mode == "w" || f.Mode == "rw") && !stateless(f.Path)
	case "exec", "chdir", "pivot_root", "setns":
		return "", false
	}
	_, ok = changeOpIndex[f.Op]
	return f.Op, ok
}

// stateless reports whether p is a device or name a write to changes
// nothing on the system: /dev/null, a terminal, a standard stream.
func stateless(p string) bool {
	switch p {
	case "/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/console", "/dev/stdout", "/dev/stderr", "/dev/ptmx":
		return true
	}
	for _, pre := range [...]string{"/dev/pts/", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"} {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return strings.HasPrefix(p, "/dev/tty")
}

// changeKey identifies a Change: the same operation with the same
// details on the same path by the same process.
type changeKey struct {
	op, path, from                        string
	target, perm, owner, typ, flags, size string
	pid                                   int32
	start                                 int64
}

// removal is when a path was removed: its time, its audit serial, and
// the order of that access among all the accumulator saw.
type removal struct {
	t      int64
	serial uint64
	seq    int
}

// mark is where an access stands in the order of the changes.
type mark = removal

// changeSet accumulates the changes of processes, one access at a time.
type changeSet struct {
	byKey   map[changeKey]*Change
	seqs    map[*Change]mark // each change's last access
	removed map[string]removal
	mounts  map[string]removal // umounts, by path
	procs   map[[2]int64]bool
	seq     int
}

func newChangeSet() *changeSet {
	return &changeSet{byKey: map[changeKey]*Change{}, seqs: map[*Change]mark{}, removed: map[string]removal{},
		mounts: map[string]removal{}, procs: map[[2]int64]bool{}}
}

// add adds f, an access of p, if it is a change.
func (cs *changeSet) add(p *Process, f *File) {
	op, ok := changeOf(f)
	if !ok {
		return
	}
	cs.seq++
	k := changeKey{op: op, path: f.Path, target: f.Target, perm: f.Perm, owner: f.Owner, typ: f.Type,
		flags: f.Flags, size: f.Size, pid: p.PID, start: p.Start}
	if op == "rename" && f.To != "" {
		k.path, k.from = f.To, f.Path
	}
	t := f.Open
	at := mark{t, f.Serial, cs.seq}
	switch op {
	case "unlink", "rmdir", "rename":
		cs.remove(cs.removed, f.Path, at)
	case "umount":
		cs.remove(cs.mounts, f.Path, at)
	}
	c := cs.byKey[k]
	if c == nil {
		c = &Change{Op: op, Path: k.path, From: k.from, Target: f.Target, Perm: f.Perm, Owner: f.Owner,
			Type: f.Type, Flags: f.Flags, Size: f.Size, PID: p.PID, Start: p.Start, Comm: p.Comm, Time: t, Last: t}
		cs.byKey[k] = c
		cs.procs[[2]int64{int64(p.PID), p.Start}] = true
	}
	c.Count++
	c.Time, c.Last = min(c.Time, t), max(c.Last, t)
	if last, ok := cs.seqs[c]; !ok || later(at, last) {
		cs.seqs[c] = at
	}
}

func (cs *changeSet) remove(m map[string]removal, p string, at mark) {
	if r, ok := m[p]; !ok || later(at, r) {
		m[p] = at
	}
}

// later reports whether the access at a came after the one at b: by
// their audit serials when both have one (the kernel's order, where
// times are those of the records' receipt), else by time, then by the
// order added.
func later(a, b mark) bool {
	if a.serial != 0 && b.serial != 0 && a.serial != b.serial {
		return a.serial > b.serial
	}
	return a.t > b.t || a.t == b.t && a.seq > b.seq
}

// after reports whether r came after the change c.
func (cs *changeSet) after(r removal, c *Change) bool { return later(r, cs.seqs[c]) }

// result sums up what was added.
func (cs *changeSet) result() *Changes {
	out := &Changes{Processes: len(cs.procs)}
	dirs := map[string]*ChangeDir{}
	total := make([]int, len(ChangeOps))
	for _, c := range cs.byKey {
		switch c.Op {
		case "unlink", "rmdir", "umount":
		case "mount":
			if r, ok := cs.mounts[c.Path]; ok && cs.after(r, c) {
				c.Gone = true
			}
		default:
			// The path, or a directory above it, went later.
			for q := c.Path; ; q = path.Dir(q) {
				if r, ok := cs.removed[q]; ok && cs.after(r, c) {
					c.Gone = true
					break
				}
				if q == "/" || q == "." || !strings.Contains(q, "/") {
					break
				}
			}
		}
		d := path.Dir(c.Path)
		cd := dirs[d]
		if cd == nil {
			cd = &ChangeDir{Dir: d}
			dirs[d] = cd
		}
		cd.Changes = append(cd.Changes, *c)
		total[changeOpIndex[c.Op]]++
	}
	for _, cd := range dirs {
		slices.SortFunc(cd.Changes, func(a, b Change) int {
			return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.Path, b.Path),
				cmp.Compare(changeOpIndex[a.Op], changeOpIndex[b.Op]), cmp.Compare(a.PID, b.PID), cmp.Compare(a.Start, b.Start),
				strings.Compare(a.From, b.From), strings.Compare(a.Target, b.Target), strings.Compare(a.Perm, b.Perm),
				strings.Compare(a.Owner, b.Owner), strings.Compare(a.Type, b.Type), strings.Compare(a.Flags, b.Flags),
				strings.Compare(a.Size, b.Size))
		})
		n := make([]int, len(ChangeOps))
		for i := range cd.Changes {
			n[changeOpIndex[cd.Changes[i].Op]]++
		}
		cd.Counts = opCounts(n)
		out.Dirs = append(out.Dirs, *cd)
	}
	slices.SortFunc(out.Dirs, func(a, b ChangeDir) int { return strings.Compare(a.Dir, b.Dir) })
	out.Counts = opCounts(total)
	return out
}

func opCounts(n []int) []OpCount {
	var out []OpCount
	for i, v := range n {
		if v > 0 {
			out = append(out, OpCount{ChangeOps[i], v})
		}
	}
	return out
}

// Changes sums up what the processes of m changed in the file system,
// over the whole model: every kept process, whatever its depth.
func (m *Model) Changes() *Changes {
	cs := newChangeSet()
	for _, p := range preorder(m.Processes) {
		for i := range p.Files {
			cs.add(p, &p.Files[i])
		}
	}
	return cs.result()
}

// Empty reports whether c holds no change.
func (c *Changes) Empty() bool { return len(c.Dirs) == 0 }

// WriteChanges writes what m's processes changed as text for a terminal:
// a line of totals, then each directory with its counts and its changes,
// one a line, each with the process that made it. Strings from the
// capture are quoted when they hold control characters.
func WriteChanges(w io.Writer, m *Model) error {
	bw := bufio.NewWriter(w)
	t := &textWriter{bw: bw}
	t.head(m.Capture, m.Containers)
	writeChangesText(bw, m.Changes())
	return bw.Flush()
}

// BuildChanges is [Build] then [WriteChanges], the processes read one at
// a time as BuildText does: only the changes are held. It returns the
// Model's Capture.
func BuildChanges(w io.Writer, s EventSource, opts *Options) (Capture, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.NoFiles = false
	ol, err := newOutline(s, &o)
	if err != nil {
		return Capture{}, err
	}
	defer ol.close()
	cs := newChangeSet()
	var stack []int32
	stack = append(stack, ol.f.roots...)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out, files, _ := ol.process(i)
		if files != nil {
			for f := range files {
				cs.add(out, f)
			}
		}
		stack = append(stack, ol.f.kids(i)...)
	}
	bw := bufio.NewWriter(w)
	t := &textWriter{bw: bw}
	t.head(ol.c, ol.conts)
	writeChangesText(bw, cs.result())
	if err := bw.Flush(); err != nil {
		return ol.c, err
	}
	return ol.c, ol.b.spoolErr()
}

// fmtCounts writes counts as "create 3, chmod 1".
func fmtCounts(counts []OpCount) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = c.Op + " " + strconv.Itoa(c.N)
	}
	return strings.Join(parts, ", ")
}

func writeChangesText(w *bufio.Writer, ch *Changes) {
	if ch.Empty() {
		fmt.Fprintln(w, "no changes")
		return
	}
	n := 0
	for _, c := range ch.Counts {
		n += c.N
	}
	fmt.Fprintf(w, "%d changes in %d directories by %d processes: %s\n", n, len(ch.Dirs), ch.Processes, fmtCounts(ch.Counts))
	for _, d := range ch.Dirs {
		fmt.Fprintf(w, "\n%s  (%s)\n", safe(d.Dir), fmtCounts(d.Counts))
		for i := range d.Changes {
			c := &d.Changes[i]
			line := fmt.Sprintf("  %-11s %s", c.Op, safe(c.Path))
			if c.From != "" {
				line += " ← " + safe(c.From)
			}
			f := File{Op: c.Op, Target: c.Target, Perm: c.Perm, Owner: c.Owner, Type: c.Type, Flags: c.Flags, Size: c.Size}
			line += fileDetailText(&f)
			line += fmt.Sprintf("   by %d %s", c.PID, safe(orDash(c.Comm)))
			if c.Count > 1 {
				line += fmt.Sprintf(" ×%d", c.Count)
			}
			if c.Gone {
				line += " (gone)"
			}
			fmt.Fprintln(w, line)
		}
	}
}

// changes writes the changes member of the JSON document.
func (e *jsonEnc) changes(ch *Changes) {
	if ch.Empty() {
		return
	}
	e.key("changes")
	e.open('{')
	e.key("processes")
	e.int(int64(ch.Processes))
	e.key("counts")
	e.opCounts(ch.Counts)
	e.key("directories")
	e.open('[')
	for i := range ch.Dirs {
		d := &ch.Dirs[i]
		e.elem()
		e.open('{')
		e.key("dir")
		e.str(d.Dir)
		e.key("counts")
		e.opCounts(d.Counts)
		e.key("changes")
		e.open('[')
		for j := range d.Changes {
			c := &d.Changes[j]
			e.elem()
			e.open('{')
			e.key("op")
			e.str(c.Op)
			e.key("path")
			e.str(c.Path)
			e.optStr("from", c.From)
			f := File{Target: c.Target, Perm: c.Perm, Owner: c.Owner, Type: c.Type, Flags: c.Flags, Size: c.Size}
			e.fileDetails(&f)
			e.key("time")
			e.time(c.Time)
			if c.Count > 1 {
				e.key("last")
				e.time(c.Last)
				e.key("count")
				e.int(int64(c.Count))
			}
			e.key("pid")
			e.int(int64(c.PID))
			e.key("start")
			e.time(c.Start)
			e.key("comm")
			e.str(c.Comm)
			if c.Gone {
				e.key("gone")
				e.bool(true)
			}
			e.close('}')
		}
		e.close(']')
		e.close('}')
	}
	e.close(']')
	e.close('}')
}

func (e *jsonEnc) opCounts(counts []OpCount) {
	e.open('{')
	for _, c := range counts {
		e.key(c.Op)
		e.int(int64(c.N))
	}
	e.close('}')
}
