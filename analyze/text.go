package analyze

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TextOptions configure WriteText. A nil *TextOptions means the defaults.
type TextOptions struct {
	// Files lists each process's file accesses under it.
	Files bool
	// Net lists each process's network entries under it (after its
	// files).
	Net bool
	// MaxArgv bounds the characters of a process's argv; zero means 80.
	MaxArgv int
}

// WriteText writes the model as an indented tree for a terminal: one line
// per process (pid, argv, exit status, duration, container), children
// below their parent. Strings from the capture are quoted when they hold
// control characters or invalid UTF-8.
func WriteText(w io.Writer, m *Model, opts *TextOptions) error {
	t := newTextWriter(w, opts)
	t.head(m.Capture, m.Containers)
	var walk func(p *Process, prefix string, last, root bool)
	walk = func(p *Process, prefix string, last, root bool) {
		next := t.process(p, filesOf(p), netOf(p), prefix, last, root, len(p.Children) > 0)
		for i, ch := range p.Children {
			walk(ch, next, i == len(p.Children)-1, false)
		}
	}
	for _, p := range m.Processes {
		walk(p, "", true, true)
	}
	return t.bw.Flush()
}

// BuildText is [Build] then [WriteText], streamed as [BuildJSON] is: no
// process's output is held past its lines. Without TextOptions.Files the
// file accesses are not read at all. It returns the Model's Capture.
func BuildText(w io.Writer, s EventSource, opts *Options, topts *TextOptions) (Capture, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if topts == nil || !topts.Files {
		o.NoFiles = true
	}
	if topts == nil || !topts.Net {
		o.NoNet = true
	}
	ol, err := newOutline(s, &o)
	if err != nil {
		return Capture{}, err
	}
	defer ol.close()
	t := newTextWriter(w, topts)
	t.head(ol.c, ol.conts)
	var walk func(i int32, prefix string, last, root bool)
	walk = func(i int32, prefix string, last, root bool) {
		out, files, net := ol.process(i)
		kids := ol.f.kids(i)
		next := t.process(out, files, net, prefix, last, root, len(kids) > 0)
		for j, k := range kids {
			walk(k, next, j == len(kids)-1, false)
		}
	}
	for _, r := range ol.f.roots {
		walk(r, "", true, true)
	}
	if err := t.bw.Flush(); err != nil {
		return ol.c, err
	}
	return ol.c, ol.b.spoolErr()
}

// textWriter writes the text tree.
type textWriter struct {
	bw *bufio.Writer
	o  TextOptions
}

func newTextWriter(w io.Writer, opts *TextOptions) *textWriter {
	t := &textWriter{bw: bufio.NewWriter(w)}
	if opts != nil {
		t.o = *opts
	}
	if t.o.MaxArgv <= 0 {
		t.o.MaxArgv = 80
	}
	return t
}

// head writes the capture's line, its losses and the containers.
func (t *textWriter) head(c Capture, conts []Container) {
	fmt.Fprintf(t.bw, "%s  %s  %s to %s\n", safe(orDash(c.Host)), safe(orDash(c.Kernel)),
		fmtTextTime(c.Start), fmtTextTime(c.End))
	if c.ConnectorLost+c.AuditLost > 0 || c.UnreadableBytes > 0 {
		fmt.Fprintf(t.bw, "WARNING: %d connector and %d audit messages lost, %d bytes unreadable\n",
			c.ConnectorLost, c.AuditLost, c.UnreadableBytes)
	}
	for _, ct := range conts {
		fmt.Fprintf(t.bw, "container %s (%s) rootfs %s, %d processes\n", safe(ct.ID), ct.Runtime, safe(orDash(ct.Rootfs)), ct.Processes)
	}
}

