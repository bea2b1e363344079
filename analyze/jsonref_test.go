package analyze

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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
	Container     *string        `json:"container"`
	Children      []*jsonProcess `json:"children"`
}

type jsonExec struct {
	Time jtime    `json:"time"`
	Exe  string   `json:"exe"`
	Argv []string `json:"argv"`
	Cwd  string   `json:"cwd"`
}

type jsonThread struct {
	TID   int32  `json:"tid"`
	Start jtime  `json:"start"`
	End   *jtime `json:"end"`
}

type jsonFile struct {
	Path   string `json:"path"`
	Op     string `json:"op"`
	Mode   string `json:"mode,omitempty"`
	Open   jtime  `json:"open"`
	Close  *jtime `json:"close"`
	To     string `json:"to,omitempty"`
	Error  string `json:"error,omitempty"`
	Search bool   `json:"search,omitempty"`
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
			j.Execs = append(j.Execs, jsonExec{Time: jtime(x.Time), Exe: x.Exe, Argv: refNonNil(x.Argv), Cwd: x.Cwd})
		}
		for _, t := range p.Threads {
			j.Threads = append(j.Threads, jsonThread{TID: t.TID, Start: jtime(t.Start), End: optTime(t.End)})
		}
		for _, f := range p.Files {
			j.Files = append(j.Files, jsonFile{Path: f.Path, Op: f.Op, Mode: f.Mode, Open: jtime(f.Open), Close: optTime(f.Close), To: f.To, Error: f.Error, Search: f.Search})
		}
		for _, e := range p.Net {
			n := jsonNet{Op: e.Op, Family: e.Family, Proto: e.Proto, Addr: e.Addr, Path: e.Path, Time: jtime(e.Time), Error: e.Error}
			if e.Port != 0 || e.Addr != "" {
				n.Port = &e.Port
			}
			j.Net = append(j.Net, n)
		}
		*it.dst = j
		for i := len(p.Children) - 1; i >= 0; i-- {
			stack = append(stack, item{p.Children[i], &j.Children[i]})
		}
	}
	return out
}
