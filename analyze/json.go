package analyze

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// SchemaVersion is the "schema" of the JSON output. Fields may be added
// within a version; none is renamed or removed.
const SchemaVersion = 1

// TimeLayout is how the JSON output writes times: RFC 3339 in UTC with
// nanoseconds, always nine digits so that every time has the same width.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// WriteJSON writes m as one indented JSON document in the stable schema
// (SchemaVersion; the README documents it):
//
//	{"schema": 1,
//	 "capture": {"files", "host", "kernel", "start", "end",
//	             "sources": {"connector": {"messages", "lost"},
//	                         "audit": {"messages", "events", "lost", "gaps"},
//	                         "procfs": {"records"}},
//	             "unreadable_bytes", "skipped_lines"},
//	 "containers": [{"id", "runtime", "rootfs", "processes"}],
//	 "processes": [P…]}
//	P = {"pid", "ppid", "start", "end"|null, "exit_code"|null, "signal"|null,
//	     "uid"|null, "comm", "exe", "argv", "cwd", "before_capture",
//	     "execs": [{"time", "exe", "argv", "cwd"}],
//	     "threads": [{"tid", "start", "end"|null}],
//	     "files": [{"path", "container_path"?, "filesystem"?, "op", "mode"?, "open", "close"|null,
//	                "to"?, "to_container_path"?, "error"?, "unresolved"?, "search"?,
//	                "target"?, "perm"?, "setuid"?, "setgid"?, "owner"?, "type"?,
//	                "flags"?, "size"?}],
//	     "net"?: [{"op", "family", "proto"?, "addr"?, "port"?, "path"?, "time", "error"?}],
//	     "signals"?: [{"op", "time", "pid", "signal"?, "signame"?, "request"?,
//	                  "target"?: {"pid", "start"?, "comm"}, "error"?}],
//	     "container": "id"|null, "children": [P…]}
//	 "changes"?: {"processes", "counts": {OP: N…},
//	              "directories": [{"dir", "counts": {OP: N…},
//	                               "changes": [{"op", "path", "from"?, details…,
//	                                            "time", "last"?, "count"?,
//	                                            "pid", "start", "comm", "gone"?}]}]}
//
// Times are RFC 3339 UTC with nine fractional digits (TimeLayout). Lists
// are never null; "net" is left out when a process has no entry, "port"
// when it is 0 and there is no "addr". The same model always gives the same bytes; strings
// that are not valid UTF-8 are written with U+FFFD for the bad bytes.
//
// The document is streamed to w in pieces of about 64 KiB as it is
// encoded, with the bytes encoding/json's indented encoder would write
// (no HTML escaping): the output of a large model is never held whole.
func WriteJSON(w io.Writer, m *Model) error {
	e := newJSONEnc(w)
	e.head(&m.Capture, m.Containers)
	writeForest(e, m.Processes, func(p *Process) []*Process { return p.Children }, func(p *Process) *Process { return p })
	e.changes(m.Changes())
	return e.end()
}

// BuildJSON is [Build] then [WriteJSON]: it writes the same bytes, but it
// never holds the whole Model. Each process is made into its output form
// when its turn comes, written and dropped: memory is the builder's own,
// not twice that; its file accesses are read back from the builder's
// spool as they are written. Filters choose first, each making the
// outputs it needs anew (PathGlob reads the accesses back without
// keeping them). It returns the Model's Capture.
func BuildJSON(w io.Writer, s EventSource, opts *Options) (Capture, error) {
	ol, err := newOutline(s, opts)
	if err != nil {
		return Capture{}, err
	}
	defer ol.close()
	c := ol.c
	e := newJSONEnc(w)
	e.head(&c, ol.conts)
	cs := newChangeSet()
	made, stop := madeOutputs(ol)
	defer stop() // when the encoder panics; stop again is a no-op
	writeForest(e, ol.f.roots, ol.f.kids,
		func(int32) *Process {
			it := made.proc()
			out := it.proc
			if it.hasNet {
				e.moreNet = outList(made, outNet, batchNets)
			}
			if !it.hasFiles {
				return out
			}
			files := outList(made, outFile, batchFiles)
			e.moreFiles = func(yield func(*File) bool) {
				for f := range files {
					cs.add(out, f)
					if !yield(f) {
						return
					}
				}
			}
			return out
		})
	stop()
	e.changes(cs.result())
	if err := e.end(); err != nil {
		return c, err
	}
	return c, ol.b.spoolErr()
}

// jsonChunk is how many bytes the encoder gathers before writing them.
const jsonChunk = 64 << 10

