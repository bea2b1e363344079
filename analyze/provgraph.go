package analyze

import (
	"bytes"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"

	"proctrail/analyze/internal/spool"
)

// provGraph writes a PROV-JSON document (see WritePROV) from the
// processes handed to process in walk order. The activities come first,
// in that order, and are written as they come; the entities, agents and
// relations follow, so process encodes each relation when it meets it
// and spools it, and end writes the sections in order, numbering the
// relations. A signal's used is the one relation that waits: its
// activity is its target's, which may come later. In memory: the
// distinct paths, endpoints and uids, and about 70 bytes per process.
type provGraph struct {
	e *jsonEnc
	// rec encodes a record's value into buf, at the depth of a
	// section's records.
	rec *jsonEnc
	buf bytes.Buffer
	raw []byte

	n     int32
	seen  map[[2]int64]int32 // by pid and start: how many processes so far
	procs []provIdent        // by index
	kids  kinship
	paths map[string]bool // the paths the relations name: executed?
	eps   map[string]*provEndpoint
	uids  map[int64]bool

	// The spooled records, in order: signals are the signals'
	// entities (their ids then their values), the others relations'
	// values (used: or a signal's, to resolve; see usedSignal).
	signals, used, generated, invalidated, derived, assoc *spool.Spool
}

// provIdent names a process's activity: its pid and start, and which
// process with them it is (1, 2…).
type provIdent struct {
	start  int64
	pid, n int32
}

// id is the activity's id: "proctrail:process/PID-START", "~N" appended
// for the Nth process with the same pid and start.
func (pi provIdent) id() string {
	id := "proctrail:process/" + strconv.Itoa(int(pi.pid)) + "-" + strconv.FormatInt(pi.start, 10)
	if pi.n > 1 {
		id += "~" + strconv.Itoa(int(pi.n))
	}
	return id
}

// The used spool's records begin with one of these.
const (
	usedRecord byte = iota // the record's value follows
	usedSignal             // target pid, start, time, then the signal's id
)

// The depth of a section's records: the document, then the section.
const provSectionDepth = 2

func newPROVGraph(w io.Writer) *provGraph {
	g := &provGraph{e: newJSONEnc(w), seen: map[[2]int64]int32{},
		paths: map[string]bool{}, eps: map[string]*provEndpoint{}, uids: map[int64]bool{}}
	g.rec = newJSONEnc(&g.buf)
	for _, sp := range []**spool.Spool{&g.signals, &g.used, &g.generated, &g.invalidated, &g.derived, &g.assoc} {
		*sp = spool.New(renderSpool)
	}
	e := g.e
	e.open('{')
	e.key("prefix")
	e.open('{')
	e.key("proctrail")
	e.str(PROVNamespace)
	e.close('}')
	e.key("activity")
	e.open('{')
	return g
}

func (g *provGraph) spools() []*spool.Spool {
	return []*spool.Spool{g.signals, g.used, g.generated, g.invalidated, g.derived, g.assoc}
}

// close releases the spools.
func (g *provGraph) close() {
	for _, sp := range g.spools() {
		sp.Close()
	}
}

// value encodes a record's value with write and returns it, valid until
// the next call.
func (g *provGraph) value(write func(e *jsonEnc)) []byte {
	e := g.rec
	e.depth = provSectionDepth
	e.open('{')
	write(e)
	e.close('}')
	e.flush()
	g.raw = append(g.raw[:0], g.buf.Bytes()...)
	g.buf.Reset()
	return g.raw
}

// process writes p's activity and spools its relations; its parent is
// the process of index parent (-1 for none), files and net yield its
// accesses and network entries.
func (g *provGraph) process(p *Process, parent int32, files iter.Seq[*File], net iter.Seq[*NetEntry]) {
	i := g.n
	g.n++
	key := [2]int64{int64(p.PID), p.Start}
	g.seen[key]++
	pi := provIdent{start: p.Start, pid: p.PID, n: g.seen[key]}
	g.procs = append(g.procs, pi)
	g.kids.add(parent, i)
	act := pi.id()
	g.e.provRecord(act)
	g.e.provActivity(p)
	g.e.close('}')
	if p.UID >= 0 {
		g.uids[p.UID] = true
		g.assoc.Append(g.value(func(e *jsonEnc) {
			e.key("prov:activity")
			e.str(act)
			e.key("prov:agent")
			e.str(provUserID(p.UID))
			e.key("prov:role")
			e.provQName("proctrail:uid")
		}))
	}
	emit := func(ed *provEdge) { g.edge(act, ed) }
	provEdges(p, files, emit)
	provNetEdges(net, g.eps, emit)
	for j := range p.Signals {
		sg := &p.Signals[j]
		id := "proctrail:signal/" + strings.TrimPrefix(act, "proctrail:process/") + "-" + strconv.Itoa(j+1)
		v := g.value(func(e *jsonEnc) { provSignalEntity(e, sg) })
		g.signals.Append(append(binaryString(nil, id), v...))
		g.edge(act, &provEdge{kind: provGenerated, entity: id, role: sg.Op, time: sg.Time})
		if sg.TargetPID != 0 {
			r := append([]byte{usedSignal}, le.AppendUint32(nil, uint32(sg.TargetPID))...)
			r = le.AppendUint64(r, uint64(sg.TargetStart))
			r = le.AppendUint64(r, uint64(sg.Time))
			g.used.Append(append(r, id...))
		}
	}
}

// binaryString appends s to dst, its length first.
func binaryString(dst []byte, s string) []byte {
	return append(le.AppendUint32(dst, uint32(len(s))), s...)
}

