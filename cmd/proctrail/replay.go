package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/urfave/cli/v2"

	"proctrail/formats"
	"proctrail/replay"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "print the messages of captures or auditd logs in order, one a line, decoded",
		ArgsUsage: "FILE…",
		Description: `Files of a rotated set replay as one stream; separate captures are merged by
time. auditd logs (plain or gzip, told apart by content) replay as their audit
records; lines skipped in them are counted on stderr, listed with --verbose.
Needs no privileges.

--format audit writes only the audit records, as the lines auditd writes to
/var/log/audit/audit.log (raw format), for ausearch and aureport; with
--verbose, stderr says how many records and events (as ausearch groups them)
it wrote.

Example:
   proctrail replay trace.zst | less
   proctrail replay --json trace.zst trace.1.zst | jq -c 'select(.source=="connector")'
   proctrail replay --format audit trace.zst > trace.log && ausearch --input trace.log -i`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "`FORMAT` of the output: text (one message a line, decoded), json (one JSON object a line) or audit (auditd log lines of the audit records)"},
			&cli.BoolFlag{Name: "json", Usage: "the same as --format json"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of auditd logs that was skipped, with file and line number; with --format audit, say what was written"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("replay: no capture file given")
			}
			format := c.String("format")
			switch format {
			case "text", "json", "audit":
			default:
				return usagef("replay: --format %q: want text, json or audit", format)
			}
			if c.Bool("json") {
				if c.IsSet("format") && format != "json" {
					return usagef("replay: --json and --format %s contradict each other", format)
				}
				format = "json"
			}
			return runReplay(c.Context, c.Args().Slice(), format, c.Bool(verboseFlag), c.App.Writer, c.App.ErrWriter)
		},
	}
}

// replayLine is the JSON form of a message.
type replayLine struct {
	Time   string              `json:"time"`
	Source string              `json:"source"`
	File   string              `json:"file"`
	Offset int64               `json:"offset"`
	Proc   *replay.ProcEvent   `json:"proc,omitempty"`
	Audit  *auditLine          `json:"audit,omitempty"`
	ProcFS *formats.ProcRecord `json:"procfs,omitempty"`
	Error  string              `json:"error,omitempty"`
}

type auditLine struct {
	Type   string `json:"type"`
	Serial uint64 `json:"serial"`
	Time   string `json:"time"`
	Text   string `json:"text"`
}

const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(ns int64) string { return time.Unix(0, ns).UTC().Format(timeLayout) }

