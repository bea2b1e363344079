package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"proctrail/analyze"
	"proctrail/formats"
	"proctrail/replay"
	"proctrail/report"
	"proctrail/store"
)

func analyzeCommand() *cli.Command {
	return &cli.Command{
		Name:      "analyze",
		Usage:     "rebuild process trees, files and containers from captures or auditd logs; write JSON, Graphviz, SVG, HTML or PROV",
		ArgsUsage: "FILE…",
		Description: `Replays the captures through the filter. auditd logs (plain or gzip, told apart
by content) are read as well; lines skipped in them are counted on stderr and
listed with --verbose. The output depends only on the input's bytes. Needs no
privileges. When stderr is a terminal and the output is not (it is redirected
or goes to -o), an analysis that takes more than 2 s says on stderr how far it
has read.

Example:
   proctrail analyze trace.zst > tree.json
   proctrail analyze trace.zst --cmd --tree --files
   proctrail analyze trace.zst --cmd --changes             # what the command changed, by directory
   proctrail analyze trace.zst --html -o report.html
   proctrail analyze trace.zst --dot | dot -Tsvg > tree.svg
   proctrail analyze trace.zst --prov -o trace.prov.json
   proctrail analyze /var/log/audit/audit.log.1 /var/log/audit/audit.log --tree
   proctrail analyze trace.zst --cmd --path '/etc/*' --dot --files -o etc.dot
   proctrail analyze trace.zst --container 3f2a --since +5s --until +1m
   proctrail analyze --db proctrail.db --host web1 --pid 4242 --tree      # from a database (proctrail load)
   proctrail analyze --db postgres://proctrail@db/proctrail --host web1 --pid 4242 --html -o 4242.html`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "write JSON (the default)"},
			&cli.BoolFlag{Name: "dot", Usage: "write a Graphviz digraph"},
			&cli.BoolFlag{Name: "svg", Usage: "write SVG rendered by Graphviz's dot (must be installed)"},
			&cli.BoolFlag{Name: "tree", Usage: "write an indented text tree for the terminal"},
			&cli.BoolFlag{Name: "html", Usage: "write a self-contained HTML report to open in a browser (use with -o)"},
			&cli.BoolFlag{Name: "prov", Usage: "write W3C PROV-JSON for provenance tools (processes as activities, files as entities)"},
			&cli.BoolFlag{Name: "changes", Usage: "write what the processes changed in the file system, by directory, as text"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of auditd logs that was skipped, with file and line number"},
			&cli.BoolFlag{Name: "files", Usage: "with --dot, --svg or --tree: show the files each process touched (and with --dot or --svg, the remote endpoints it talked to)"},
			&cli.BoolFlag{Name: "net", Usage: "with --tree: show each process's network calls (socket, connect, bind, listen, accept, sendto)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `OUT` instead of stdout"},
			&cli.StringFlag{Name: "db", Usage: "without files: rebuild from the database `DB` (a SQLite file or a postgres:// URL; see load)", EnvVars: []string{"PROCTRAIL_DB"}},
			&cli.StringFlag{Name: "host", Usage: "with --db: the capture set of host `H`"},
			&cli.StringFlag{Name: "capture", Usage: "with --db: the capture set `ID` (a prefix is enough), when the host has several"},
		}, selectionFlags()...),
		Action: func(c *cli.Context) error {
			// Files given are analyzed (a PROCTRAIL_DB in the environment
			// does not stand in their way); without files, --db is read.
			fromDB := c.String("db") != "" && c.NArg() == 0
			if !fromDB && c.NArg() == 0 {
				return usagef("analyze: no capture file given (or --db DB)")
			}
			if !fromDB && (c.String("host") != "" || c.String("capture") != "") {
				return usagef("analyze: --host and --capture go with --db")
			}
			if fromDB {
				for _, f := range []string{"since", "until", "comm", "path", "addr"} {
					if c.String(f) != "" {
						return usagef("analyze: --%s is not supported with --db: select with proctrail query, then --pid", f)
					}
				}
				if c.String("host") == "" && c.String("capture") == "" {
					return usagef("analyze: with --db, name the capture set: --host H or --capture ID")
				}
			}
			formatsSet := 0
			for _, f := range []string{"json", "dot", "svg", "tree", "html", "prov", "changes"} {
				if c.Bool(f) {
					formatsSet++
				}
			}
			if formatsSet > 1 {
				return usagef("analyze: choose one of --json, --dot, --svg, --tree, --html, --prov, --changes")
			}
			files := c.Args().Slice()
			opts, _, err := selectionOf(c, "analyze", files)
			if err != nil {
				return err
			}
			format := "json"
			switch {
			case c.Bool("dot"):
				format = "dot"
			case c.Bool("svg"):
				format = "svg"
			case c.Bool("tree"):
				format = "tree"
			case c.Bool("html"):
				format = "html"
			case c.Bool("prov"):
				format = "prov"
			case c.Bool("changes"):
				format = "changes"
			}
			if c.Bool("net") && format != "tree" {
				return usagef("analyze: --net goes with --tree (JSON, HTML and PROV always have the network entries; --dot --files shows endpoints)")
			}
			cfg := &analyzeConfig{
				Files: files, Options: opts, Format: format, ShowFiles: c.Bool("files"), ShowNet: c.Bool("net"),
				Output: c.String("output"), Verbose: c.Bool(verboseFlag),
				Stdout: c.App.Writer, Stderr: c.App.ErrWriter,
			}
			if fromDB {
				cfg.DB = c.String("db")
				cfg.Selection = &store.Selection{Host: c.String("host"), CaptureID: c.String("capture"),
					Pid: opts.Pid, Container: opts.Container, Cmd: opts.Cmd}
			}
			return runAnalyze(c.Context, cfg)
		},
	}
}

