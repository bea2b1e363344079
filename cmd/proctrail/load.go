package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"proctrail/formats"
	"proctrail/store"
)

// dbFlag is the --db flag of load and query.
func dbFlag() cli.Flag {
	return &cli.StringFlag{Name: "db", Value: "proctrail.db", EnvVars: []string{"PROCTRAIL_DB"},
		Usage: "the database: a SQLite file `DB` (created if missing), or a postgres:// URL"}
}

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:      "load",
		Usage:     "load the analysis of captures or auditd logs into a SQLite or PostgreSQL database",
		ArgsUsage: "FILE…",
		Description: `Analyzes each file alone and stores its processes, execs, threads, file accesses
and containers (the schema is in the README), one transaction per file: a
failure or a kill leaves the database as it was. A file loaded before is
skipped; the files of a rotated set may be loaded one by one as they close, in
any order, and a process that spans files is one row. Loaders may run at once.
Query the database with 'proctrail query', draw a tree with 'analyze --db'.

Example:
   proctrail load trace.zst trace.1.zst                 # into ./proctrail.db
   proctrail load --db /var/lib/proctrail/results.db /var/log/audit/audit.log
   proctrail load --db postgres://proctrail@db.example/proctrail /var/log/proctrail/*.zst`,
		Flags: []cli.Flag{
			dbFlag(),
			&cli.BoolFlag{Name: "closed-only", Usage: "skip the files a process holds open for writing (the recorder's current file), as /proc shows them (run as root to see every process)"},
			&cli.BoolFlag{Name: verboseFlag, Aliases: []string{"v"}, Usage: "list every line of auditd logs that was skipped, with file and line number"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("load: no file given")
			}
			files := c.Args().Slice()
			if c.Bool("closed-only") {
				open := openForWriting(files)
				var closed []string
				for _, f := range files {
					if open[f] {
						fmt.Fprintf(c.App.ErrWriter, "proctrail: %s: still open for writing, not loaded\n", quoteControl(f))
						continue
					}
					closed = append(closed, f)
				}
				if files = closed; len(files) == 0 {
					return nil
				}
			}
			return runLoad(c.Context, c.String("db"), files, c.Bool(verboseFlag), c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runLoad loads files into the database dsn, one line per file on
// stdout. A file that fails is reported on stderr and the others are
// still loaded; the error returned then says how many failed.
func runLoad(ctx context.Context, dsn string, files []string, verbose bool, stdout, stderr io.Writer) error {
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	failed := 0
	for _, f := range loadOrder(files) {
		t0 := time.Now()
		res, err := db.Load(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("load: interrupted: %s not loaded", quoteControl(f))
			}
			fmt.Fprintf(stderr, "proctrail: %v\n", err)
			failed++
			continue
		}
		reportLogs(stderr, res.Logs, verbose)
		if !res.Loaded {
			fmt.Fprintf(stdout, "%s: capture %s file %d: loaded before, unchanged\n", quoteControl(f), res.CaptureID, res.Seq)
			continue
		}
		warnLosses(stderr, res.Capture)
		verb := "loaded"
		if res.Replaced {
			verb = "replaced its earlier load with"
		}
		fmt.Fprintf(stdout, "%s: capture %s file %d: %s %d processes, %d execs, %d threads, %d file accesses (%d paths); %d rows merged with other files; %.2fs\n",
			quoteControl(f), res.CaptureID, res.Seq, verb, res.Processes, res.Execs, res.Threads, res.FileAccesses, res.Paths, res.Merged, time.Since(t0).Seconds())
	}
	if failed > 0 {
		return fmt.Errorf("load: %d of %d files failed", failed, len(files))
	}
	return nil
}

// loadOrder puts the files of each rotated set in sequence order (any
// order loads the same rows, this one the fastest), the rest as given.
func loadOrder(files []string) []string {
	keys := map[string]setKey{}
	for _, f := range files {
		keys[f] = headerKey(f)
	}
	out := slices.Clone(files)
	slices.SortStableFunc(out, func(a, b string) int {
		ka, kb := keys[a], keys[b]
		if ka.id == "" || kb.id == "" || ka.id != kb.id {
			return 0
		}
		return cmp.Compare(ka.seq, kb.seq)
	})
	return out
}

// setKey is a capture file's place in its set.
type setKey struct {
	id  string
	seq int
}

// headerKey reads a capture's set id and sequence number; zero for
// anything else (Load reports what is wrong with it).
func headerKey(name string) (k setKey) {
	f, err := os.Open(name)
	if err != nil {
		return k
	}
	defer f.Close()
	r, err := formats.NewReader(f, &formats.ReaderOptions{Name: name})
	if err != nil {
		return k
	}
	defer r.Close()
	h := r.Header()
	k.id, k.seq = h.CaptureID, h.Sequence
	return k
}

func queryCommand() *cli.Command {
	return &cli.Command{
		Name:      "query",
		Usage:     "run a read-only SQL query on a results database (see load)",
		ArgsUsage: "SQL",
		Description: `Runs one SQL statement, read-only, and prints its result: a table on a
terminal, JSON otherwise (an array of objects, one a line), or CSV. Times are
RFC 3339 UTC; write them as the database shows them
('2026-11-24T00:00:00.000000000Z'): the same SQL runs on SQLite and PostgreSQL.
The schema and example queries are in the README.

Example:
   proctrail query "SELECT c.host, p.pid, p.exe, p.start_time FROM file_accesses f
     JOIN paths x ON x.capture = f.capture AND x.id = f.path
     JOIN processes p ON p.id = f.process JOIN captures c ON c.id = p.capture
     WHERE x.path = '/etc/cron.d/backup' AND (f.mode IN ('w', 'rw') OR f.op <> 'open')"
   proctrail query --db postgres://proctrail@db/proctrail --format csv 'SELECT * FROM captures' > captures.csv`,
		Flags: []cli.Flag{
			dbFlag(),
			&cli.StringFlag{Name: "format", Usage: "`FORMAT` of the result: table, json or csv (default: table on a terminal, else json)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("query: give one SQL statement (quote it)")
			}
			format := c.String("format")
			switch format {
			case "":
				format = "json"
				if f, ok := rawWriter(c.App.Writer).(*os.File); ok && isTerminal(f) {
					format = "table"
				}
			case "table", "json", "csv":
			default:
				return usagef("query: --format must be table, json or csv, not %q", format)
			}
			return runQuery(c.Context, c.String("db"), c.Args().First(), format, c.App.Writer)
		},
	}
}

func runQuery(ctx context.Context, dsn, q, format string, stdout io.Writer) error {
	if !store.IsPostgres(dsn) {
		if _, err := os.Stat(dsn); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("query: no database %s (proctrail load makes one; --db names another)", dsn)
		}
	}
	db, err := store.Open(ctx, dsn, &store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return writeOutput("", stdout, func(w io.Writer) error {
		out := newResultWriter(w, format)
		if err := db.Query(ctx, q, out.columns, out.row); err != nil {
			return fmt.Errorf("query: %w", err)
		}
		return out.end()
	})
}
