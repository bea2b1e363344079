package analyze

import (
	"cmp"
	"io"
	"slices"
	"strconv"
	"strings"
)

// PROVNamespace is the namespace of proctrail's names in [WritePROV]'s
// output, bound to the prefix "proctrail". It names kinds and attributes,
// not a document: nothing is served there, and it never changes.
const PROVNamespace = "https://github.com/proctrail/proctrail/ns#"

// WritePROV writes m as one W3C PROV-JSON document
// (https://www.w3.org/submissions/prov-json/), for provenance tools such
// as the Python prov library or ProvToolbox. Its "prefix" block binds
// "proctrail" to [PROVNamespace]; "prov" and "xsd" are predefined. Times
// are xsd:dateTime in UTC with nine fractional digits (TimeLayout).
//
// Records, and their ids:
//
//   - Each process is an activity "proctrail:process/PID-START" (START in
//     nanoseconds since the Unix epoch; "~2", "~3"… are appended in the
//     rare case of two processes with the same pid and start) with
//     prov:type proctrail:Process, prov:startTime, prov:endTime when it
//     ended, prov:label its comm, and the attributes proctrail:pid, ppid,
//     uid, comm, exe, argv, cwd (of its last exec), exit_code or signal,
//     core_dumped, before_capture, command and container, each as in the
//     JSON output and only when known or set. argv is one string, the
//     JSON text of the array: a PROV attribute's values are a set, with
//     no order and no repeats.
//   - Each path an access below names is one entity "proctrail:file/PATH"
//     ("proctrail:relfile/PATH" for a path left relative), with the
//     path's bytes other than letters, digits, "-", "_", ".", "~" and "/"
//     (and a final ".") percent-encoded, so that any name is a valid
//     qualified name and distinct paths are distinct entities. prov:type
//     is proctrail:Executable for a path that was executed, else
//     proctrail:File; prov:label and proctrail:path hold the path.
//   - Each known uid is an agent "proctrail:user/UID" with prov:type
//     proctrail:User and proctrail:uid, and each process with a known uid
//     is wasAssociatedWith it (prov:role proctrail:uid, the real uid).
//   - Each child is wasInformedBy its parent (its creator).
//   - Each signal a process sent, and each ptrace attach it made, is an
//     entity "proctrail:signal/PID-START-N" (the sender's activity's
//     name, N its order among them) with prov:type proctrail:Signal
//     (proctrail:signal, its number; prov:label its name) or
//     proctrail:Ptrace (proctrail:request; prov:label "ptrace REQUEST"),
//     proctrail:op (kill, tkill, tgkill, ptrace), proctrail:pid (the pid
//     named) and proctrail:error when it failed. The sender
//     wasGeneratedBy… generated it (prov:role proctrail:OP) and the
//     process it reached, when in the model, used it (prov:role
//     proctrail:signal), both at its time: a message between two
//     activities, as PROV has them.
//   - An exec of a program that ran from memory (Exec.Fileless) has
//     proctrail:fileless on the used of its executable.
//   - Each network endpoint a process talked to, listened on or bound is
//     one entity "proctrail:endpoint/FAMILY/ENDPOINT" (ENDPOINT as the
//     tree shows it: "203.0.113.7:443", "[::1]:53", a unix path, "port N"
//     for netlink; escaped as paths are), with prov:type
//     proctrail:Endpoint, prov:label "FAMILY ENDPOINT", proctrail:family,
//     and proctrail:address and proctrail:port, or proctrail:path.
//   - Containers are attributes: proctrail:container on the activities of
//     the processes that ran in one, not bundles, so that a tree crossing
//     into a container stays one graph.
//
// Accesses become relations between the process and the path's entity,
// timed by the syscall (an open's open time, with proctrail:close for its
// close time and proctrail:mode for r, w or rw):
//
//	exec (Process.Execs)            used, prov:role proctrail:executable,
//	                                with proctrail:argv and proctrail:cwd
//	exec (Files: the path named,    used, prov:role proctrail:exec; left
//	  a symlink, /proc/self/exe)    out when it is an exe of the process
//	open r, open without a mode     used
//	open w                          wasGeneratedBy
//	open rw                         used and wasGeneratedBy
//	create, mkdir, mknod, symlink,  wasGeneratedBy, with the access's
//	  link, chmod, chown, utime,    details as proctrail:target, perm,
//	  truncate, setxattr,           setuid, setgid, owner, type, flags
//	  removexattr, mount            and size
//	rename                          wasInvalidatedBy (old path),
//	                                wasGeneratedBy (new path), and
//	                                wasDerivedFrom (new from old)
//	unlink, rmdir, umount           wasInvalidatedBy
//	chdir, pivot_root, setns and    used
//	  any other operation
//	failed (Files[].Error)          left out: nothing was used
//	connect, sendto, sendmsg,       used (the endpoint; an accept's is the
//	  accept, listen (Net)            peer), with proctrail:proto
//	bind (Net)                      wasGeneratedBy (the local endpoint)
//	failed (Net[].Error), socket,   left out
//	  entries without an address
//
// Each used, wasGeneratedBy and wasInvalidatedBy has prov:role
// proctrail:OP, the access's op ("executable" for an exec's program).
// Relation ids are blank nodes numbered in the order written, per kind:
// "_:u1" (used), "_:g1" (wasGeneratedBy), "_:x1" (wasInvalidatedBy),
// "_:d1" (wasDerivedFrom), "_:i1" (wasInformedBy), "_:a1"
// (wasAssociatedWith).
//
// Activities and relations follow the forest depth first, children in the
// model's order; entities are sorted by path and agents by uid. Every
// section is present, empty or not. The same model always gives the same
// bytes, and any name gives valid JSON: strings are escaped as WriteJSON
// escapes them, with U+FFFD for bytes that are not UTF-8. WritePROV only
// reads m; unlike WriteJSON it holds the relations of the whole model
// before writing them (about 100 bytes per file access).
func WritePROV(w io.Writer, m *Model) error {
	d := newProvWriter(m)
	e := newJSONEnc(w)
	e.open('{')
	e.key("prefix")
	e.open('{')
	e.key("proctrail")
	e.str(PROVNamespace)
	e.close('}')
	d.activities(e)
	d.entities(e)
	d.agents(e)
	d.accesses(e)
	d.derivations(e)
	d.informs(e)
	d.associations(e)
	return e.end()
}