// provSignalEntity writes the members of a signal's entity.
func provSignalEntity(e *jsonEnc, sg *Signal) {
	if sg.Op == "ptrace" {
		e.provNodeMembers("proctrail:Ptrace", "ptrace "+sg.Request)
		e.key("proctrail:request")
		e.str(sg.Request)
	} else {
		e.provNodeMembers("proctrail:Signal", SignalName(sg.Signal))
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
}

// edge spools ed, a relation of the activity act.
func (g *provGraph) edge(act string, ed *provEdge) {
	ent := ed.entity
	switch {
	case ed.endpoint != nil:
		ent = ed.endpoint.id
	case ent == "":
		ent = provFileID(ed.path)
		exec := ed.role == "executable" || ed.role == "exec"
		if was, ok := g.paths[ed.path]; !ok {
			g.paths[strings.Clone(ed.path)] = exec
		} else if exec && !was {
			g.paths[ed.path] = true
		}
	}
	v := g.value(func(e *jsonEnc) {
		// PROV-JSON orders neither; PROV-N puts the activity first in
		// used and the entity first in the others.
		if ed.kind == provUsed {
			e.key("prov:activity")
			e.str(act)
			e.key("prov:entity")
			e.str(ent)
		} else {
			e.key("prov:entity")
			e.str(ent)
			e.key("prov:activity")
			e.str(act)
		}
		e.provEdgeAttributes(ed)
	})
	switch ed.kind {
	case provUsed:
		g.used.Append(append([]byte{usedRecord}, v...))
	case provGenerated:
		g.generated.Append(v)
	case provInvalidated:
		g.invalidated.Append(v)
	}
	if ed.kind == provGenerated && ed.from != "" {
		g.derived.Append(g.value(func(e *jsonEnc) {
			e.key("prov:generatedEntity")
			e.str(provFileID(ed.path))
			e.key("prov:usedEntity")
			e.str(provFileID(ed.from))
			e.key("prov:activity")
			e.str(act)
		}))
	}
}

// end writes the entities, agents and relations, and ends the document.
func (g *provGraph) end() error {
	e := g.e
	e.close('}') // the activities
	e.key("entity")
	e.open('{')
	for _, s := range slices.Sorted(maps.Keys(g.paths)) {
		typ := "proctrail:File"
		if g.paths[s] {
			typ = "proctrail:Executable"
		}
		e.provNode(provFileID(s), typ, s)
		e.key("proctrail:path")
		e.str(s)
		e.close('}')
	}
	eps := slices.SortedFunc(maps.Values(g.eps), func(a, b *provEndpoint) int { return strings.Compare(a.id, b.id) })
	for _, ep := range eps {
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
	for r := range records(g.signals) {
		n := le.Uint32(r)
		e.spliced(string(r[4:4+n]), r[4+n:])
	}
	e.close('}')
	e.key("agent")
	e.open('{')
	for _, u := range slices.Sorted(maps.Keys(g.uids)) {
		e.provNode(provUserID(u), "proctrail:User", "uid "+strconv.FormatInt(u, 10))
		e.key("proctrail:uid")
		e.int(u)
		e.close('}')
	}
	e.close('}')
	g.section("used", "_:u", g.used, g.resolve)
	g.section("wasGeneratedBy", "_:g", g.generated, nil)
	g.section("wasInvalidatedBy", "_:x", g.invalidated, nil)
	g.section("wasDerivedFrom", "_:d", g.derived, nil)
	e.key("wasInformedBy")
	e.open('{')
	n := 0
	for par, kid := range g.kids.all() {
		n++
		e.provRecord("_:i" + strconv.Itoa(n))
		e.key("prov:informed")
		e.str(g.procs[kid].id())
		e.key("prov:informant")
		e.str(g.procs[par].id())
		e.close('}')
	}
	e.close('}')
	g.section("wasAssociatedWith", "_:a", g.assoc, nil)
	for _, sp := range g.spools() {
		if err := sp.Err(); err != nil {
			return fmt.Errorf("analyze: prov: spool: %w", err)
		}
	}
	return e.end()
}

// section writes the records of sp as the section name, numbered after
// blank. With resolve, each record begins with a byte that resolve
// reads: it returns the record's value, or nil to leave it out.
func (g *provGraph) section(name, blank string, sp *spool.Spool, resolve func([]byte) []byte) {
	e := g.e
	e.key(name)
	e.open('{')
	n := 0
	for r := range records(sp) {
		if resolve != nil {
			if r = resolve(r); r == nil {
				continue
			}
		}
		n++
		e.spliced(blank+strconv.Itoa(n), r)
	}
	e.close('}')
}

// resolve reads a record of the used spool: a signal's is used by its
// target's activity, the last process with its pid and start, if any.
func (g *provGraph) resolve(r []byte) []byte {
	if r[0] == usedRecord {
		return r[1:]
	}
	pid, start := int32(le.Uint32(r[1:])), int64(le.Uint64(r[5:]))
	n := g.seen[[2]int64{int64(pid), start}]
	if n == 0 {
		return nil
	}
	act := provIdent{start: start, pid: pid, n: n}.id()
	ed := provEdge{kind: provUsed, entity: string(r[21:]), role: "signal", time: int64(le.Uint64(r[13:]))}
	return g.value(func(e *jsonEnc) {
		e.key("prov:activity")
		e.str(act)
		e.key("prov:entity")
		e.str(ed.entity)
		e.provEdgeAttributes(&ed)
	})
}

// spliced writes a record of a section whose value, encoded at the
// section's depth, is v.
func (e *jsonEnc) spliced(id string, v []byte) {
	e.elem()
	e.str(id)
	e.buf = append(e.buf, ": "...)
	e.buf = append(e.buf, v...)
	if len(e.buf) >= jsonChunk {
		e.flush()
	}
}
