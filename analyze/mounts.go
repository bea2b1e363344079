package analyze

import (
	"cmp"
	"path"
	"slices"
	"strings"

	"proctrail/formats"
)

// Host paths. A process in a container names its files as its mount
// namespace shows them; the analyst needs where they are on the host too.
// The recorder stores each mount namespace's table (/proc/PID/mountinfo)
// when a process first shows it, and again after a call that may change
// it (formats.ReasonMounts). A path is mapped through the table of the
// process's namespace in effect when it was used: its mount (the longest
// mount point that holds it) gives the device and the path within that
// file system; the host's table (the first the capture carries: the
// snapshot's first process's) gives where that part of the device is
// mounted on the host. An overlay root maps to its merged directory, a
// volume to its bind mount's source; a file system with no mount on the
// host (proc, sysfs, a tmpfs of the container's own, devpts) has no host
// path, and its type is said instead. The process that moved its root
// (pivot_root) or entered the namespace (setns) is mapped from that call
// on, in the order of its accesses: audit's times are milliseconds, too
// coarse to tell what came before. Without mount tables (an auditd log),
// a process under a pivot_root has that root put before its paths, as
// the seed did, but for the file systems runtimes mount themselves.

// mountEntry is one line of a mountinfo table.
type mountEntry struct {
	dev    string // "major:minor"
	root   string // the mount's root within its file system
	point  string // where it is mounted, as the namespace's processes see it
	fstype string
}

// mountVersion is a namespace's table from a time on.
type mountVersion struct {
	from   int64
	mounts []mountEntry
}

// Bounds of the mount tables kept: namespaces, versions of one, lines
// of one table.
const (
	maxMountNamespaces = 4096
	maxMountVersions   = 64
	maxMountLines      = 4096
	// maxMountEntries bounds the lines of all tables kept (a hostile
	// capture could send a million): about 100 bytes each.
	maxMountEntries = 1 << 18
)

// mountState is the builder's view of the capture's mount tables.
type mountState struct {
	tables map[uint64][]mountVersion
	host   uint64 // the namespace of the first table: the host's
	// calls is when each pid last made a call that changes a mount
	// table (MountNSSince).
	calls map[int32]int64
	// pivots is when the table read after a pivot_root in each
	// namespace came: the tables before are of the runtime's setup, not
	// of the container's root.
	pivots map[uint64]int64
	// containers is the namespace of each container, as procfs found a
	// process of its cgroup in one other than the host's.
	containers map[string]uint64
	// entries counts the lines of the tables kept.
	entries int
}

// container notes that a process of container id was in namespace ns.
func (m *mountState) container(id string, ns uint64) {
	if id == "" || ns == 0 || ns == m.host {
		return
	}
	if m.containers == nil {
		m.containers = map[string]uint64{}
	}
	if _, ok := m.containers[id]; !ok && len(m.containers) < maxMountNamespaces {
		m.containers[id] = ns
	}
}

// changesMounts reports whether syscall sc may change its caller's
// mount table (the recorder reads it again after each).
func changesMounts(sc string) bool {
	switch sc {
	case "mount", "umount2", "umount", "move_mount", "pivot_root", "setns", "unshare":
		return true
	}
	return false
}

// mountCall notes that the process of pid called mount, umount2,
// move_mount, pivot_root, setns or unshare at t.
func (m *mountState) mountCall(pid int32, t int64) {
	if m.calls == nil {
		m.calls = map[int32]int64{}
	}
	if len(m.calls) >= maxMountNamespaces {
		clear(m.calls)
	}
	m.calls[pid] = t
}

