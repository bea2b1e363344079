package analyze

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// This file keeps the encoding/json renderer that WriteJSON's hand-written
// encoder replaced (the same schema through struct tags and
// Encoder.SetIndent), as the reference json_test.go compares it against.

// jtime is a time in ns since the Unix epoch, written with TimeLayout; a
// nil *jtime is null.
type jtime int64

func (t jtime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = time.Unix(0, int64(t)).UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// optTime is nil for 0 (unknown or not yet).
func optTime(t int64) *jtime {
	if t == 0 {
		return nil
	}
	v := jtime(t)
	return &v
}

type jsonDoc struct {
	Schema     int             `json:"schema"`
	Capture    jsonCapture     `json:"capture"`
	Containers []jsonContainer `json:"containers"`
	Processes  []*jsonProcess  `json:"processes"`
	Changes    *jsonChanges    `json:"changes,omitempty"`
}

type jsonChanges struct {
	Processes   int             `json:"processes"`
	Counts      jsonCounts      `json:"counts"`
	Directories []jsonChangeDir `json:"directories"`
}

// jsonCounts is an object whose members keep their order.
type jsonCounts []OpCount

func (c jsonCounts) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, oc := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%q:%d", oc.Op, oc.N)
	}
	return append(b, '}'), nil
}

type jsonChangeDir struct {
	Dir     string       `json:"dir"`
	Counts  jsonCounts   `json:"counts"`
	Changes []jsonChange `json:"changes"`
}

type jsonChange struct {
	Op   string `json:"op"`
	Path string `json:"path"`
	From string `json:"from,omitempty"`
	jsonDetails
	Time  jtime  `json:"time"`
	Last  *jtime `json:"last,omitempty"`
	Count int    `json:"count,omitempty"`
	PID   int32  `json:"pid"`
	Start jtime  `json:"start"`
	Comm  string `json:"comm"`
	Gone  bool   `json:"gone,omitempty"`
}

type jsonDetails struct {
	Target string `json:"target,omitempty"`
	Perm   string `json:"perm,omitempty"`
	Setuid bool   `json:"setuid,omitempty"`
	Setgid bool   `json:"setgid,omitempty"`
	Owner  string `json:"owner,omitempty"`
	Type   string `json:"type,omitempty"`
	Flags  string `json:"flags,omitempty"`
	Size   any    `json:"size,omitempty"`
}

func refDetails(f *File) jsonDetails {
	d := jsonDetails{Target: f.Target, Perm: f.Perm, Setuid: f.Setuid(), Setgid: f.Setgid(), Owner: f.Owner, Type: f.Type, Flags: f.Flags}
	if f.Size != "" {
		d.Size = f.Size
		if _, err := strconv.ParseInt(f.Size, 10, 64); err == nil {
			d.Size = json.Number(f.Size)
		}
	}
	return d
}

type jsonSignal struct {
	Op      string      `json:"op"`
	Time    jtime       `json:"time"`
	PID     int32       `json:"pid"`
	Signal  *int        `json:"signal,omitempty"`
	Signame string      `json:"signame,omitempty"`
	Request string      `json:"request,omitempty"`
	Target  *jsonTarget `json:"target,omitempty"`
	Error   string      `json:"error,omitempty"`
}

type jsonTarget struct {
	PID   int32  `json:"pid"`
	Start *jtime `json:"start,omitempty"`
	Comm  string `json:"comm"`
}

type jsonCapture struct {
	Files           []string    `json:"files"`
	Host            string      `json:"host"`
	Kernel          string      `json:"kernel"`
	Start           *jtime      `json:"start"`
	End             *jtime      `json:"end"`
	Sources         jsonSources `json:"sources"`
	UnreadableBytes int64       `json:"unreadable_bytes"`
	SkippedLines    int64       `json:"skipped_lines"`
}

type jsonSources struct {
	Connector struct {
		Messages uint64 `json:"messages"`
		Lost     uint64 `json:"lost"`
	} `json:"connector"`
	Audit struct {
		Messages uint64 `json:"messages"`
		Events   uint64 `json:"events"`
		Lost     uint64 `json:"lost"`
		Gaps     uint64 `json:"gaps"`
	} `json:"audit"`
	Procfs struct {
		Records uint64 `json:"records"`
	} `json:"procfs"`
}