// provWriter is what WritePROV writes: the processes in preorder with their
// ids, the relations to paths, the paths and the users.
type provWriter struct {
	procs   []*Process
	ids     []string
	edges   []provEdge
	signals []provSignal
	paths   []string        // sorted
	exec    map[string]bool // the paths executed
	uids    []int64         // sorted, once each
	// endpoints are the network endpoints the edges name, sorted by id.
	endpoints []*provEndpoint
}

// provEndpoint is a network endpoint's entity.
type provEndpoint struct {
	id, family, addr, path, label string
	port                          int
}

func newProvWriter(m *Model) *provWriter {
	d := &provWriter{procs: preorder(m.Processes), exec: map[string]bool{}}
	d.ids = provProcessIDs(d.procs)
	eps := map[string]*provEndpoint{}
	byIdentity := make(map[[2]int64]int, len(d.procs))
	for i, p := range d.procs {
		byIdentity[[2]int64{int64(p.PID), p.Start}] = i
	}
	for i, p := range d.procs {
		d.edges = appendProvEdges(d.edges, i, p)
		d.edges = appendProvNetEdges(d.edges, i, p, eps)
		for j := range p.Signals {
			sg := &p.Signals[j]
			ps := provSignal{id: "proctrail:signal/" + strings.TrimPrefix(d.ids[i], "proctrail:process/") + "-" + strconv.Itoa(j+1), s: sg}
			d.signals = append(d.signals, ps)
			d.edges = append(d.edges, provEdge{kind: provGenerated, proc: i, entity: ps.id, role: sg.Op, time: sg.Time})
			if t, ok := byIdentity[[2]int64{int64(sg.TargetPID), sg.TargetStart}]; ok && sg.TargetPID != 0 {
				d.edges = append(d.edges, provEdge{kind: provUsed, proc: t, entity: ps.id, role: "signal", time: sg.Time})
			}
		}
	}
	for _, ep := range eps {
		d.endpoints = append(d.endpoints, ep)
	}
	slices.SortFunc(d.endpoints, func(a, b *provEndpoint) int { return strings.Compare(a.id, b.id) })
	// Entities: every path an edge names, executed or not.
	for _, ed := range d.edges {
		if ed.entity != "" || ed.endpoint != nil {
			continue
		}
		d.exec[ed.path] = d.exec[ed.path] || ed.role == "executable" || ed.role == "exec"
	}
	d.paths = make([]string, 0, len(d.exec))
	for s := range d.exec {
		d.paths = append(d.paths, s)
	}
	slices.Sort(d.paths)
	for _, p := range d.procs {
		if p.UID >= 0 {
			d.uids = append(d.uids, p.UID)
		}
	}
	slices.Sort(d.uids)
	d.uids = slices.Compact(d.uids)
	return d
}