// record takes the mount table of a procfs record, if it has one, and
// returns the record's mnt namespace (0 if none).
func (m *mountState) record(r *formats.ProcRecord, t int64) uint64 {
	ns := r.MountNS()
	if ns == 0 {
		return 0
	}
	if r.Mountinfo == "" {
		return ns
	}
	if r.Kind == formats.ReasonMounts && r.After == "pivot_root" {
		if m.pivots == nil {
			m.pivots = map[uint64]int64{}
		}
		if _, ok := m.pivots[ns]; !ok && len(m.pivots) < maxMountNamespaces {
			m.pivots[ns] = t
		}
	}
	if m.host == 0 {
		// The recorder's first table is the host's: its snapshot's
		// first process, or what a cut or a rotated file carries first.
		m.host = ns
	}
	if m.tables == nil {
		m.tables = map[uint64][]mountVersion{}
	}
	vs, ok := m.tables[ns]
	if !ok && len(m.tables) >= maxMountNamespaces {
		return ns
	}
	v := mountVersion{from: t, mounts: parseMountinfo(r.Mountinfo)}
	if m.entries+len(v.mounts) > maxMountEntries {
		return ns // beyond the bound: the tables kept go on serving
	}
	m.entries += len(v.mounts)
	if len(vs) >= maxMountVersions {
		m.entries -= len(vs[len(vs)-1].mounts)
		vs[len(vs)-1] = v // the first and the latest are kept
	} else {
		vs = append(vs, v)
	}
	m.tables[ns] = vs
	return ns
}

// at returns ns's table in effect at t: the latest read at t or before,
// else the first; only those read after after count (a pivot_root's
// time), and there is none when none was.
func (m *mountState) at(ns uint64, t, after int64) []mountEntry {
	var best *mountVersion
	for i, v := range m.tables[ns] {
		if v.from < after {
			continue
		}
		if best == nil || (v.from <= t && v.from >= best.from) {
			best = &m.tables[ns][i]
		}
	}
	if best == nil {
		return nil
	}
	return best.mounts
}

