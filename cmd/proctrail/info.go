package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"proctrail/formats"
	"proctrail/internal/units"
	"proctrail/replay"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "describe capture files and auditd logs: host, time span, messages and losses per source, integrity",
		ArgsUsage: "FILE…",
		Description: `Like capinfos for proctrail captures. Needs no privileges.

An auditd log (plain or gzip-compressed, recognised by content) is described
by its records, time span and the lines that are not records.

Example:
   proctrail info trace.zst
   proctrail info --json trace.zst trace.1.zst
   proctrail info /var/log/audit/audit.log.2.gz`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per file, as an array"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of auditd logs that was skipped, with its line number"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("info: no capture file given")
			}
			return runInfo(c.Context, c.Args().Slice(), c.Bool("json"), c.Bool(verboseFlag), c.App.Writer)
		},
	}
}

// fileInfo is the JSON form of a file's summary.
type fileInfo struct {
	File        string                `json:"file"`
	Format      string                `json:"format"` // "capture" or "auditd log"
	Gzip        bool                  `json:"gzip"`
	Imported    []string              `json:"imported_from"`
	CaptureID   string                `json:"capture_id"`
	Sequence    int                   `json:"sequence"`
	Host        string                `json:"host"`
	Kernel      string                `json:"kernel"`
	Machine     string                `json:"machine"`
	Recorder    string                `json:"recorder_version"`
	CommandLine []string              `json:"recorder_command_line"`
	BootTime    *time.Time            `json:"boot_time"`
	Start       *time.Time            `json:"start"`
	End         *time.Time            `json:"end"`
	Frames      int                   `json:"frames"`
	Bytes       int64                 `json:"bytes"`
	Sources     map[string]sourceInfo `json:"sources"`
	Integrity   integrityInfo         `json:"integrity"`
	Log         *logInfo              `json:"log,omitempty"` // an auditd log's lines
	Cut         *cutInfo              `json:"cut,omitempty"` // a cut's provenance
}

// cutInfo is a cut's provenance (formats.CutInfo) with its counts.
type cutInfo struct {
	formats.CutInfo
	// Kept and Masked are per source: the messages of the captures cut
	// that the cut holds, and the fields masked in them.
	Kept   map[string]uint64 `json:"kept"`
	Masked map[string]uint64 `json:"masked"`
	// Marks counts the cut's own records naming its selected processes.
	Marks uint64 `json:"marks"`
}

// logInfo counts an auditd log's lines; see replay.LogStats.
type logInfo struct {
	Lines        int64    `json:"lines"`
	Records      int64    `json:"records"`
	NotRecords   int64    `json:"not_records"`
	Truncated    int64    `json:"truncated"`
	UnknownTypes int64    `json:"unknown_types"`
	UnknownKept  int64    `json:"unknown_types_kept"`
	Issues       []string `json:"issues"` // "line N: what", with --verbose
}

type sourceInfo struct {
	Messages uint64  `json:"messages"`
	Received *uint64 `json:"received"` // the recorder's counter, when written (a cut's: the messages of the captures cut)
	Lost     *uint64 `json:"lost"`
}

type integrityInfo struct {
	OK             bool     `json:"ok"`
	TruncatedBytes int64    `json:"truncated_bytes"`
	CorruptBytes   int64    `json:"corrupt_bytes"`
	Damage         []string `json:"damage"`
}

func timePtr(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}