func (d *provWriter) activities(e *jsonEnc) {
	e.key("activity")
	e.open('{')
	for i, p := range d.procs {
		e.provRecord(d.ids[i])
		e.provActivity(p)
		e.close('}')
	}
	e.close('}')
}

func (d *provWriter) entities(e *jsonEnc) {
	e.key("entity")
	e.open('{')
	for _, s := range d.paths {
		typ := "proctrail:File"
		if d.exec[s] {
			typ = "proctrail:Executable"
		}
		e.provNode(provFileID(s), typ, s)
		e.key("proctrail:path")
		e.str(s)
		e.close('}')
	}
	for _, ep := range d.endpoints {
		e.provNode(ep.id, "proctrail:Endpoint", ep.label)
		e.key("proctrail:family")
		e.str(ep.family)
		if ep.addr != "" {
			e.key("proctrail:address")
			e.str(ep.addr)
		}
		if ep.addr != "" || ep.port != 0 {
			e.key("proctrail:port")
			e.int(int64(ep.port))
		}
		if ep.path != "" {
			e.key("proctrail:path")
			e.str(ep.path)
		}
		e.close('}')
	}
	for _, ps := range d.signals {
		sg := ps.s
		if sg.Op == "ptrace" {
			e.provNode(ps.id, "proctrail:Ptrace", "ptrace "+sg.Request)
			e.key("proctrail:request")
			e.str(sg.Request)
		} else {
			e.provNode(ps.id, "proctrail:Signal", SignalName(sg.Signal))
			e.key("proctrail:signal")
			e.int(int64(sg.Signal))
		}
		e.key("proctrail:op")
		e.str(sg.Op)
		e.key("proctrail:pid")
		e.int(int64(sg.PID))
		if sg.Error != "" {
			e.key("proctrail:error")
			e.str(sg.Error)
		}
		e.close('}')
	}
	e.close('}')
}

// provSignal is a signal or ptrace attach as an entity.
type provSignal struct {
	id string
	s  *Signal
}

func (d *provWriter) agents(e *jsonEnc) {
	e.key("agent")
	e.open('{')
	for _, u := range d.uids {
		e.provNode(provUserID(u), "proctrail:User", "uid "+strconv.FormatInt(u, 10))
		e.key("proctrail:uid")
		e.int(u)
		e.close('}')
	}
	e.close('}')
}

// accesses writes used, wasGeneratedBy and wasInvalidatedBy.
func (d *provWriter) accesses(e *jsonEnc) {
	for _, k := range []struct {
		name, blank, ent, act string
		kind                  provKind
	}{
		{"used", "_:u", "prov:entity", "prov:activity", provUsed},
		{"wasGeneratedBy", "_:g", "prov:entity", "prov:activity", provGenerated},
		{"wasInvalidatedBy", "_:x", "prov:entity", "prov:activity", provInvalidated},
	} {
		e.key(k.name)
		e.open('{')
		n := 0
		for i := range d.edges {
			ed := &d.edges[i]
			if ed.kind != k.kind {
				continue
			}
			n++
			e.provRecord(k.blank + strconv.Itoa(n))
			// PROV-JSON orders neither; PROV-N puts the activity first in
			// used and the entity first in the others.
			ent := ed.entity
			switch {
			case ed.endpoint != nil:
				ent = ed.endpoint.id
			case ent == "":
				ent = provFileID(ed.path)
			}
			if k.kind == provUsed {
				e.key(k.act)
				e.str(d.ids[ed.proc])
				e.key(k.ent)
				e.str(ent)
			} else {
				e.key(k.ent)
				e.str(ent)
				e.key(k.act)
				e.str(d.ids[ed.proc])
			}
			e.provEdgeAttributes(ed)
			e.close('}')
		}
		e.close('}')
	}
}