type jsonContainer struct {
	ID        string `json:"id"`
	Runtime   string `json:"runtime"`
	Rootfs    string `json:"rootfs"`
	Processes int    `json:"processes"`
}

type jsonProcess struct {
	PID           int32          `json:"pid"`
	PPID          int32          `json:"ppid"`
	Start         jtime          `json:"start"`
	End           *jtime         `json:"end"`
	ExitCode      *int           `json:"exit_code"`
	Signal        *int           `json:"signal"`
	CoreDumped    bool           `json:"core_dumped,omitempty"`
	UID           *int64         `json:"uid"`
	Comm          string         `json:"comm"`
	Exe           string         `json:"exe"`
	Argv          []string       `json:"argv"`
	Cwd           string         `json:"cwd"`
	BeforeCapture bool           `json:"before_capture"`
	Command       bool           `json:"command,omitempty"`
	Execs         []jsonExec     `json:"execs"`
	Threads       []jsonThread   `json:"threads"`
	Files         []jsonFile     `json:"files"`
	Net           []jsonNet      `json:"net,omitempty"`
	Signals       []jsonSignal   `json:"signals,omitempty"`
	Container     *string        `json:"container"`
	Children      []*jsonProcess `json:"children"`
}

type jsonExec struct {
	Time jtime    `json:"time"`
	Exe  string   `json:"exe"`
	Argv []string `json:"argv"`
	Cwd  string   `json:"cwd"`
	// Fileless is omitted when false.
	Fileless bool `json:"fileless,omitempty"`
}

type jsonThread struct {
	TID   int32  `json:"tid"`
	Start jtime  `json:"start"`
	End   *jtime `json:"end"`
}

