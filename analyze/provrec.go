package analyze

import (
	"cmp"
	"iter"
	"slices"
	"strings"
)

// PROV's relations and records: what the accesses of a process become
// (provEdges, provNetEdges), and how the records are written.

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

// provEdges yields the relations of p to paths: its execs, then its
// file accesses (files, nil for none), in the model's order. Each edge
// is emit's until it returns.
func provEdges(p *Process, files iter.Seq[*File], emit func(*provEdge)) {
	for j := range p.Execs {
		x := &p.Execs[j]
		if x.Exe != "" {
			emit(&provEdge{kind: provUsed, path: x.Exe, role: "executable", time: x.Time, exec: x})
		}
	}
	if files == nil {
		return
	}
	for f := range files {
		if f.Error != "" || f.Path == "" {
			continue
		}
		ed := provEdge{path: f.Path, role: f.Op, time: f.Open, file: f}
		if f.Op == "open" || f.Op == "create" {
			ed.mode, ed.close = f.Mode, f.Close
		}
		switch {
		case f.Op == "exec":
			if !slices.ContainsFunc(p.Execs, func(x Exec) bool { return x.Exe == f.Path }) {
				emit(&ed)
			}
		case f.Op == "open":
			if f.Mode != "w" {
				emit(&ed)
			}
			if f.Mode == "w" || f.Mode == "rw" {
				ed.kind = provGenerated
				emit(&ed)
			}
		case provGenerating[f.Op]:
			ed.kind = provGenerated
			emit(&ed)
		case f.Op == "rename":
			ed.kind = provInvalidated
			emit(&ed)
			if f.To != "" {
				emit(&provEdge{kind: provGenerated, path: f.To, from: f.Path, role: f.Op, time: f.Open})
			}
		case provInvalidating[f.Op]:
			ed.kind = provInvalidated
			emit(&ed)
		default:
			emit(&ed)
		}
	}
}

// provNetEdges yields the relations of a process to the endpoints of its
// network entries (net, nil for none), adding the endpoints to eps: bind
// generates the local endpoint; connect, sendto, sendmsg, accept (the
// peer) and listen use theirs. Failed calls, and entries without an
// address, are left out.
func provNetEdges(net iter.Seq[*NetEntry], eps map[string]*provEndpoint, emit func(*provEdge)) {
	if net == nil {
		return
	}
	for n := range net {
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
		ed := provEdge{role: n.Op, time: n.Time, endpoint: end, proto: n.Proto}
		if n.Op == "bind" {
			ed.kind = provGenerated
		}
		emit(&ed)
	}
}

// provEndpoint is a network endpoint's entity.
type provEndpoint struct {
	id, family, addr, path, label string
	port                          int
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
	e.provNodeMembers(typ, label)
}

// provNodeMembers writes the type and label of an entity or agent.
func (e *jsonEnc) provNodeMembers(typ, label string) {
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