// provEdgeAttributes writes the members of a relation after its ends.
func (e *jsonEnc) provEdgeAttributes(ed *provEdge) {
	if ed.time != 0 {
		e.key("prov:time")
		e.time(ed.time)
	}
	e.key("prov:role")
	e.provQName("proctrail:" + provEscape(ed.role))
	if ed.mode != "" {
		e.key("proctrail:mode")
		e.str(ed.mode)
	}
	if ed.proto != "" {
		e.key("proctrail:proto")
		e.str(ed.proto)
	}
	if ed.close != 0 && ed.close != ed.time {
		e.key("proctrail:close")
		e.provTime(ed.close)
	}
	if ed.exec != nil {
		e.key("proctrail:argv")
		e.provArgv(ed.exec.Argv)
		if ed.exec.Cwd != "" {
			e.key("proctrail:cwd")
			e.str(ed.exec.Cwd)
		}
		if ed.exec.Fileless {
			e.key("proctrail:fileless")
			e.bool(true)
		}
	}
	if f := ed.file; f != nil && ed.from == "" {
		for _, a := range [...]struct{ name, v string }{{"target", f.Target}, {"perm", f.Perm}, {"owner", f.Owner},
			{"type", f.Type}, {"flags", f.Flags}, {"size", f.Size}} {
			if a.v != "" {
				e.key("proctrail:" + a.name)
				e.str(a.v)
			}
		}
		for _, a := range [...]struct {
			name string
			v    bool
		}{{"setuid", f.Setuid()}, {"setgid", f.Setgid()}} {
			if a.v {
				e.key("proctrail:" + a.name)
				e.bool(true)
			}
		}
	}
}

// derivations writes wasDerivedFrom: a rename's new path from its old.
func (d *provWriter) derivations(e *jsonEnc) {
	e.key("wasDerivedFrom")
	e.open('{')
	n := 0
	for i := range d.edges {
		ed := &d.edges[i]
		if ed.kind != provGenerated || ed.from == "" {
			continue
		}
		n++
		e.provRecord("_:d" + strconv.Itoa(n))
		e.key("prov:generatedEntity")
		e.str(provFileID(ed.path))
		e.key("prov:usedEntity")
		e.str(provFileID(ed.from))
		e.key("prov:activity")
		e.str(d.ids[ed.proc])
		e.close('}')
	}
	e.close('}')
}

// informs writes wasInformedBy: a child by its parent.
func (d *provWriter) informs(e *jsonEnc) {
	e.key("wasInformedBy")
	e.open('{')
	n := 0
	idOf := make(map[*Process]string, len(d.procs))
	for i, p := range d.procs {
		idOf[p] = d.ids[i]
	}
	for i, p := range d.procs {
		for _, ch := range p.Children {
			n++
			e.provRecord("_:i" + strconv.Itoa(n))
			e.key("prov:informed")
			e.str(idOf[ch])
			e.key("prov:informant")
			e.str(d.ids[i])
			e.close('}')
		}
	}
	e.close('}')
}

// associations writes wasAssociatedWith: a process with its user.
func (d *provWriter) associations(e *jsonEnc) {
	e.key("wasAssociatedWith")
	e.open('{')
	n := 0
	for i, p := range d.procs {
		if p.UID < 0 {
			continue
		}
		n++
		e.provRecord("_:a" + strconv.Itoa(n))
		e.key("prov:activity")
		e.str(d.ids[i])
		e.key("prov:agent")
		e.str(provUserID(p.UID))
		e.key("prov:role")
		e.provQName("proctrail:uid")
		e.close('}')
	}
	e.close('}')
}