func summarizeFile(name string, verbose bool) (fileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return fileInfo{}, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, replay.SniffLen)
	head, _ := br.Peek(replay.SniffLen)
	if replay.Sniff(head) == replay.KindLog {
		return summarizeLog(br, name, verbose)
	}
	s, err := formats.Summarize(br, name)
	if err != nil {
		return fileInfo{}, err
	}
	h := s.Header
	fi := fileInfo{
		File: name, Format: "capture", Imported: h.ImportedFrom, CaptureID: h.CaptureID, Sequence: h.Sequence, Host: h.Hostname, Kernel: h.KernelRelease,
		Machine: h.Machine, Recorder: h.Version, CommandLine: h.CommandLine,
		Start: timePtr(s.First), End: timePtr(s.Last), Frames: s.Frames, Bytes: s.Bytes,
		Sources: map[string]sourceInfo{},
		Integrity: integrityInfo{
			OK: s.Unreadable == 0, TruncatedBytes: s.Truncated, CorruptBytes: s.Unreadable - s.Truncated,
			Damage: []string{},
		},
	}
	if !h.BootTime.IsZero() {
		fi.BootTime = &h.BootTime
	}
	for src := range formats.Source(formats.NumSources) {
		si := sourceInfo{Messages: s.Messages[src]}
		if s.HasStats[src] {
			si.Received, si.Lost = &s.Stats[src].Received, &s.Stats[src].Dropped
		}
		fi.Sources[src.String()] = si
	}
	if h.Cut != nil {
		ci := &cutInfo{CutInfo: *h.Cut, Kept: map[string]uint64{}, Masked: map[string]uint64{}}
		for src := range formats.Source(formats.NumSources) {
			if s.HasStats[src] {
				ci.Kept[src.String()], ci.Masked[src.String()] = s.Stats[src].Accepted, s.Stats[src].Masked
			}
		}
		if s.HasStats[formats.SourceProcfs] && s.Messages[formats.SourceProcfs] >= s.Stats[formats.SourceProcfs].Accepted {
			ci.Marks = s.Messages[formats.SourceProcfs] - s.Stats[formats.SourceProcfs].Accepted
		}
		fi.Cut = ci
	}
	for _, d := range s.Damage {
		fi.Integrity.Damage = append(fi.Integrity.Damage, d.Err.Error())
	}
	return fi, nil
}

// summarizeLog reads an auditd log to its end.
func summarizeLog(r io.Reader, name string, verbose bool) (fileInfo, error) {
	l := replay.NewLogReader(r, name)
	fi := fileInfo{File: name, Format: "auditd log", Sequence: -1, Sources: map[string]sourceInfo{}}
	var first, last int64
	var n uint64
	for {
		rec, err := l.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fileInfo{}, err
		}
		if n == 0 || rec.Time < first {
			first = rec.Time
		}
		last = max(last, rec.Time)
		n++
	}
	st := l.LogStats()
	if st.Records == 0 {
		return fileInfo{}, fmt.Errorf("%s: no audit record in %d lines: not an auditd log", name, st.Lines)
	}
	fi.Gzip, fi.Start, fi.End = st.Gzip, timePtr(first), timePtr(last)
	for src := range formats.Source(formats.NumSources) {
		fi.Sources[src.String()] = sourceInfo{}
	}
	fi.Sources["audit"] = sourceInfo{Messages: n}
	fi.Log = &logInfo{Lines: st.Lines, Records: st.Records, NotRecords: st.NotRecords, Truncated: st.Truncated,
		UnknownTypes: st.UnknownType, UnknownKept: st.UnknownKept, Issues: []string{}}
	if verbose {
		for _, is := range st.Issues {
			fi.Log.Issues = append(fi.Log.Issues, fmt.Sprintf("line %d: %v", is.Line, is.Err))
		}
	}
	fi.Integrity = integrityInfo{OK: l.UnreadableBytes() == 0, CorruptBytes: l.UnreadableBytes(), Damage: []string{}}
	for _, d := range l.Damage() {
		fi.Integrity.Damage = append(fi.Integrity.Damage, d.Err.Error())
	}
	return fi, nil
}

// runInfo writes a summary of each file to w, as text or JSON. The files
// that cannot be read are errors, returned together after the others are
// written; a write error on w comes first.
func runInfo(ctx context.Context, files []string, asJSON, verbose bool, w io.Writer) error {
	var infos []fileInfo
	var errs []error
	for _, name := range files {
		fi, err := summarizeFile(name, verbose)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		infos = append(infos, fi)
	}
	// printInfo's writes go to bw, which keeps the first error for Flush.
	bw := bufio.NewWriter(w)
	if asJSON {
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		if infos == nil {
			infos = []fileInfo{}
		}
		if err := enc.Encode(infos); err != nil {
			return errors.Join(append([]error{err}, errs...)...)
		}
	} else {
		for i, fi := range infos {
			if i > 0 {
				fmt.Fprintln(bw)
			}
			printInfo(bw, fi)
		}
	}
	if err := bw.Flush(); err != nil {
		errs = append([]error{err}, errs...)
	}
	return errors.Join(errs...)
}