type jsonFile struct {
	Path            string `json:"path"`
	ContainerPath   string `json:"container_path,omitempty"`
	Filesystem      string `json:"filesystem,omitempty"`
	Op              string `json:"op"`
	Mode            string `json:"mode,omitempty"`
	Open            jtime  `json:"open"`
	Close           *jtime `json:"close"`
	To              string `json:"to,omitempty"`
	ToContainerPath string `json:"to_container_path,omitempty"`
	Error           string `json:"error,omitempty"`
	Unresolved      bool   `json:"unresolved,omitempty"`
	Search          bool   `json:"search,omitempty"`
	jsonDetails
}
type jsonNet struct {
	Op     string `json:"op"`
	Family string `json:"family"`
	Proto  string `json:"proto,omitempty"`
	Addr   string `json:"addr,omitempty"`
	Port   *int   `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	Time   jtime  `json:"time"`
	Error  string `json:"error,omitempty"`
}

// refWriteJSON is the encoding/json renderer WriteJSON replaced: the
// reference its output must match byte for byte.
func refWriteJSON(w io.Writer, m *Model) error {
	doc := jsonDoc{Schema: SchemaVersion, Containers: []jsonContainer{}, Processes: []*jsonProcess{}}
	c := m.Capture
	doc.Capture = jsonCapture{
		Files: refNonNil(c.Files), Host: c.Host, Kernel: c.Kernel,
		Start: optTime(c.Start), End: optTime(c.End), UnreadableBytes: c.UnreadableBytes,
		SkippedLines: c.SkippedLines,
	}
	s := &doc.Capture.Sources
	s.Connector.Messages, s.Connector.Lost = c.ConnectorMessages, c.ConnectorLost
	s.Audit.Messages, s.Audit.Events, s.Audit.Lost, s.Audit.Gaps = c.AuditMessages, c.AuditEvents, c.AuditLost, c.AuditGaps
	s.Procfs.Records = c.ProcfsRecords
	for _, ct := range m.Containers {
		doc.Containers = append(doc.Containers, jsonContainer(ct))
	}
	for _, p := range m.Processes {
		doc.Processes = append(doc.Processes, refToJSON(p))
	}
	if ch := m.Changes(); !ch.Empty() {
		jc := &jsonChanges{Processes: ch.Processes, Counts: ch.Counts}
		for _, d := range ch.Dirs {
			jd := jsonChangeDir{Dir: d.Dir, Counts: d.Counts}
			for _, c := range d.Changes {
				f := File{Target: c.Target, Perm: c.Perm, Owner: c.Owner, Type: c.Type, Flags: c.Flags, Size: c.Size}
				x := jsonChange{Op: c.Op, Path: c.Path, From: c.From, jsonDetails: refDetails(&f), Time: jtime(c.Time),
					PID: c.PID, Start: jtime(c.Start), Comm: c.Comm, Gone: c.Gone}
				if c.Count > 1 {
					x.Last, x.Count = optTime(c.Last), c.Count
				}
				jd.Changes = append(jd.Changes, x)
			}
			jc.Directories = append(jc.Directories, jd)
		}
		doc.Changes = jc
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("analyze: json: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("analyze: json: %w", err)
	}
	return nil
}

func refNonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// toJSON converts a process tree without recursion, so that a deep fork
// chain cannot exhaust the stack.
func refToJSON(root *Process) *jsonProcess {
	type item struct {
		p   *Process
		dst **jsonProcess
	}
	var out *jsonProcess
	stack := []item{{root, &out}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := it.p
		j := &jsonProcess{
			PID: p.PID, PPID: p.PPID, Start: jtime(p.Start), End: optTime(p.End),
			CoreDumped: p.CoreDumped, Comm: p.Comm, Exe: p.Exe, Argv: refNonNil(p.Argv), Cwd: p.Cwd,
			BeforeCapture: p.BeforeCapture, Command: p.Command,
			Execs: []jsonExec{}, Threads: []jsonThread{}, Files: []jsonFile{},
			Children: make([]*jsonProcess, len(p.Children)),
		}
		if p.Exited {
			if p.Signal != 0 {
				j.Signal = &p.Signal
			} else {
				j.ExitCode = &p.ExitCode
			}
		}
		if p.UID >= 0 {
			j.UID = &p.UID
		}
		if p.Container != "" {
			j.Container = &p.Container
		}
		for _, x := range p.Execs {
			j.Execs = append(j.Execs, jsonExec{Time: jtime(x.Time), Exe: x.Exe, Argv: refNonNil(x.Argv), Cwd: x.Cwd, Fileless: x.Fileless})
		}
		for _, t := range p.Threads {
			j.Threads = append(j.Threads, jsonThread{TID: t.TID, Start: jtime(t.Start), End: optTime(t.End)})
		}
		for _, f := range p.Files {
			j.Files = append(j.Files, jsonFile{Path: f.Path, ContainerPath: f.ContainerPath, Filesystem: f.Filesystem, Op: f.Op, Mode: f.Mode,
				Open: jtime(f.Open), Close: optTime(f.Close), To: f.To, ToContainerPath: f.ToContainerPath, Error: f.Error, Unresolved: f.Unresolved, Search: f.Search, jsonDetails: refDetails(&f)})
		}
		for _, e := range p.Net {
			n := jsonNet{Op: e.Op, Family: e.Family, Proto: e.Proto, Addr: e.Addr, Path: e.Path, Time: jtime(e.Time), Error: e.Error}
			if e.Port != 0 || e.Addr != "" {
				n.Port = &e.Port
			}
			j.Net = append(j.Net, n)
		}
		for _, sg := range p.Signals {
			js := jsonSignal{Op: sg.Op, Time: jtime(sg.Time), PID: sg.PID, Request: sg.Request, Error: sg.Error}
			if sg.Op != "ptrace" {
				n := sg.Signal
				js.Signal, js.Signame = &n, SignalName(n)
			}
			if sg.TargetPID != 0 {
				js.Target = &jsonTarget{PID: sg.TargetPID, Start: optTime(sg.TargetStart), Comm: sg.TargetComm}
			}
			j.Signals = append(j.Signals, js)
		}
		*it.dst = j
		for i := len(p.Children) - 1; i >= 0; i-- {
			stack = append(stack, item{p.Children[i], &j.Children[i]})
		}
	}
	return out
}
