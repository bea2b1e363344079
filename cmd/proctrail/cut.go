package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"proctrail/analyze"
	"proctrail/cut"
	"proctrail/formats"
	"proctrail/internal/units"
)

func cutCommand() *cli.Command {
	return &cli.Command{
		Name:      "cut",
		Usage:     "write a capture of only what concerns a selection (a process subtree, a container, the recorded command, a time window, a name, a path), optionally masked, to share",
		ArgsUsage: "CAPTURE…",
		Description: `Keeps, unchanged, the messages that concern the processes the selection flags
(those of analyze) keep and the processes they depend on (their ancestors), and
marks the selected processes, so that 'proctrail analyze OUT' shows what
'proctrail analyze CAPTURE… <the same flags>' shows. The cut records what it
was cut from and how ('proctrail info OUT'), and the original's losses.

--redact REGEX (repeatable) masks every match in names, paths, arguments,
working directories, hostnames and procfs records: each byte becomes '*'.
The patterns themselves are not recorded, only how many there were and how
many fields they masked. The captures cut are never modified.

Example:
   proctrail cut trace.zst --container 3f2a -o 3f2a.zst
   proctrail cut trace.zst trace.1.zst --pid 4301 --redact 'alice' --redact '/home/[^/]+' -o build.zst
   proctrail cut /var/log/audit/audit.log --comm curl -o curl.zst`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "capture `FILE` to write (mode 0600; required)"},
			&cli.StringSliceFlag{Name: "redact", Usage: "mask every match of `REGEX` (Go syntax; repeatable)"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of auditd logs that was skipped, with file and line number"},
		}, selectionFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 || c.String("output") == "" {
				return usagef("cut: give -o FILE and at least one capture")
			}
			files := c.Args().Slice()
			opts, sel, err := selectionOf(c, "cut", files)
			if err != nil {
				return err
			}
			var res []*regexp.Regexp
			for _, r := range c.StringSlice("redact") {
				re, err := regexp.Compile(r)
				if err != nil {
					return usagef("cut: --redact %q: %v", r, err)
				}
				res = append(res, re)
			}
			return runCut(c.Context, &cutConfig{Files: files, Options: *opts, Selection: sel, Redact: res,
				Output: c.String("output"), Verbose: c.Bool(verboseFlag), Stderr: c.App.ErrWriter})
		},
	}
}

// cutConfig is what runCut does.
type cutConfig struct {
	Files     []string
	Options   analyze.Options
	Selection []string // the selection as flags, for the cut's header
	Redact    []*regexp.Regexp
	Output    string
	Verbose   bool
	Stderr    io.Writer
}

// runCut writes the cut to a temporary file beside Output and renames it
// there when it is complete: a failed cut leaves nothing, and never
// touches an input.
func runCut(ctx context.Context, cfg *cutConfig) error {
	out, err := filepath.Abs(cfg.Output)
	if err != nil {
		return err
	}
	for _, f := range cfg.Files {
		if a, err := filepath.Abs(f); err == nil && a == out {
			return usagef("cut: -o %s is one of the captures cut", cfg.Output)
		}
		if fi, err := os.Stat(f); err == nil {
			if oi, err := os.Stat(out); err == nil && os.SameFile(fi, oi) {
				return usagef("cut: -o %s is one of the captures cut", cfg.Output)
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing
	res, err := cut.Write(tmp, cfg.Files, &cut.Options{Select: cfg.Options, Selection: cfg.Selection, Redact: cfg.Redact})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if errors.Is(err, analyze.ErrNoCommand) {
			return fmt.Errorf("cut: %w", err)
		}
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	size := int64(0)
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	var kept []string
	for src := range formats.Source(formats.NumSources) {
		if res.Received[src] > 0 || res.Kept[src] > 0 {
			kept = append(kept, fmt.Sprintf("%s %d of %d", src, res.Kept[src], res.Received[src]))
		}
	}
	fmt.Fprintf(cfg.Stderr, "proctrail: cut %d processes to %s (%s): messages kept %s\n",
		res.Selected, cfg.Output, units.Bytes(size), strings.Join(kept, ", "))
	if res.Selected == 0 {
		fmt.Fprintf(cfg.Stderr, "proctrail: warning: the selection keeps no process; the cut holds none\n")
	}
	if len(cfg.Redact) > 0 {
		var masked uint64
		for _, n := range res.Masked {
			masked += n
		}
		fmt.Fprintf(cfg.Stderr, "proctrail: %d fields masked by %d patterns (%d in the header)\n", masked+uint64(res.HeaderMasked), len(cfg.Redact), res.HeaderMasked)
	}
	if res.UnreadableBytes > 0 {
		fmt.Fprintf(cfg.Stderr, "proctrail: warning: %d bytes of the captures unreadable; cut as far as they read\n", res.UnreadableBytes)
		for _, d := range res.Damage {
			fmt.Fprintf(cfg.Stderr, "proctrail:   %s\n", quoteControl(d.Err.Error()))
		}
	}
	return nil
}
