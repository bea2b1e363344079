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
	// MaxArgv bounds the characters of a process's argv; zero means 80.
	MaxArgv int
}

// WriteText writes the model as an indented tree for a terminal: one line
// per process (pid, argv, exit status, duration, container), children
// below their parent. Strings from the capture are quoted when they hold
// control characters or invalid UTF-8.
func WriteText(w io.Writer, m *Model, opts *TextOptions) error {
	var o TextOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxArgv <= 0 {
		o.MaxArgv = 80
	}
	bw := bufio.NewWriter(w)
	c := m.Capture
	fmt.Fprintf(bw, "%s  %s  %s to %s\n", safe(orDash(c.Host)), safe(orDash(c.Kernel)),
		fmtTextTime(c.Start), fmtTextTime(c.End))
	if c.ConnectorLost+c.AuditLost > 0 || c.UnreadableBytes > 0 {
		fmt.Fprintf(bw, "WARNING: %d connector and %d audit messages lost, %d bytes unreadable\n",
			c.ConnectorLost, c.AuditLost, c.UnreadableBytes)
	}
	for _, ct := range m.Containers {
		fmt.Fprintf(bw, "container %s (%s) rootfs %s, %d processes\n", safe(ct.ID), ct.Runtime, safe(orDash(ct.Rootfs)), ct.Processes)
	}
	var walk func(p *Process, prefix string, last, root bool)
	walk = func(p *Process, prefix string, last, root bool) {
		branch, next := "", ""
		if !root {
			branch, next = "├─ ", "│  "
			if last {
				branch, next = "└─ ", "   "
			}
		}
		fmt.Fprintf(bw, "%s%s%s\n", prefix, branch, processLine(p, o.MaxArgv))
		if o.Files {
			for _, f := range p.Files {
				line := f.Op + " " + safe(f.Path)
				if f.Mode != "" {
					line += " (" + f.Mode + ")"
				}
				if f.To != "" {
					line += " → " + safe(f.To)
				}
				if f.Error != "" {
					line += " " + f.Error
				}
				bar := "   "
				if len(p.Children) > 0 {
					bar = "│  "
				}
				fmt.Fprintf(bw, "%s%s%s  %s\n", prefix, next, bar, line)
			}
		}
		for i, ch := range p.Children {
			walk(ch, prefix+next, i == len(p.Children)-1, false)
		}
	}
	for _, p := range m.Processes {
		walk(p, "", true, true)
	}
	return bw.Flush()
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