func printInfo(w io.Writer, fi fileInfo) {
	row := func(k, f string, a ...any) { fmt.Fprintf(w, "%-12s %s\n", k+":", fmt.Sprintf(f, a...)) }
	// Header strings come from the capture: quote any that hold control
	// characters, so a hostile capture cannot forge lines or drive the
	// terminal.
	q := func(s string) string { return quoteControl(orUnknown(s)) }
	args := make([]string, len(fi.CommandLine))
	for i, a := range fi.CommandLine {
		args[i] = quoteControl(a)
	}
	row("File", "%s", quoteControl(fi.File))
	if fi.Log != nil {
		printLogInfo(w, row, fi)
		return
	}
	if fi.Imported != nil {
		files := make([]string, len(fi.Imported))
		for i, f := range fi.Imported {
			files[i] = quoteControl(f)
		}
		row("Capture", "imported from auditd logs %s", strings.Join(files, " "))
	} else {
		row("Capture", "%s, file %d of the set", q(fi.CaptureID), fi.Sequence)
	}
	row("Host", "%s (Linux %s, %s)", q(fi.Host), q(fi.Kernel), q(fi.Machine))
	row("Recorder", "proctrail %s: %s", q(fi.Recorder), strings.Join(args, " "))
	if c := fi.Cut; c != nil {
		quoted := func(a []string) string {
			out := make([]string, len(a))
			for i, s := range a {
				out[i] = quoteControl(s)
			}
			return strings.Join(out, " ")
		}
		sel := quoted(c.Selection)
		if sel == "" {
			sel = "everything"
		}
		row("Cut", "from %s (%s), selection %s", quoted(c.From), quoted(c.Files), sel)
		var kept []string
		for _, src := range []string{"connector", "audit", "procfs"} {
			if si, ok := fi.Sources[src]; ok && si.Received != nil {
				kept = append(kept, fmt.Sprintf("%s %d of %d", src, c.Kept[src], *si.Received))
			}
		}
		row("Kept", "%s messages; %d records mark the selected processes", strings.Join(kept, ", "), c.Marks)
		if c.Redactions > 0 {
			var masked uint64
			for _, n := range c.Masked {
				masked += n
			}
			row("Redacted", "%d fields masked by %d patterns (%d in the header)", masked+uint64(c.HeaderMasked), c.Redactions, c.HeaderMasked)
		}
	}
	if fi.Start != nil {
		row("Span", "%s to %s (%s)", fi.Start.Format(timeLayout), fi.End.Format(timeLayout), fi.End.Sub(*fi.Start))
	} else {
		row("Span", "no messages")
	}
	row("Frames", "%d, %s", fi.Frames, units.Bytes(fi.Bytes))
	for _, src := range []string{"connector", "audit", "procfs"} {
		if fi.Imported != nil && src == "connector" || fi.Imported != nil && src == "procfs" && fi.Cut == nil {
			continue // an import declares the audit interface alone (a cut of one procfs too, for its marks)
		}
		si := fi.Sources[src]
		lost := "lost unknown (no statistics block)"
		if si.Lost != nil {
			lost = fmt.Sprintf("lost %d", *si.Lost)
			if *si.Lost > 0 {
				lost += "  WARNING"
			}
		}
		row(src, "%d messages, %s", si.Messages, lost)
	}
	if fi.Integrity.OK {
		row("Integrity", "ok")
		return
	}
	row("Integrity", "%d bytes truncated tail, %d bytes corrupt", fi.Integrity.TruncatedBytes, fi.Integrity.CorruptBytes)
	for _, d := range fi.Integrity.Damage {
		fmt.Fprintf(w, "%-12s %s\n", "", quoteControl(d))
	}
}

func printLogInfo(w io.Writer, row func(k, f string, a ...any), fi fileInfo) {
	format := "auditd log"
	if fi.Gzip {
		format += ", gzip-compressed"
	}
	row("Format", "%s", format)
	row("Span", "%s to %s (%s)", fi.Start.Format(timeLayout), fi.End.Format(timeLayout), fi.End.Sub(*fi.Start))
	l := fi.Log
	row("Lines", "%d: %d audit records, %d not records, %d truncated, %d of unknown types (%d kept)",
		l.Lines, l.Records, l.NotRecords, l.Truncated, l.UnknownTypes, l.UnknownKept)
	for _, is := range l.Issues {
		fmt.Fprintf(w, "%-12s %s\n", "", quoteControl(is))
	}
	if fi.Integrity.OK {
		row("Integrity", "ok")
		return
	}
	row("Integrity", "%d bytes in truncated lines", fi.Integrity.CorruptBytes)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
