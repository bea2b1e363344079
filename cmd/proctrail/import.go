package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"proctrail/formats"
	"proctrail/replay"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "turn auditd text logs into a capture file",
		ArgsUsage: "LOG…",
		Description: `Each record of the logs (raw or enriched format, plain or gzip-compressed,
recognised by content) becomes an audit message of the capture, timed by its
audit header; the capture declares the audit interface alone, and its section
header names the logs it was imported from. Lines that are not records are
counted (listed with --verbose). analyze, replay and info also read auditd logs
directly; import makes a compact capture of them to share.

Example:
   proctrail import -o old.zst /var/log/audit/audit.log.1 /var/log/audit/audit.log`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "capture `FILE` to write (mode 0600; required)"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of the logs that was skipped, with file and line number"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 || c.String("output") == "" {
				return usagef("import: give -o FILE and at least one log")
			}
			return runImport(c.Context, c.Args().Slice(), c.String("output"), c.Bool(verboseFlag), c.App.ErrWriter)
		},
	}
}

func runImport(ctx context.Context, logs []string, output string, verbose bool, stderr io.Writer) (err error) {
	// Refuse what is not a log, and an output that is one of the logs,
	// before the output is touched.
	outInfo, _ := os.Stat(output)
	for _, name := range logs {
		lf, err := os.Open(name)
		if err != nil {
			return err
		}
		head, _ := bufio.NewReaderSize(lf, replay.SniffLen).Peek(replay.SniffLen)
		fi, _ := lf.Stat()
		lf.Close()
		switch kind := replay.Sniff(head); {
		case outInfo != nil && fi != nil && os.SameFile(outInfo, fi):
			return usagef("import: the output %s is one of the logs", output)
		case kind == replay.KindCapture:
			return fmt.Errorf("import: %s is a proctrail capture already", name)
		case kind == replay.KindUnknown:
			return fmt.Errorf("import: %s is not an auditd log (binary data)", name)
		}
	}
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	regular := regularFile(f)
	defer func() {
		if err != nil && regular {
			os.Remove(output) // no half capture left behind
		}
	}()
	w, err := formats.NewWriter(f, &formats.Options{
		Header:  formats.Header{Version: version, CommandLine: os.Args, ImportedFrom: logs},
		Sources: []formats.Source{formats.SourceAudit},
	})
	if err != nil {
		return err
	}
	// The replay stream merges the logs by time, as analyze reads them:
	// rotated logs may come in any order, and the capture is in order.
	s, err := replay.Open(logs, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	reported := false
	defer func() {
		if !reported {
			reportLogs(stderr, s.Info().Logs, verbose)
		}
	}()
	var n uint64
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
		if err := w.WritePacket(formats.SourceAudit, m.Time, m.Raw); err != nil {
			return err
		}
		n++
	}
	info := s.Info()
	w.SetStats(formats.SourceAudit, formats.Stats{Time: 1, Received: n})
	if err := w.Close(); err != nil {
		return err
	}
	reportLogs(stderr, info.Logs, verbose)
	reported = true
	fmt.Fprintf(stderr, "proctrail: imported %d audit records into %s (%d lines skipped)\n", n, output, info.SkippedLines())
	return f.Close()
}