// jsonIndent is as many spaces as a line usually needs, in one piece.
const jsonIndent = "                                                                "

// head writes the document up to its processes.
func (e *jsonEnc) head(c *Capture, containers []Container) {
	e.open('{')
	e.key("schema")
	e.int(SchemaVersion)
	e.key("capture")
	e.open('{')
	e.key("files")
	e.strings(c.Files)
	e.key("host")
	e.str(c.Host)
	e.key("kernel")
	e.str(c.Kernel)
	e.key("start")
	e.optTime(c.Start)
	e.key("end")
	e.optTime(c.End)
	e.key("sources")
	e.open('{')
	e.key("connector")
	e.open('{')
	e.key("messages")
	e.uint(c.ConnectorMessages)
	e.key("lost")
	e.uint(c.ConnectorLost)
	e.close('}')
	e.key("audit")
	e.open('{')
	e.key("messages")
	e.uint(c.AuditMessages)
	e.key("events")
	e.uint(c.AuditEvents)
	e.key("lost")
	e.uint(c.AuditLost)
	e.key("gaps")
	e.uint(c.AuditGaps)
	e.close('}')
	e.key("procfs")
	e.open('{')
	e.key("records")
	e.uint(c.ProcfsRecords)
	e.close('}')
	e.close('}')
	e.key("unreadable_bytes")
	e.int(c.UnreadableBytes)
	e.key("skipped_lines")
	e.int(c.SkippedLines)
	e.close('}')
	e.key("containers")
	e.open('[')
	for i := range containers {
		ct := &containers[i]
		e.elem()
		e.open('{')
		e.key("id")
		e.str(ct.ID)
		e.key("runtime")
		e.str(ct.Runtime)
		e.key("rootfs")
		e.str(ct.Rootfs)
		e.key("processes")
		e.int(int64(ct.Processes))
		e.close('}')
	}
	e.close(']')
	e.key("processes")
}

// writeForest writes the processes member: a list of process trees,
// without recursion, so that a deep fork chain cannot exhaust the stack.
// kids gives a node's children and proc its process, whose Children are
// not read.
//
// (Encoding runs of processes on several goroutines was tried: the bytes
// of a process depend only on it, its depth and whether it is the first of
// its siblings. It saved nothing measurable, the replay before being the
// longer part by far, and the buffers in flight cost 10 MiB.)
func writeForest[N any](e *jsonEnc, roots []N, kids func(N) []N, proc func(N) *Process) {
	type level struct {
		kids []N
		next int
	}
	stack := []level{{kids: roots}}
	e.open('[')
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next == len(top.kids) {
			// The list is done; so is the process whose children it held.
			e.close(']')
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				e.close('}')
			}
			continue
		}
		n := top.kids[top.next]
		top.next++
		e.elem()
		e.process(proc(n))
		e.key("children")
		e.open('[')
		stack = append(stack, level{kids: kids(n)})
	}
}

// process writes p's members up to its children.
func (e *jsonEnc) process(p *Process) {
	e.open('{')
	e.key("pid")
	e.int(int64(p.PID))
	e.key("ppid")
	e.int(int64(p.PPID))
	e.key("start")
	e.time(p.Start)
	e.key("end")
	e.optTime(p.End)
	e.key("exit_code")
	if p.Exited && p.Signal == 0 {
		e.int(int64(p.ExitCode))
	} else {
		e.null()
	}
	e.key("signal")
	if p.Exited && p.Signal != 0 {
		e.int(int64(p.Signal))
	} else {
		e.null()
	}
	if p.CoreDumped {
		e.key("core_dumped")
		e.bool(true)
	}
	e.key("uid")
	if p.UID >= 0 {
		e.int(p.UID)
	} else {
		e.null()
	}
	e.key("comm")
	e.str(p.Comm)
	e.key("exe")
	e.str(p.Exe)
	e.key("argv")
	e.strings(p.Argv)
	e.key("cwd")
	e.str(p.Cwd)
	e.key("before_capture")
	e.bool(p.BeforeCapture)
	if p.Command {
		e.key("command")
		e.bool(true)
	}
	e.key("execs")
	e.open('[')
	for i := range p.Execs {
		x := &p.Execs[i]
		e.elem()
		e.open('{')
		e.key("time")
		e.time(x.Time)
		e.key("exe")
		e.str(x.Exe)
		e.key("argv")
		e.strings(x.Argv)
		e.key("cwd")
		e.str(x.Cwd)
		if x.Fileless {
			e.key("fileless")
			e.bool(true)
		}
		e.close('}')
	}
	e.close(']')
	e.key("threads")
	e.open('[')
	for _, t := range p.Threads {
		e.elem()
		e.open('{')
		e.key("tid")
		e.int(int64(t.TID))
		e.key("start")
		e.time(t.Start)
		e.key("end")
		e.optTime(t.End)
		e.close('}')
	}
	e.close(']')
	e.key("files")
	jsonList(e, p.Files, e.moreFiles, e.file)
	e.moreFiles = nil
	if len(p.Net) > 0 || e.moreNet != nil {
		// Only when there are some: the documents of captures without
		// network entries stay as they were.
		e.key("net")
		jsonList(e, p.Net, e.moreNet, e.net)
		e.moreNet = nil
	}
	if len(p.Signals) > 0 {
		e.key("signals")
		e.open('[')
		for i := range p.Signals {
			e.signal(&p.Signals[i])
		}
		e.close(']')
	}
	e.key("container")
	if p.Container != "" {
		e.str(p.Container)
	} else {
		e.null()
	}
}