// provProcessIDs returns the activity id of each process.
func provProcessIDs(procs []*Process) []string {
	ids := make([]string, len(procs))
	seen := make(map[string]bool, len(procs))
	for i, p := range procs {
		base := "proctrail:process/" + strconv.Itoa(int(p.PID)) + "-" + strconv.FormatInt(p.Start, 10)
		id := base
		for n := 2; seen[id]; n++ {
			id = base + "~" + strconv.Itoa(n)
		}
		seen[id] = true
		ids[i] = id
	}
	return ids
}

func provUserID(uid int64) string { return "proctrail:user/" + strconv.FormatInt(uid, 10) }

// provFileID returns the entity id of a path.
func provFileID(path string) string {
	if strings.HasPrefix(path, "/") {
		return "proctrail:file" + provEscape(path)
	}
	return "proctrail:relfile/" + provEscape(path)
}

// provEscape percent-encodes s into the local part of a qualified name
// that PROV-N, PROV-XML and PROV-O all take: letters, digits and "-_.~/"
// stay, but not a final "." (PROV-N's grammar forbids it). Any byte
// string has its own encoding.
func provEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		keep := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '~' || c == '/' || c == '.' && i < len(s)-1
		if keep {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+16), s[:i]...)
		}
		b = append(b, '%', upperHex[c>>4], upperHex[c&0xF])
	}
	if b == nil {
		return s
	}
	return string(b)
}

const upperHex = "0123456789ABCDEF"

type provKind uint8

const (
	provUsed provKind = iota
	provGenerated
	provInvalidated
)

// provEdge is one relation between a process and a path. A generation
// with from set is a rename's, which also makes a wasDerivedFrom.
type provEdge struct {
	kind        provKind
	proc        int // index into the preorder
	path, from  string
	role, mode  string
	time, close int64
	exec        *Exec  // set for the used of an exec's executable
	file        *File  // the access, for its details
	entity      string // the entity when it is not a path's: a signal's
	// endpoint is set for a network entry's relation: its entity, not
	// path's.
	endpoint *provEndpoint
	proto    string
}

// provGenerating are the operations other than open and rename whose
// paths are new or changed afterwards.
var provGenerating = map[string]bool{
	"create": true, "mkdir": true, "mknod": true, "symlink": true, "link": true,
	"chmod": true, "chown": true, "utime": true, "truncate": true,
	"setxattr": true, "removexattr": true, "mount": true,
}

// provInvalidating are the operations whose paths are gone afterwards.
var provInvalidating = map[string]bool{"unlink": true, "rmdir": true, "umount": true}

// appendProvEdges appends the relations of process i, p: its execs, then
// its file accesses, in the model's order.
func appendProvEdges(dst []provEdge, i int, p *Process) []provEdge {
	for j := range p.Execs {
		x := &p.Execs[j]
		if x.Exe != "" {
			dst = append(dst, provEdge{kind: provUsed, proc: i, path: x.Exe, role: "executable", time: x.Time, exec: x})
		}
	}
	for j := range p.Files {
		f := &p.Files[j]
		if f.Error != "" || f.Path == "" {
			continue
		}
		ed := provEdge{proc: i, path: f.Path, role: f.Op, time: f.Open, file: f}
		if f.Op == "open" || f.Op == "create" {
			ed.mode, ed.close = f.Mode, f.Close
		}
		switch {
		case f.Op == "exec":
			if slices.ContainsFunc(p.Execs, func(x Exec) bool { return x.Exe == f.Path }) {
				continue
			}
			dst = append(dst, ed)
		case f.Op == "open":
			if f.Mode != "w" {
				dst = append(dst, ed)
			}
			if f.Mode == "w" || f.Mode == "rw" {
				ed.kind = provGenerated
				dst = append(dst, ed)
			}
		case provGenerating[f.Op]:
			ed.kind = provGenerated
			dst = append(dst, ed)
		case f.Op == "rename":
			ed.kind = provInvalidated
			dst = append(dst, ed)
			if f.To != "" {
				dst = append(dst, provEdge{kind: provGenerated, proc: i, path: f.To, from: f.Path, role: f.Op, time: f.Open})
			}
		case provInvalidating[f.Op]:
			ed.kind = provInvalidated
			dst = append(dst, ed)
		default:
			dst = append(dst, ed)
		}
	}
	return dst
}