// runReplay writes the messages of files to w in format (text, json or
// audit). With audit, warnings go to ew, for w holds a log that ausearch
// reads. A write error on w is returned: a full disk is no success.
func runReplay(ctx context.Context, files []string, format string, verbose bool, w, ew io.Writer) (err error) {
	s, err := replay.Open(files, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { reportLogs(ew, s.Info().Logs, verbose) }()
	bw := bufio.NewWriterSize(w, 64<<10)
	defer func() {
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}()
	enc := json.NewEncoder(bw)
	var (
		line        []byte
		undecodable int // audit messages that are neither records nor control messages
		cut         int // records cut to auditd's line length
		written     int // records written
		events      replay.LogGrouper
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch format {
		case "audit":
			if m.Source != formats.SourceAudit {
				continue
			}
			if m.Err != nil {
				// A control message, or a binary message auditd drops
				// (AUDIT_REPLACE), is no loss.
				typ, ok := m.NetlinkType()
				logged := !ok || replay.AuditdLogs(auparse.AuditMessageType(typ))
				if logged && !errors.Is(m.Err, replay.ErrControl) {
					undecodable++
				}
				continue
			}
			if !replay.AuditdLogs(m.Audit.Type) {
				continue
			}
			// An EOE whose event is not in the log (it began before
			// the capture, or in the previous file of a rotated set):
			// ausearch would drop it. The lines carry no node=, so
			// ausearch groups them without.
			rec := *m.Audit
			rec.Node = ""
			if !events.Add(rec) {
				continue
			}
			written++
			line = replay.AppendLogLine(line[:0], *m.Audit)
			if len(line)-1 >= replay.MaxAuditdLine {
				cut++
			}
			if _, err := bw.Write(line); err != nil {
				return err
			}
		case "json":
			l := replayLine{Time: fmtTime(m.Time), Source: m.Source.String(), File: m.File, Offset: m.Offset, Proc: m.Proc, ProcFS: m.ProcFS}
			if m.Audit != nil {
				l.Audit = &auditLine{Type: m.Audit.Type.String(), Serial: m.Audit.Serial, Time: m.Audit.Time.UTC().Format(timeLayout), Text: m.Audit.Text}
			}
			if m.Err != nil {
				l.Error = m.Err.Error()
			}
			if err := enc.Encode(l); err != nil {
				return err
			}
		default:
			if _, err := fmt.Fprintf(bw, "%s %-9s %s\n", fmtTime(m.Time), m.Source, describe(m)); err != nil {
				return err
			}
		}
	}
	info := s.Info()
	if format == "audit" {
		if verbose {
			// What ausearch and aureport read back: these records, in
			// these events.
			fmt.Fprintf(ew, "proctrail: wrote %d audit records in %d events\n", written, events.Events())
			if n := events.DroppedEOE(); n > 0 {
				fmt.Fprintf(ew, "proctrail: left out %d EOE records whose events are not in the log (begun before the capture or in the previous file), as ausearch leaves them out\n", n)
			}
		}
		if undecodable > 0 {
			fmt.Fprintf(ew, "proctrail: warning: %d audit messages could not be decoded and are not in the log\n", undecodable)
		}
		if cut > 0 {
			fmt.Fprintf(ew, "proctrail: warning: %d records reached auditd's line length of %d bytes and were cut, as auditd cuts them\n", cut, replay.MaxAuditdLine)
		}
		if info.UnreadableBytes > 0 {
			fmt.Fprintf(ew, "proctrail: warning: %d unreadable bytes\n", info.UnreadableBytes)
			for _, d := range info.Damage {
				fmt.Fprintf(ew, "proctrail:   %s\n", quoteControl(d.Err.Error()))
			}
		}
		return nil
	}
	if info.UnreadableBytes > 0 {
		// bw keeps its first write error for the deferred Flush.
		fmt.Fprintf(bw, "# %d unreadable bytes\n", info.UnreadableBytes)
		for _, d := range info.Damage {
			fmt.Fprintf(bw, "#   %v\n", d.Err)
		}
	}
	return nil
}

// describe renders a message on one line; strings that come from the
// capture are quoted so control characters cannot forge lines.
func describe(m *replay.Message) string {
	switch {
	case m.Err != nil:
		return "undecodable: " + strconv.Quote(m.Err.Error())
	case m.Proc != nil:
		return describeProc(m.Proc)
	case m.Audit != nil:
		return m.Audit.Type.String() + " " + quoteControl(m.Audit.Text)
	case m.ProcFS != nil:
		p := m.ProcFS
		if p.Gone {
			return fmt.Sprintf("%s pid=%d gone", p.Kind, p.PID)
		}
		if p.Kind == formats.ReasonMounts {
			return fmt.Sprintf("%s pid=%d mnt=%d after=%s mounts=%d", p.Kind, p.PID, p.MountNS(), p.After, strings.Count(p.Mountinfo, "\n"))
		}
		s := fmt.Sprintf("%s pid=%d ppid=%d tids=%v uid=%d comm=%s exe=%s cmdline=%s cwd=%s root=%s cgroup=%s",
			p.Kind, p.PID, p.PPID, p.TIDs, p.UIDs[0], strconv.Quote(p.Comm), strconv.Quote(p.Exe), quoteList(p.Cmdline),
			strconv.Quote(p.Cwd), strconv.Quote(p.Root), strconv.Quote(strings.TrimSpace(p.Cgroup)))
		if p.Mountinfo != "" {
			s += fmt.Sprintf(" mnt=%d mounts=%d", p.MountNS(), strings.Count(p.Mountinfo, "\n"))
		}
		return s
	}
	return ""
}

func describeProc(e *replay.ProcEvent) string {
	switch e.Kind {
	case replay.ProcFork:
		return fmt.Sprintf("fork parent=%d/%d child=%d/%d", e.ParentPID, e.ParentTGID, e.ChildPID, e.ChildTGID)
	case replay.ProcExec:
		return fmt.Sprintf("exec pid=%d/%d", e.PID, e.TGID)
	case replay.ProcExit:
		code, sig := e.ExitStatus()
		return fmt.Sprintf("exit pid=%d/%d code=%d signal=%d parent=%d/%d", e.PID, e.TGID, code, sig, e.ParentPID, e.ParentTGID)
	case replay.ProcUID, replay.ProcGID:
		return fmt.Sprintf("%s pid=%d/%d real=%d effective=%d", e.Kind, e.PID, e.TGID, e.RealID, e.EffectiveID)
	case replay.ProcComm:
		return fmt.Sprintf("comm pid=%d/%d comm=%s", e.PID, e.TGID, strconv.Quote(e.Comm))
	case replay.ProcPtrace:
		return fmt.Sprintf("ptrace pid=%d/%d tracer=%d/%d", e.PID, e.TGID, e.TracerPID, e.TracerTGID)
	case replay.ProcNone:
		return fmt.Sprintf("none err=%d", e.Err)
	}
	return fmt.Sprintf("%s what=%#x pid=%d/%d", e.Kind, e.What, e.PID, e.TGID)
}

func quoteList(a []string) string {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// quoteControl keeps printable text as is and quotes it when it holds
// control characters or invalid UTF-8.
func quoteControl(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return strconv.Quote(s)
		}
	}
	return s
}