// jsonList writes an array of the items, then of what more yields (nil:
// nothing), each with write.
func jsonList[T any](e *jsonEnc, items []T, more func(yield func(*T) bool), write func(*T)) {
	e.open('[')
	for i := range items {
		write(&items[i])
	}
	if more != nil {
		for x := range more {
			write(x)
		}
	}
	e.close(']')
}

// file writes one member of a process's files.
func (e *jsonEnc) file(f *File) {
	e.elem()
	e.open('{')
	e.key("path")
	e.str(f.Path)
	e.optStr("container_path", f.ContainerPath)
	e.optStr("filesystem", f.Filesystem)
	e.key("op")
	e.str(f.Op)
	e.optStr("mode", f.Mode)
	e.key("open")
	e.time(f.Open)
	e.key("close")
	e.optTime(f.Close)
	e.optStr("to", f.To)
	e.optStr("to_container_path", f.ToContainerPath)
	e.optStr("error", f.Error)
	if f.Unresolved {
		e.key("unresolved")
		e.bool(true)
	}
	if f.Search {
		e.key("search")
		e.bool(true)
	}
	e.fileDetails(f)
	e.close('}')
}

// fileDetails writes the members of f's details that are set.
func (e *jsonEnc) fileDetails(f *File) {
	e.optStr("target", f.Target)
	if f.Perm != "" {
		e.optStr("perm", f.Perm)
		if f.Setuid() {
			e.key("setuid")
			e.bool(true)
		}
		if f.Setgid() {
			e.key("setgid")
			e.bool(true)
		}
	}
	e.optStr("owner", f.Owner)
	e.optStr("type", f.Type)
	e.optStr("flags", f.Flags)
	if f.Size != "" {
		e.key("size")
		if n, err := strconv.ParseInt(f.Size, 10, 64); err == nil {
			e.int(n)
		} else {
			e.str(f.Size)
		}
	}
}

// signal writes one member of a process's signals.
func (e *jsonEnc) signal(s *Signal) {
	e.elem()
	e.open('{')
	e.key("op")
	e.str(s.Op)
	e.key("time")
	e.time(s.Time)
	e.key("pid")
	e.int(int64(s.PID))
	if s.Op != "ptrace" {
		e.key("signal")
		e.int(int64(s.Signal))
		e.key("signame")
		e.str(SignalName(s.Signal))
	}
	e.optStr("request", s.Request)
	if s.TargetPID != 0 {
		e.key("target")
		e.open('{')
		e.key("pid")
		e.int(int64(s.TargetPID))
		if s.TargetStart != 0 {
			e.key("start")
			e.time(s.TargetStart)
		}
		e.key("comm")
		e.str(s.TargetComm)
		e.close('}')
	}
	e.optStr("error", s.Error)
	e.close('}')
}

// net writes one member of a process's net.
func (e *jsonEnc) net(n *NetEntry) {
	e.elem()
	e.open('{')
	e.key("op")
	e.str(n.Op)
	e.key("family")
	e.str(n.Family)
	e.optStr("proto", n.Proto)
	e.optStr("addr", n.Addr)
	if n.Port != 0 || n.Addr != "" {
		e.key("port")
		e.int(int64(n.Port))
	}
	e.optStr("path", n.Path)
	e.key("time")
	e.time(n.Time)
	e.optStr("error", n.Error)
	e.close('}')
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are: all but
// the control characters, '"' and '\\'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"