// appendProvNetEdges appends the relations of process i, p, to the
// endpoints of its network entries, adding the endpoints to eps: bind
// generates the local endpoint; connect, sendto, sendmsg, accept (the
// peer) and listen use theirs. Failed calls, and entries without an
// address, are left out.
func appendProvNetEdges(dst []provEdge, i int, p *Process, eps map[string]*provEndpoint) []provEdge {
	for j := range p.Net {
		n := &p.Net[j]
		ep := NetEndpoint(n)
		if n.Error != "" || ep == "" || n.Op == "socket" {
			continue
		}
		id := "proctrail:endpoint/" + provEscape(n.Family)
		if !strings.HasPrefix(ep, "/") {
			id += "/" // a path has its own, as in a file's id
		}
		id += provEscape(ep)
		end := eps[id]
		if end == nil {
			end = &provEndpoint{id: id, family: n.Family, addr: n.Addr, port: n.Port, path: n.Path, label: n.Family + " " + ep}
			eps[id] = end
		}
		ed := provEdge{proc: i, role: n.Op, time: n.Time, endpoint: end, proto: n.Proto}
		if n.Op == "bind" {
			ed.kind = provGenerated
		}
		dst = append(dst, ed)
	}
	return dst
}

// provRecord starts the record id: {.
func (e *jsonEnc) provRecord(id string) {
	e.elem()
	e.str(id)
	e.buf = append(e.buf, ": "...)
	e.open('{')
}

// provNode starts the record of an entity or agent with its type and
// label.
func (e *jsonEnc) provNode(id, typ, label string) {
	e.provRecord(id)
	e.key("prov:type")
	e.provQName(typ)
	e.key("prov:label")
	e.str(label)
}

// provActivity writes the members of p's activity.
func (e *jsonEnc) provActivity(p *Process) {
	if p.Start != 0 {
		e.key("prov:startTime")
		e.time(p.Start)
	}
	if p.End != 0 {
		e.key("prov:endTime")
		e.time(p.End)
	}
	e.key("prov:type")
	e.provQName("proctrail:Process")
	if label := cmp.Or(p.Comm, p.Exe); label != "" {
		e.key("prov:label")
		e.str(label)
	}
	e.key("proctrail:pid")
	e.int(int64(p.PID))
	e.key("proctrail:ppid")
	e.int(int64(p.PPID))
	if p.UID >= 0 {
		e.key("proctrail:uid")
		e.int(p.UID)
	}
	for _, a := range [...]struct{ name, v string }{{"comm", p.Comm}, {"exe", p.Exe}} {
		if a.v != "" {
			e.key("proctrail:" + a.name)
			e.str(a.v)
		}
	}
	if len(p.Argv) > 0 {
		e.key("proctrail:argv")
		e.provArgv(p.Argv)
	}
	if p.Cwd != "" {
		e.key("proctrail:cwd")
		e.str(p.Cwd)
	}
	switch {
	case p.Exited && p.Signal != 0:
		e.key("proctrail:signal")
		e.int(int64(p.Signal))
	case p.Exited:
		e.key("proctrail:exit_code")
		e.int(int64(p.ExitCode))
	}
	for _, a := range [...]struct {
		name string
		v    bool
	}{{"core_dumped", p.CoreDumped}, {"before_capture", p.BeforeCapture}, {"command", p.Command}} {
		if a.v {
			e.key("proctrail:" + a.name)
			e.bool(true)
		}
	}
	if p.Container != "" {
		e.key("proctrail:container")
		e.str(p.Container)
	}
}

// provQName writes a qualified name as a PROV-JSON typed value.
func (e *jsonEnc) provQName(q string) {
	e.open('{')
	e.key("$")
	e.str(q)
	e.key("type")
	e.str("prov:QUALIFIED_NAME")
	e.close('}')
}

// provTime writes t as a typed xsd:dateTime value.
func (e *jsonEnc) provTime(t int64) {
	e.open('{')
	e.key("$")
	e.time(t)
	e.key("type")
	e.str("xsd:dateTime")
	e.close('}')
}

// provArgv writes argv as a string holding its compact JSON text.
func (e *jsonEnc) provArgv(argv []string) {
	b := []byte{'['}
	for i, a := range argv {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	e.str(string(append(b, ']')))
}