// process writes p's line, under prefix, with Files its file accesses
// (files; nil for none) and with Net its network entries (net; nil for
// none); it returns its children's prefix.
func (t *textWriter) process(p *Process, files func(yield func(*File) bool), net func(yield func(*NetEntry) bool), prefix string, last, root, kids bool) (next string) {
	branch := ""
	if !root {
		branch, next = "├─ ", "│  "
		if last {
			branch, next = "└─ ", "   "
		}
	}
	next = prefix + next
	fmt.Fprintf(t.bw, "%s%s%s\n", prefix, branch, processLine(p, t.o.MaxArgv))
	bar := "   "
	if kids {
		bar = "│  "
	}
	// Signals and ptrace attaches, and fileless execs, show always: they
	// are few, and what a reader looks for.
	for i := range p.Signals {
		fmt.Fprintf(t.bw, "%s%s  %s\n", next, bar, signalLine(&p.Signals[i]))
	}
	for i := range p.Execs {
		if x := &p.Execs[i]; x.Fileless {
			fmt.Fprintf(t.bw, "%s%s  FILELESS exec %s\n", next, bar, safe(orDash(x.Exe)))
		}
	}
	if t.o.Net && net != nil {
		defer func() {
			for e := range net {
				fmt.Fprintf(t.bw, "%s%s  %s\n", next, bar, netLine(e))
			}
		}()
	}
	if !t.o.Files || files == nil {
		return next
	}
	// A search's attempts are one line.
	var run []File
	flush := func() {
		if len(run) > 0 {
			fmt.Fprintf(t.bw, "%s%s  %s\n", next, bar, searchLine(run))
			run = run[:0]
		}
	}
	for f := range files {
		if f.Search {
			if n := len(run); n > 0 && (n >= maxSearch || !continuesSearch(&run[n-1], f)) {
				flush()
			}
			run = append(run, *f)
			continue
		}
		flush()
		fmt.Fprintf(t.bw, "%s%s  %s\n", next, bar, fileLine(f))
	}
	flush()
	return next
}

// fileLine is a file access as the tree shows it: op, path and what else
// is known.
func fileLine(f *File) string {
	line := f.Op + " " + safe(f.Path)
	if f.ContainerPath != "" {
		line += " [in container " + safe(f.ContainerPath) + "]"
	} else if f.Filesystem != "" {
		line += " [" + safe(f.Filesystem) + ", no host path]"
	}
	if f.Mode != "" {
		line += " (" + f.Mode + ")"
	}
	if f.To != "" {
		line += " → " + safe(f.To)
		if f.ToContainerPath != "" {
			line += " [in container " + safe(f.ToContainerPath) + "]"
		}
	}
	return line + fileDetailText(f)
}

// fileDetailText is f's details and error, each after a space.
func fileDetailText(f *File) string {
	var b strings.Builder
	switch {
	case f.Target != "" && f.Op == "mount":
		b.WriteString(" from " + safe(f.Target))
	case f.Target != "":
		b.WriteString(" → " + safe(f.Target))
	}
	if f.Type != "" {
		b.WriteString(" " + safe(f.Type))
	}
	if f.Perm != "" {
		b.WriteString(" " + safe(f.Perm))
		if f.Setuid() {
			b.WriteString(" SETUID")
		}
		if f.Setgid() {
			b.WriteString(" SETGID")
		}
	}
	if f.Owner != "" {
		b.WriteString(" owner " + safe(f.Owner))
	}
	if f.Size != "" {
		b.WriteString(" size " + safe(f.Size))
	}
	switch {
	case f.Op == "utime" && f.Flags == "set":
		b.WriteString(" (times set)")
	case f.Op == "utime" && f.Flags == "now":
		b.WriteString(" (now)")
	case f.Flags != "":
		b.WriteString(" [" + safe(f.Flags) + "]")
	}
	if f.Error != "" {
		b.WriteString(" " + f.Error)
		if notFound(f) {
			b.WriteString(": command not found")
		}
	}
	if f.Unresolved {
		b.WriteString(" (directory unknown)")
	}
	return b.String()
}

