package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"proctrail/formats"
	"proctrail/internal/units"
	"proctrail/record"
)

// recordProcs is the recorder's GOMAXPROCS, unless the environment sets
// one. Its goroutines hand each other work (a connector event to the procfs
// reader, a frame to the compressor) thousands of times a second. On one P
// the goroutine readied runs on the same thread once the other blocks; on
// more, each handoff wakes another thread, which then spins looking for
// work. In `make bench` (the issue-4 workload) the recorder's CPU fell from
// 1,220 to 980 ms on one P, and it drained audit faster: 72,000 against
// 62,000 events/s in the open/close flood. Its work is one stream of
// messages, which a second core did not share. A procfs read that waits
// (cmdline behind a process's mmap lock) gives the P up, as any blocking
// system call does (TestProcReaderWaitGivesUpP).
const recordProcs = 1

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:      "record",
		Usage:     "record the process connector and audit into a capture file (needs root)",
		ArgsUsage: "[-- COMMAND ARGS…]",
		Description: `Records until COMMAND exits (then exits with its exit code), until --duration
has passed, or until Ctrl-C. The audit state found at start is restored on exit.

Example:
   sudo proctrail record -o trace.zst -- ./suspicious-installer.sh
   sudo proctrail record -o /var/log/proctrail/host.zst --rotate-size 100M --rotate-count 10`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "capture `FILE` (created with mode 0600; required)", EnvVars: []string{"PROCTRAIL_OUTPUT"}},
			&cli.DurationFlag{Name: "duration", Usage: "stop after `D` (e.g. 30s, 10m)"},
			&cli.StringFlag{Name: "rotate-size", Usage: "start a new file after `SIZE` bytes (suffixes K, M, G)", EnvVars: []string{"PROCTRAIL_ROTATE_SIZE"}},
			&cli.IntFlag{Name: "rotate-count", Usage: "keep at most `N` files of a rotated set (0: all)", Value: 10, EnvVars: []string{"PROCTRAIL_ROTATE_COUNT"}},
			&cli.StringFlag{Name: "rules", Usage: "audit rule preset `NAME`", Value: "forensic", EnvVars: []string{"PROCTRAIL_RULES"}},
			&cli.StringFlag{Name: "rules-file", Usage: "audit rules `FILE` in auditctl syntax, instead of the preset", EnvVars: []string{"PROCTRAIL_RULES_FILE"}},
			// No environment variable: the capture's recorder command line
			// is where an analyst sees what was left out.
			&cli.StringFlag{Name: "leave-out", Usage: "leave the preset's `SYSCALLS` (comma-separated, e.g. sendto,sendmsg) unaudited; the capture's command line says so"},
			&cli.BoolFlag{Name: "no-audit", Usage: "record the process connector alone"},
			&cli.UintFlag{Name: "backlog-limit", Usage: "raise the kernel's audit backlog limit to `N`", Value: 8192, EnvVars: []string{"PROCTRAIL_BACKLOG_LIMIT"}},
			&cli.BoolFlag{Name: "as-root", Usage: "run COMMAND as root instead of the user who ran sudo"},
		},
		Action: func(c *cli.Context) error {
			if c.String("output") == "" {
				return usagef("record: -o FILE is required")
			}
			cfg, err := recordConfig(c)
			if err != nil {
				return err
			}
			if os.Getenv("GOMAXPROCS") == "" {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(recordProcs))
			}
			return runRecord(c.Context, cfg, os.Stdin, rawWriter(c.App.Writer), c.App.ErrWriter)
		},
	}
}

func recordConfig(c *cli.Context) (*record.Config, error) {
	cfg := &record.Config{
		Output:      c.String("output"),
		Duration:    c.Duration("duration"),
		RotateCount: c.Int("rotate-count"),
		Audit:       !c.Bool("no-audit"),
		Command:     c.Args().Slice(),
		AsRoot:      c.Bool("as-root"),
		Version:     version,
		CommandLine: os.Args,
	}
	if s := c.String("rotate-size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return nil, usagef("--rotate-size: %v", err)
		}
		cfg.RotateSize = n
	}
	if !cfg.Audit {
		return cfg, nil
	}
	var rules []string
	var err error
	var without []string
	if l := c.String("leave-out"); l != "" {
		if c.String("rules-file") != "" {
			return nil, usagef("record: --leave-out applies to the preset, not to --rules-file")
		}
		without = strings.Split(l, ",")
	}
	if f := c.String("rules-file"); f != "" {
		fh, oerr := os.Open(f)
		if oerr != nil {
			return nil, oerr
		}
		rules, err = record.ParseRules(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	} else if rules, err = record.PresetRulesWithout(c.String("rules"), without); err != nil {
		return nil, usageError{err}
	}
	if len(without) > 0 {
		slog.Warn("record: left out of the audit rules: not recorded", "syscalls", strings.Join(without, ","))
	}
	cfg.AuditConfig = record.AuditConfig{Rules: rules, BacklogLimit: uint32(c.Uint("backlog-limit"))}
	return cfg, nil
}

// parseSize parses "100M", "2G", "4096".
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// runRecord records and prints a summary on stderr.
func runRecord(ctx context.Context, cfg *record.Config, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg.Stdin, cfg.Stdout, cfg.Stderr = stdin, stdout, stderr
	cfg.Logger = slog.Default()
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		cfg.Status = stderr
	}
	res, err := record.Record(ctx, cfg)
	if res != nil {
		printRecordSummary(stderr, res)
	}
	if err != nil {
		return err
	}
	if len(cfg.Command) > 0 && res.ExitCode != 0 {
		return exitCode(res.ExitCode)
	}
	return nil
}

func printRecordSummary(w io.Writer, res *record.Result) {
	fmt.Fprintf(w, "proctrail: recorded %s to %s (%s, recorder CPU %s)\n", res.Duration.Round(time.Millisecond),
		strings.Join(res.Files, ", "), units.Bytes(res.Bytes), res.CPU.Round(time.Millisecond))
	for s := range formats.Source(formats.NumSources) {
		if s == formats.SourceAudit && res.AuditMode == "" {
			fmt.Fprintf(w, "  %-9s off\n", s)
			continue
		}
		line := fmt.Sprintf("  %-9s %d messages, %d lost", s, res.Messages[s], res.Lost[s])
		if s == formats.SourceAudit {
			line += " (" + res.AuditMode + " mode)"
		}
		if res.Lost[s] > 0 {
			line += "  WARNING: messages were lost"
		}
		fmt.Fprintln(w, line)
	}
}
