package main

import (
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
		Description: `Each record of the logs (raw or enriched format) becomes an audit message of
the capture, timed by its audit header. analyze, replay and info also read
auditd logs directly; import makes a compact capture of them to share.

Example:
   proctrail import -o old.zst /var/log/audit/audit.log.1 /var/log/audit/audit.log`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "capture `FILE` to write (mode 0600; required)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 || c.String("output") == "" {
				return usagef("import: give -o FILE and at least one log")
			}
			return runImport(c.Context, c.Args().Slice(), c.String("output"), c.App.ErrWriter)
		},
	}
}

func runImport(ctx context.Context, logs []string, output string, stderr io.Writer) error {
	f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := formats.NewWriter(f, &formats.Options{Header: formats.Header{Version: version, CommandLine: os.Args}})
	if err != nil {
		return err
	}
	var n, skipped uint64
	for _, name := range logs {
		if err := ctx.Err(); err != nil {
			return err
		}
		lf, err := os.Open(name)
		if err != nil {
			return err
		}
		l := replay.NewLogReader(lf, name)
		for {
			rec, err := l.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				lf.Close()
				return err
			}
			if err := w.WritePacket(rec.Source, rec.Time, rec.Data); err != nil {
				lf.Close()
				return err
			}
			n++
		}
		skipped += uint64(len(l.Damage()))
		lf.Close()
	}
	w.SetStats(formats.SourceAudit, formats.Stats{Time: 1, Received: n})
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "proctrail: imported %d audit records into %s (%d lines skipped)\n", n, output, skipped)
	return f.Close()
}
