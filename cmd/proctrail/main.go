// Command proctrail records process and file activity from the kernel's
// process connector and Linux audit, and analyzes the captures offline.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// usageError marks errors in how proctrail was called: exit code 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "proctrail",
		Usage:     "record process trees, file accesses and containers from the kernel; analyze them offline",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Usage: "log debug messages", EnvVars: []string{"PROCTRAIL_VERBOSE"}},
		},
		Before: func(c *cli.Context) error {
			level := slog.LevelInfo
			if c.Bool("verbose") {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
		Commands: []*cli.Command{
			recordCommand(),
			infoCommand(),
			replayCommand(),
			analyzeCommand(),
			importCommand(),
			cutCommand(),
			loadCommand(),
			queryCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsageError
	}
	return app
}

func onUsageError(_ *cli.Context, err error, _ bool) error { return usageError{err} }

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &checkedWriter{w: stdout}
	app := newApp(out, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil && out.err != nil {
		// Output written where no error is returned (help, version)
		// did not reach stdout either: a full disk is never exit 0.
		err = out.err
	}
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	}
	fmt.Fprintf(stderr, "proctrail: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// interspersed lets flags follow the file names, as in
// `proctrail analyze trace.zst --dot`: urfave/cli (like Go's flag package)
// stops reading flags at the first argument, so the flags of a subcommand
// are moved before its arguments, which follow a "--". Flags that take a
// value keep it ("--pid 7"). record is left alone: what follows its flags
// is a command line with flags of its own.
func interspersed(app *cli.App, args []string) []string {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // the global flags are all booleans
	}
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil || cmd.Name == "record" {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	out := append([]string(nil), args[:i+1]...)
	var pos []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j+1:]...)
			j = len(rest)
		case len(a) > 1 && a[0] == '-':
			out = append(out, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && j+1 < len(rest) {
				j++
				out = append(out, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return out
	}
	return append(append(out, "--"), pos...)
}

// exitCode is returned by a command to exit with that code and no message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// checkedWriter keeps the first error of its writer. Each command reports
// its own write errors; this catches the output of code that drops them,
// such as urfave/cli's help and version printers.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

// rawWriter returns the writer under a checkedWriter: record hands
// proctrail's own stdout to its command, so that a terminal stays a
// terminal and the command's writes are its own.
func rawWriter(w io.Writer) io.Writer {
	if c, ok := w.(*checkedWriter); ok {
		return c.w
	}
	return w
}

// regularFile reports whether f is a regular file. Only a regular output
// file is removed when a write fails, so that no truncated output is left
// behind: -o may also name a device or a pipe (/dev/full, /dev/stdout),
// which must survive, and root can remove device nodes.
func regularFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}