// selectionFlags are the flags that select processes, for analyze and
// cut.
func selectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "pid", Usage: "only the subtree of process `N`"},
		&cli.StringFlag{Name: "container", Usage: "only processes of container `ID` (a prefix is enough)"},
		&cli.StringFlag{Name: "since", Usage: "only processes alive after `T` (RFC 3339, or +5s from the capture's start)"},
		&cli.StringFlag{Name: "until", Usage: "only processes alive before `T` (RFC 3339, or +1m from the capture's start)"},
		&cli.StringFlag{Name: "comm", Usage: "only processes named `NAME`, with their ancestors"},
		&cli.StringFlag{Name: "path", Usage: "only processes that touched a path matching `GLOB`, with their ancestors"},
		&cli.StringFlag{Name: "addr", Usage: "only processes with a network call to or from `ADDR`, with their ancestors: a CIDR or an address (10.0.0.0/8, ::1), :PORT, ADDRESS:PORT ([::1]:8080), or a unix socket path (/run/*.sock, @abstract)"},
		&cli.BoolFlag{Name: "cmd", Usage: "only the subtree of the command given to 'record --'"},
	}
}

// selectionOf reads the selection flags of cmd (its name, for errors):
// the options, and the same as flags with times made absolute (a cut
// records them).
func selectionOf(c *cli.Context, cmd string, files []string) (*analyze.Options, []string, error) {
	opts := &analyze.Options{
		Pid: int32(c.Int("pid")), Container: c.String("container"), Comm: c.String("comm"),
		PathGlob: c.String("path"), Addr: c.String("addr"), Cmd: c.Bool("cmd"),
	}
	var err error
	if opts.Since, err = parseWhen(c.String("since"), files); err != nil {
		return nil, nil, usagef("%s: --since: %v", cmd, err)
	}
	if opts.Until, err = parseWhen(c.String("until"), files); err != nil {
		return nil, nil, usagef("%s: --until: %v", cmd, err)
	}
	var args []string
	if opts.Pid != 0 {
		args = append(args, "--pid", strconv.Itoa(int(opts.Pid)))
	}
	if opts.Container != "" {
		args = append(args, "--container", opts.Container)
	}
	if opts.Cmd {
		args = append(args, "--cmd")
	}
	if !opts.Since.IsZero() {
		args = append(args, "--since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		args = append(args, "--until", opts.Until.UTC().Format(time.RFC3339Nano))
	}
	if opts.Comm != "" {
		args = append(args, "--comm", opts.Comm)
	}
	if opts.PathGlob != "" {
		args = append(args, "--path", opts.PathGlob)
	}
	if opts.Addr != "" {
		args = append(args, "--addr", opts.Addr)
	}
	return opts, args, nil
}

// parseWhen parses an RFC 3339 time, or an offset like "+5s" from the
// start of the first capture file.
func parseWhen(s string, files []string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasPrefix(s, "+") {
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		start, err := captureStart(files)
		if err != nil {
			return time.Time{}, err
		}
		return start.Add(d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// captureStart returns the earliest section-header start of the files.
func captureStart(files []string) (time.Time, error) {
	var start time.Time
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return time.Time{}, err
		}
		r, err := formats.NewReader(f, &formats.ReaderOptions{Name: name})
		if err != nil {
			f.Close()
			return time.Time{}, err
		}
		if h := r.Header(); !h.Start.IsZero() && (start.IsZero() || h.Start.Before(start)) {
			start = h.Start
		}
		r.Close()
		f.Close()
	}
	if start.IsZero() {
		return start, errors.New("the captures do not say when they started")
	}
	return start, nil
}

// analyzeConfig is one run of analyze: what it reads, how it filters and
// what it writes where.
type analyzeConfig struct {
	// Files are the captures and auditd logs, replayed as one stream.
	Files []string
	// Options are the filters; nil means none.
	Options *analyze.Options
	// Format is json, dot, svg, tree, html, prov or changes; "" means
	// json.
	Format string
	// ShowFiles (--files) shows the files each process touched in the
	// dot, svg and tree formats, and the remote endpoints in dot and svg.
	ShowFiles bool
	// ShowNet (--net) shows each process's network entries in the tree.
	ShowNet bool
	// Output (-o) is the file to write; "" or "-" means Stdout.
	Output string
	// Verbose lists every skipped line of the auditd logs on Stderr.
	Verbose bool
	// Stdout receives the output without -o; Stderr the warnings.
	Stdout, Stderr io.Writer
	// DB, when set, is the database to rebuild the model from instead
	// of Files, and Selection what to take from it.
	DB        string
	Selection *store.Selection
}

// runAnalyze replays cfg.Files through the filter and writes the result in
// cfg.Format.
func runAnalyze(ctx context.Context, cfg *analyzeConfig) error {
	format := cfg.Format
	if format == "" {
		format = "json"
	}
	if cfg.DB != "" {
		db, err := store.Open(ctx, cfg.DB, &store.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		m, err := db.Model(ctx, cfg.Selection)
		if err != nil {
			return err
		}
		warnLosses(cfg.Stderr, m.Capture)
		return renderModel(ctx, cfg, format, m)
	}
	var out io.Writer // where the output goes, if not to a file
	if cfg.Output == "" || cfg.Output == "-" {
		out = cfg.Stdout
	}
	open, stderr, stop := startProgress(cfg.Stderr, out, cfg.Files)
	defer stop()
	c := *cfg
	cfg = &c
	cfg.Stderr = stderr
	s, err := replay.Open(cfg.Files, &replay.Options{Open: open, AuditTexts: analyze.ReadsAuditText})
	if err != nil {
		return err
	}
	defer s.Close()
	defer func() { reportLogs(cfg.Stderr, s.Info().Logs, cfg.Verbose) }()
	opts := cfg.Options
	if format == "html" {
		// The report embeds the JSON model: it reads it as it is built.
		var c analyze.Capture
		err := writeOutput(cfg.Output, cfg.Stdout, func(w io.Writer) error {
			return pipeHTML(w, func(mw io.Writer) (err error) {
				c, err = analyze.BuildJSON(mw, s, opts)
				return err
			})
		})
		if err == nil {
			warnLosses(cfg.Stderr, c)
		}
		return err
	}
	// JSON, the text tree, DOT and PROV are built and written as one, a
	// process at a time: the whole model is never held.
	var stream func(io.Writer) (analyze.Capture, error)
	dotOpts := &analyze.DOTOptions{Files: cfg.ShowFiles}
	switch format {
	case "json":
		stream = func(w io.Writer) (analyze.Capture, error) { return analyze.BuildJSON(w, s, opts) }
	case "tree":
		stream = func(w io.Writer) (analyze.Capture, error) {
			return analyze.BuildText(w, s, opts, &analyze.TextOptions{Files: cfg.ShowFiles, Net: cfg.ShowNet})
		}
	case "changes":
		stream = func(w io.Writer) (analyze.Capture, error) { return analyze.BuildChanges(w, s, opts) }
	case "dot":
		stream = func(w io.Writer) (analyze.Capture, error) { return analyze.BuildDOT(w, s, opts, dotOpts) }
	case "prov":
		stream = func(w io.Writer) (analyze.Capture, error) { return analyze.BuildPROV(w, s, opts) }
	case "svg":
		stream = func(w io.Writer) (c analyze.Capture, err error) {
			err = streamSVG(ctx, w, func(dot io.Writer) (err error) {
				c, err = analyze.BuildDOT(dot, s, opts, dotOpts)
				return err
			})
			return c, err
		}
	}
	if stream != nil {
		return writeOutput(cfg.Output, cfg.Stdout, func(w io.Writer) error {
			c, err := stream(w)
			if err == nil {
				warnLosses(cfg.Stderr, c)
			}
			return err
		})
	}
	m, err := analyze.Build(s, opts)
	if err != nil {
		return err
	}
	warnLosses(cfg.Stderr, m.Capture)
	return renderModel(ctx, cfg, format, m)
}

// renderModel writes m in format: the same bytes as the streamed
// outputs of runAnalyze for the model they build.
func renderModel(ctx context.Context, cfg *analyzeConfig, format string, m *analyze.Model) error {
	// The renderers stream: a large model's output is never held whole,
	// --html reads the JSON through a pipe, --svg feeds dot through one.
	dotOpts := &analyze.DOTOptions{Files: cfg.ShowFiles}
	var render func(io.Writer) error
	switch format {
	case "json":
		render = func(w io.Writer) error { return analyze.WriteJSON(w, m) }
	case "tree":
		render = func(w io.Writer) error {
			return analyze.WriteText(w, m, &analyze.TextOptions{Files: cfg.ShowFiles, Net: cfg.ShowNet})
		}
	case "html":
		render = func(w io.Writer) error {
			return pipeHTML(w, func(mw io.Writer) error { return analyze.WriteJSON(mw, m) })
		}
	case "dot":
		render = func(w io.Writer) error { return analyze.WriteDOT(w, m, dotOpts) }
	case "svg":
		render = func(w io.Writer) error {
			return streamSVG(ctx, w, func(dot io.Writer) error { return analyze.WriteDOT(dot, m, dotOpts) })
		}
	case "prov":
		render = func(w io.Writer) error { return analyze.WritePROV(w, m) }
	case "changes":
		render = func(w io.Writer) error { return analyze.WriteChanges(w, m) }
	default:
		return fmt.Errorf("analyze: unknown format %q", format)
	}
	return writeOutput(cfg.Output, cfg.Stdout, render)
}

// pipeHTML writes to w the HTML report of the JSON model that build
// writes, through a pipe: neither the model nor the page is held whole.
func pipeHTML(w io.Writer, build func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := build(pw)
		pw.CloseWithError(err) // nil: io.EOF for the reader
		done <- err
	}()
	err := report.WriteHTMLFrom(w, pr)
	pr.CloseWithError(errors.New("analyze: the report stopped reading")) // build returns if it was still writing
	if berr := <-done; berr != nil {
		return berr
	}
	return err
}

// streamSVG runs Graphviz's dot on what dot writes, and copies its SVG
// to w as it comes: the graph is never held. dot reads its whole input
// before it writes; when dot fails, so does the analysis, killed.
func streamSVG(ctx context.Context, w io.Writer, dot func(io.Writer) error) error {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return errors.New("analyze --svg needs Graphviz's dot, which is not installed (Debian: apt-get install graphviz)")
	}
	cmd := exec.CommandContext(ctx, bin, "-Tsvg")
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var errb bytes.Buffer
	out := &checkedWriter{w: w} // when it fails, dot dies of SIGPIPE
	cmd.Stdout, cmd.Stderr = out, &errb
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dot: %w", err)
	}
	werr := dot(in)
	if werr != nil {
		cmd.Process.Kill() // no SVG of half a graph
	}
	in.Close()
	err = cmd.Wait()
	switch {
	case out.err != nil:
		return out.err
	case werr != nil && errb.Len() == 0:
		return werr
	case err != nil:
		return fmt.Errorf("dot: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return werr
}

// writeOutput runs render on the file -o names, or on stdout. The file is
// created where -o says and nowhere else, at render's first write, so that
// an analysis that fails first leaves it alone; it is removed when render
// or the write fails later, so that no truncated output is left behind,
// unless it is not a regular file (a device such as /dev/full).
func writeOutput(output string, stdout io.Writer, render func(io.Writer) error) error {
	if output == "" || output == "-" {
		w := bufio.NewWriterSize(stdout, 64<<10)
		if err := render(w); err != nil {
			return err
		}
		return w.Flush()
	}
	f := &lazyFile{name: output}
	w := bufio.NewWriterSize(f, 64<<10)
	err := render(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil && f.f == nil {
		_, err = f.Write(nil) // an empty output is still a file
	}
	if f.f != nil {
		regular := regularFile(f.f)
		if cerr := f.f.Close(); err == nil {
			err = cerr
		}
		if err != nil && regular {
			os.Remove(output)
		}
	}
	return err
}

// lazyFile creates its file at the first Write.
type lazyFile struct {
	name string
	f    *os.File
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.f == nil {
		f, err := os.OpenFile(l.name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Write(p)
}

// warnLosses prints one warning line on stderr when the capture lost
// messages or bytes.
func warnLosses(w io.Writer, c analyze.Capture) {
	var parts []string
	if c.ConnectorLost > 0 {
		parts = append(parts, fmt.Sprintf("%d connector messages lost", c.ConnectorLost))
	}
	if c.AuditLost > 0 {
		parts = append(parts, fmt.Sprintf("%d audit messages lost", c.AuditLost))
	}
	if c.UnreadableBytes > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes of the capture unreadable", c.UnreadableBytes))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "proctrail: warning: %s; the trees may be incomplete\n", strings.Join(parts, ", "))
	}
}