// signalLine is a signal or ptrace attach as the tree shows it.
func signalLine(s *Signal) string {
	var b strings.Builder
	b.WriteString(s.Op)
	if s.Op == "ptrace" {
		b.WriteString(" " + safe(s.Request))
	} else {
		b.WriteString(" " + SignalName(s.Signal))
	}
	b.WriteString(" → ")
	switch {
	case s.TargetPID != 0:
		fmt.Fprintf(&b, "%d %s", s.TargetPID, safe(orDash(s.TargetComm)))
		if s.PID != s.TargetPID {
			fmt.Fprintf(&b, " (pid %d)", s.PID)
		}
	case s.Op == "ptrace" && s.Request == "traceme":
		b.WriteString("its parent")
	default:
		fmt.Fprintf(&b, "pid %d", s.PID)
	}
	if s.Error != "" {
		b.WriteString(" " + s.Error)
	}
	return b.String()
}

// netLine is a network entry's line in the tree: "connect inet tcp
// 203.0.113.7:443 ECONNREFUSED".
func netLine(e *NetEntry) string {
	parts := []string{e.Op}
	for _, s := range [...]string{e.Family, e.Proto, safe(NetEndpoint(e)), e.Error} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// NetEndpoint is the address of a network entry as one string:
// "203.0.113.7:443", "[2001:db8::1]:53" (the port left out when 0 and
// there is no address), a unix path, "port N" for a netlink port id; ""
// when it has none.
func NetEndpoint(e *NetEntry) string {
	switch {
	case e.Addr != "":
		a := e.Addr
		if strings.Contains(a, ":") {
			a = "[" + a + "]"
		}
		return a + ":" + strconv.Itoa(e.Port)
	case e.Path != "":
		return e.Path
	case e.Port != 0 && e.Family == "netlink":
		return "port " + strconv.Itoa(e.Port)
	case e.Port != 0:
		return ":" + strconv.Itoa(e.Port)
	}
	return ""
}

// netOf yields p's network entries, for textWriter.process.
func netOf(p *Process) func(yield func(*NetEntry) bool) {
	return func(yield func(*NetEntry) bool) {
		for i := range p.Net {
			if !yield(&p.Net[i]) {
				return
			}
		}
	}
}

// filesOf yields p's files, for textWriter.process.
func filesOf(p *Process) func(yield func(*File) bool) {
	return func(yield func(*File) bool) {
		for i := range p.Files {
			if !yield(&p.Files[i]) {
				return
			}
		}
	}
}

func processLine(p *Process, maxArgv int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ", p.PID)
	argv := strings.Join(p.Argv, " ")
	if argv == "" {
		argv = p.Comm
	}
	argv = safe(argv)
	if utf8.RuneCountInString(argv) > maxArgv {
		argv = string([]rune(argv)[:maxArgv]) + "…"
	}
	b.WriteString(argv)
	var tags []string
	switch {
	case p.Signal != 0:
		tags = append(tags, "signal "+strconv.Itoa(p.Signal))
	case p.Exited:
		tags = append(tags, "exit "+strconv.Itoa(p.ExitCode))
	default:
		tags = append(tags, "running")
	}
	if p.End != 0 && p.Start != 0 {
		tags = append(tags, time.Duration(p.End-p.Start).Round(time.Microsecond).String())
	}
	if n := len(p.Threads); n > 1 {
		tags = append(tags, strconv.Itoa(n)+" threads")
	}
	if p.Container != "" {
		tags = append(tags, "container "+safe(p.Container[:min(12, len(p.Container))]))
	}
	if p.BeforeCapture {
		tags = append(tags, "before capture")
	}
	fmt.Fprintf(&b, "  [%s]", strings.Join(tags, ", "))
	return b.String()
}

// safe quotes s when it holds control characters or invalid UTF-8.
func safe(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTextTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(TimeLayout)
}