// parseMountinfo reads a mountinfo table: "id parent major:minor root
// point options [optional…] - fstype source superoptions" a line.
func parseMountinfo(s string) []mountEntry {
	var out []mountEntry
	for line := range strings.Lines(s) {
		if len(out) >= maxMountLines {
			break
		}
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 6 || sep < 6 || sep+1 >= len(f) {
			continue
		}
		out = append(out, mountEntry{dev: f[2], root: unescapeMount(f[3]), point: unescapeMount(f[4]), fstype: f[sep+1]})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, \011,
// \012, \134).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return dir == "/" || p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

// mountOf is the mount of table that holds p: the longest mount point
// that does, the last mounted of equal ones (it hides the others).
func mountOf(table []mountEntry, p string) (mountEntry, bool) {
	best, found := mountEntry{}, false
	for _, m := range table {
		if under(p, m.point) && (!found || len(m.point) >= len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

// hostPath maps p, as a process whose namespace's table is table saw it,
// to its path on the host, whose table is host. It returns "" and the
// file system's type when no mount of the host shows that file.
func hostPath(table, host []mountEntry, p string) (string, string) {
	m, ok := mountOf(table, p)
	if !ok {
		return "", ""
	}
	inFS := path.Join(m.root, strings.TrimPrefix(p, strings.TrimSuffix(m.point, "/")))
	best, found := mountEntry{}, false
	for _, h := range host {
		if h.dev != m.dev || !under(inFS, h.root) {
			continue
		}
		if !found || len(h.root) > len(best.root) || (len(h.root) == len(best.root) && len(h.point) < len(best.point)) {
			best, found = h, true
		}
	}
	if !found {
		return "", m.fstype
	}
	return path.Join(best.point, strings.TrimPrefix(inFS, strings.TrimSuffix(best.root, "/"))), ""
}

// runtimeMounts are the file systems runc, docker and podman mount in
// every container by default, which no host path shows: without a mount
// table, a path under one of these keeps its name.
var runtimeMounts = []mountEntry{
	{point: "/proc", fstype: "proc"},
	{point: "/sys", fstype: "sysfs"},
	{point: "/dev/pts", fstype: "devpts"},
	{point: "/dev/shm", fstype: "tmpfs"},
	{point: "/dev/mqueue", fstype: "mqueue"},
	{point: "/dev", fstype: "tmpfs"},
}

// pathMap maps the paths of one process's accesses, in their order.
type pathMap struct {
	m *mountState
	// ns is the process's namespace from since on, before its
	// namespace before (its parent's); 0 or the host's: no mapping.
	ns, before uint64
	since      int64
	// waitFor is the op of the access after which the process is in
	// its namespace, its root moved: its own pivot_root or setns.
	// Accesses before it, and it, keep their paths.
	waitFor string
	// rootfs, without tables: the pivot_root the process is under, and
	// binds the bind mounts made under it (the volumes), in the order
	// made.
	rootfs string
	binds  []bindMount
}

// maxAncestors bounds the walks up a process's ancestors.
const maxAncestors = 4096

// bindMount is a bind mount a process made: source on target, both as
// it named them.
type bindMount struct{ source, target string }

// maxBinds bounds the bind mounts kept.
const maxBinds = 4096

// bindMounted notes a bind mount (audit alone: without mount tables, a
// container's volumes are found by the runtime's bind mounts into its
// rootfs).
func (b *builder) bindMounted(source, target string) {
	if !b.auditOnly || len(b.binds) >= maxBinds || !strings.HasPrefix(source, "/") || !strings.HasPrefix(target, "/") || source == target {
		return
	}
	b.binds = append(b.binds, bindMount{source, target})
}

// rootfsOf is the root that process r is under, without mount tables:
// the pivot_root of the nearest of r and its ancestors that made one,
// following a setns into another's mount namespace (runc exec). The
// output phase asks it of every process's parent: each walk memoizes its
// answer for every process it went through, so that a State comes back
// from the spool once, not once for each of its descendants (1.8 ms of
// the 11 of the imported log's output phase). A walk that comes back to
// a process of its own (a loop of setns) or goes beyond maxAncestors
// finds no root.
func (b *builder) rootfsOf(r ref) string {
	m := &b.memos
	if m.rootfs == nil {
		m.rootfs = make([]rootfsMemo, b.procs.Len())
	}
	walked := m.walked[:0]
	root := ""
	for n := 0; !r.None() && n < maxAncestors; n++ {
		rm := &m.rootfs[r.Index()]
		if rm.state == rootfsKnown {
			root = rm.root
			break
		}
		if rm.state == rootfsWalking {
			break
		}
		rm.state = rootfsWalking
		walked = append(walked, r)
		p := b.procs.Get(r)
		if p.PivotRoot != "" {
			root = p.PivotRoot
			break
		}
		if !p.JoinedMountNS.None() {
			r = p.JoinedMountNS
			continue
		}
		r = p.Parent
	}
	for _, q := range walked {
		m.rootfs[q.Index()] = rootfsMemo{root: root, state: rootfsKnown}
	}
	m.walked = walked[:0]
	return root
}

// rootfsMemo is rootfsOf's memo of one process.
type rootfsMemo struct {
	root  string
	state uint8 // rootfsUnknown, rootfsWalking, rootfsKnown
}

const (
	rootfsUnknown = iota
	rootfsWalking
	rootfsKnown
)

// pivotRootOf is the new root of the pivot_root of the process r names,
// "" when it made none. The output phase's memo of the processes that
// made none spares bringing their States back from the spool.
func (b *builder) pivotRootOf(r ref) string {
	m := &b.memos
	if m.pivots == nil {
		m.pivots = make([]pivotMemo, b.procs.Len())
	}
	if m.pivots[r.Index()] == pivotNone {
		return ""
	}
	root := b.procs.Get(r).PivotRoot
	if root == "" {
		m.pivots[r.Index()] = pivotNone
	}
	return root
}

// pathMapOf is the mapping of the paths of process r.
func (b *builder) pathMapOf(r ref) *pathMap {
	pm := &pathMap{m: &b.mounts}
	p := b.procs.Get(r)
	if p.PivotRoot != "" {
		pm.waitFor = "pivot_root"
	} else {
		for q, n := p.Parent, 0; !q.None() && n < maxAncestors; n++ {
			if root := b.pivotRootOf(q); root != "" {
				pm.rootfs = root
				break
			}
			q = b.procs.Stub(q).Parent
		}
	}
	if len(b.mounts.tables) == 0 {
		switch {
		case p.PivotRoot != "":
			pm.rootfs = p.PivotRoot
		case !p.JoinedMountNS.None():
			// runc exec's: under the root of the process whose mount
			// namespace it joined, from that setns on.
			pm.waitFor, pm.rootfs = "setns", b.rootfsOf(p.JoinedMountNS)
		default:
			pm.rootfs = b.rootfsOf(p.Parent)
		}
		if pm.rootfs != "" {
			for _, bd := range b.binds {
				if under(bd.target, pm.rootfs) && bd.target != pm.rootfs {
					pm.binds = append(pm.binds, bd)
				}
			}
		}
		return pm
	}
	pm.rootfs = ""
	if p.MountNS == 0 {
		pm.ns = b.mountNSOf(r)
	} else {
		pm.ns, pm.since = p.MountNS, p.MountNSSince
		if pm.since != 0 {
			pm.before = b.mountNSOf(p.Parent)
		}
	}
	if !p.JoinedMountNS.None() && pm.waitFor == "" {
		pm.waitFor, pm.before, pm.since = "setns", 0, 0
	}
	if (pm.ns == 0 || pm.ns == b.mounts.host) && pm.waitFor == "" && pm.since == 0 {
		// No namespace of its own or its ancestors' but the host's, and
		// in a container by its cgroup: runc exec's process, made by
		// the one that joined the container (CLONE_PARENT names
		// another parent), and gone before procfs could read it.
		if ns := b.mounts.containers[b.containerOf(r)]; ns != 0 {
			pm.ns = ns
		}
	}
	return pm
}

// mountNSOf is the namespace of process r as procfs read it, else that
// of the process whose namespace it joined with setns, else its
// parent's.
func (b *builder) mountNSOf(r ref) uint64 {
	for n := 0; !r.None() && n < maxAncestors; n++ {
		p := b.procs.Get(r)
		if p.MountNS != 0 {
			return p.MountNS
		}
		if !p.JoinedMountNS.None() {
			r = p.JoinedMountNS // it entered that one's by setns
			continue
		}
		r = p.Parent
	}
	return 0
}

// apply sets f's host path and the path its process saw. It is called
// on the process's accesses in order.
func (pm *pathMap) apply(f *File) {
	if pm.waitFor != "" {
		if f.Op == pm.waitFor && (f.Op != "setns" || strings.HasSuffix(f.Path, "/ns/mnt")) {
			pm.waitFor = ""
		}
		return
	}
	if pm.ns == 0 && pm.before == 0 && pm.rootfs == "" {
		return
	}
	var fs string
	f.Path, f.ContainerPath, f.Filesystem = pm.one(f.Path, f.Open)
	if f.To != "" {
		f.To, f.ToContainerPath, fs = pm.one(f.To, f.Open)
		f.Filesystem = cmp.Or(f.Filesystem, fs)
	}
}

// one maps p, used at t: the host path (p when there is none), the path
// the process saw when that differs, and the file system of a path with
// no host path.
func (pm *pathMap) one(p string, t int64) (host, seen, fs string) {
	if !strings.HasPrefix(p, "/") {
		return p, "", ""
	}
	if pm.rootfs != "" {
		for _, v := range runtimeMounts {
			if under(p, v.point) {
				return p, "", v.fstype
			}
		}
		h := path.Join(pm.rootfs, p)
		for i := len(pm.binds) - 1; i >= 0; i-- {
			// The last bind mount on a point is the one in effect.
			if bd := pm.binds[i]; under(h, bd.target) {
				return path.Join(bd.source, strings.TrimPrefix(h, bd.target)), p, ""
			}
		}
		return h, p, ""
	}
	ns := pm.ns
	if t < pm.since {
		ns = pm.before
	}
	m := pm.m
	if ns == 0 || ns == m.host {
		return p, "", ""
	}
	table, hostTable := m.at(ns, t, m.pivots[ns]), m.at(m.host, t, 0)
	if table == nil || hostTable == nil {
		return p, "", ""
	}
	h, fs := hostPath(table, hostTable, p)
	if h == "" || h == p {
		return p, "", fs
	}
	return h, p, ""
}
