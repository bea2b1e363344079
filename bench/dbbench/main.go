// Command dbbench measures the results store (proctrail load, query) on a
// recorded workload, against SQLite and a throwaway PostgreSQL server it
// starts (internal/pgtest: initdb in a temporary directory, a unix socket,
// no TCP), and prints markdown tables:
//
//   - load rate in rows/s, and load time ÷ `analyze --json` of the same
//     capture (medians of -runs, alternating), with peak memory;
//
//   - database bytes per audit event;
//
//   - "processes that touched path X" on a database of at least -accesses
//     file accesses: the capture is rewritten under new capture ids (the
//     packets unchanged, as another rotated set would be) and loaded as
//     many times as needed; the query's median time over -queries runs.
//
//     dbbench -proctrail bin/proctrail -capture w32.zst [-runs 3] [-accesses 10000000]
//
// Needs /usr/bin/time (peak memory) and PostgreSQL's server binaries.
// Raw numbers go to -json when given.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"proctrail/formats"
	"proctrail/internal/pgtest"
	"proctrail/store"
)

var (
	bin      = flag.String("proctrail", "bin/proctrail", "the proctrail binary")
	capture  = flag.String("capture", "", "the capture to load (the issue-4 workload at 32x)")
	runs     = flag.Int("runs", 3, "runs of each timed command")
	queries  = flag.Int("queries", 21, "runs of each query")
	accesses = flag.Int64("accesses", 10_000_000, "file accesses in the database the query runs on (0: skip)")
	work     = flag.String("work", "", "scratch directory (default: a new one under $TMPDIR, removed)")
	out      = flag.String("json", "", "write the raw numbers to this file")
)

// stopServer stops the PostgreSQL server, if one runs: fatal and a
// signal call it, since os.Exit skips deferred calls.
var stopServer = func() {}

func fatal(v ...any) {
	stopServer()
	log.Fatal(v...)
}

func fatalf(format string, v ...any) {
	stopServer()
	log.Fatalf(format, v...)
}

type result struct {
	Name   string    `json:"name"`
	Secs   []float64 `json:"secs"`
	PeakKB []int64   `json:"peak_kb"`
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("dbbench: ")
	if *capture == "" {
		fatal("-capture is required")
	}
	dir := *work
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fatal(err)
		}
	} else {
		d, err := os.MkdirTemp("", "proctrail-dbbench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	// The server runs as the postgres user under root: it must reach its
	// directory, made in this one.
	if err := os.Chmod(dir, 0o755); err != nil {
		fatal(err)
	}
	// A server as durable as a real one: fsync and synchronous commits.
	srv, err := pgtest.Start(dir, "fsync=on", "synchronous_commit=on", "full_page_writes=on", "shared_buffers=256MB")
	if err != nil {
		fatal(err)
	}
	var once sync.Once
	stopServer = func() { once.Do(func() { srv.Stop() }) }
	defer stopServer()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		stopServer()
		os.Exit(130)
	}()
	ctx := context.Background()
	raw := map[string]any{}

	// Load time against analyze time, alternating, each into a new
	// database.
	var analyzeRes = result{Name: "analyze --json"}
	loads := map[string]*result{"sqlite": {Name: "load (SQLite)"}, "postgres": {Name: "load (PostgreSQL)"}}
	var rows int64
	var events int64
	sizes := map[string]int64{}
	for i := range *runs {
		secs, kb := timed(dir, *bin, "analyze", "--json", "-o", filepath.Join(dir, "out.json"), *capture)
		analyzeRes.Secs, analyzeRes.PeakKB = append(analyzeRes.Secs, secs), append(analyzeRes.PeakKB, kb)
		for _, kind := range []string{"sqlite", "postgres"} {
			dsn := filepath.Join(dir, fmt.Sprintf("load%d.db", i))
			if kind == "postgres" {
				if dsn, err = srv.NewDB(ctx); err != nil {
					fatal(err)
				}
			}
			secs, kb := timed(dir, *bin, "load", "--db", dsn, *capture)
			r := loads[kind]
			r.Secs, r.PeakKB = append(r.Secs, secs), append(r.PeakKB, kb)
			n, ev, size := stats(ctx, dsn)
			rows, events, sizes[kind] = n, ev, size
			if kind == "sqlite" {
				os.Remove(dsn)
			}
		}
		log.Printf("run %d: analyze %.2fs, load sqlite %.2fs, postgres %.2fs", i+1, analyzeRes.Secs[i], loads["sqlite"].Secs[i], loads["postgres"].Secs[i])
	}
	raw["analyze"], raw["loads"], raw["rows"], raw["events"], raw["bytes"] = analyzeRes, loads, rows, events, sizes

	fmt.Printf("Load of %s (%d audit events, %d rows), median of %d runs:\n\n", filepath.Base(*capture), events, rows, *runs)
	fmt.Println("| | s | rows/s | ÷ analyze --json | peak RSS MiB | database bytes | bytes per audit event |")
	fmt.Println("|---|---|---|---|---|---|---|")
	a := median(analyzeRes.Secs)
	fmt.Printf("| analyze --json | %.2f | | 1.00× | %d | | |\n", a, medianInt(analyzeRes.PeakKB)>>10)
	for _, kind := range []string{"sqlite", "postgres"} {
		r := loads[kind]
		s := median(r.Secs)
		fmt.Printf("| %s | %.2f | %s | %.2f× | %d | %s | %.1f |\n", r.Name, s, thousands(int64(float64(rows)/s)), s/a,
			medianInt(r.PeakKB)>>10, thousands(sizes[kind]), float64(sizes[kind])/float64(events))
	}
	fmt.Println()

	if *accesses > 0 {
		big(ctx, srv, dir, raw)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(raw, "", " ")
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			fatal(err)
		}
	}
}

// big loads copies of the capture under new ids until the databases hold
// -accesses file accesses, then times the path query on each.
func big(ctx context.Context, srv *pgtest.Server, dir string, raw map[string]any) {
	pg, err := srv.NewDB(ctx)
	if err != nil {
		fatal(err)
	}
	lite := filepath.Join(dir, "big.db")
	dsns := map[string]string{"sqlite": lite, "postgres": pg}
	var total int64
	for i := 0; total < *accesses; i++ {
		copyName := filepath.Join(dir, fmt.Sprintf("copy%d.zst", i))
		recapture(*capture, copyName)
		for _, kind := range []string{"sqlite", "postgres"} {
			secs, _ := timed(dir, *bin, "load", "--db", dsns[kind], copyName)
			log.Printf("copy %d into %s: %.2fs", i+1, kind, secs)
		}
		os.Remove(copyName)
		total = count(ctx, lite, "SELECT count(*) FROM file_accesses")
	}
	// The path: the most touched one, and one touched once.
	common := str(ctx, lite, "SELECT p.path FROM file_accesses f JOIN paths p ON p.capture = f.capture AND p.id = f.path GROUP BY p.path ORDER BY count(*) DESC LIMIT 1")
	rare := str(ctx, lite, "SELECT p.path FROM file_accesses f JOIN paths p ON p.capture = f.capture AND p.id = f.path GROUP BY p.path ORDER BY count(*), p.path LIMIT 1")
	const q = `SELECT c.host, p.pid, p.start_time, p.exe, t.accesses
FROM process_paths t
JOIN processes p ON p.id = t.process
JOIN captures c ON c.id = p.capture
WHERE t.path = '%s'`
	fmt.Printf("\"Processes that touched path X\" on %s file accesses (%d capture sets), median of %d runs:\n\n", thousands(total), count(ctx, lite, "SELECT count(*) FROM captures"), *queries)
	fmt.Println("| path | accesses to it | processes | SQLite ms | PostgreSQL ms |")
	fmt.Println("|---|---|---|---|---|")
	times := map[string]map[string][]float64{}
	for _, path := range []string{common, rare} {
		sql := fmt.Sprintf(q, strings.ReplaceAll(path, "'", "''"))
		n := count(ctx, lite, fmt.Sprintf("SELECT count(*) FROM file_accesses f JOIN paths x ON x.capture = f.capture AND x.id = f.path WHERE x.path = '%s'", strings.ReplaceAll(path, "'", "''")))
		times[path] = map[string][]float64{}
		var procs int
		for _, kind := range []string{"sqlite", "postgres"} {
			db, err := store.Open(ctx, dsns[kind], &store.Options{ReadOnly: true})
			if err != nil {
				fatal(err)
			}
			for range *queries {
				t0 := time.Now()
				procs = 0
				if err := db.Query(ctx, sql, func([]string) error { return nil }, func([]any) error { procs++; return nil }); err != nil {
					fatal(err)
				}
				times[path][kind] = append(times[path][kind], time.Since(t0).Seconds()*1000)
			}
			db.Close()
		}
		fmt.Printf("| `%s` | %s | %s | %.1f | %.1f |\n", path, thousands(n), thousands(int64(procs)), median(times[path]["sqlite"]), median(times[path]["postgres"]))
	}
	fmt.Println()
	fi, _ := os.Stat(lite)
	_, _, pgSize := stats(ctx, pg)
	fmt.Printf("Database sizes: SQLite %s bytes, PostgreSQL %s bytes.\n", thousands(fi.Size()), thousands(pgSize))
	raw["query_ms"], raw["big_accesses"] = times, total
}

// recapture copies the capture src to dst under a new capture id.
func recapture(src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		fatal(err)
	}
	defer in.Close()
	r, err := formats.NewReader(in, nil)
	if err != nil {
		fatal(err)
	}
	defer r.Close()
	h := r.Header()
	id := make([]byte, 16)
	rand.Read(id)
	h.CaptureID = hex.EncodeToString(id)
	f, err := os.Create(dst)
	if err != nil {
		fatal(err)
	}
	w, err := formats.NewWriter(f, &formats.Options{Header: h})
	if err != nil {
		fatal(err)
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fatal(err)
		}
		if err := w.WritePacket(rec.Source, rec.Time, rec.Data); err != nil {
			fatal(err)
		}
	}
	for s := range formats.Source(formats.NumSources) {
		if st, ok := r.Stats(s); ok {
			w.SetStats(s, st)
		}
	}
	if err := w.Close(); err != nil {
		fatal(err)
	}
	if err := f.Close(); err != nil {
		fatal(err)
	}
}

var peakRe = regexp.MustCompile(`(?m)^PEAK (\d+) (\S+)$`)

// timed runs the command under /usr/bin/time: wall seconds and peak RSS.
func timed(dir, name string, args ...string) (float64, int64) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "PEAK %M %e", name}, args...)...)
	cmd.Dir = "."
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	wall := time.Since(t0).Seconds()
	m := peakRe.FindStringSubmatch(stderr.String())
	if m == nil {
		fatalf("no peak memory in %q", stderr.String())
	}
	kb, _ := strconv.ParseInt(m[1], 10, 64)
	_ = dir
	return wall, kb
}

// stats returns the rows of the bulk tables, the audit events and the
// database's size in bytes.
func stats(ctx context.Context, dsn string) (rows, events, size int64) {
	for _, t := range []string{"processes", "execs", "threads", "file_accesses", "paths", "process_paths"} {
		rows += count(ctx, dsn, "SELECT count(*) FROM "+t)
	}
	events = count(ctx, dsn, "SELECT sum(audit_events) FROM captures")
	if store.IsPostgres(dsn) {
		size = count(ctx, dsn, "SELECT pg_database_size(current_database())")
	} else {
		// After a checkpoint, the file holds it all.
		db, err := store.Open(ctx, dsn, nil)
		if err != nil {
			fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			fatal(err)
		}
		db.Close()
		fi, err := os.Stat(dsn)
		if err != nil {
			fatal(err)
		}
		size = fi.Size()
	}
	return rows, events, size
}

func count(ctx context.Context, dsn, q string) int64 {
	v := str(ctx, dsn, q)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		fatalf("%s: %q: %v", q, v, err)
	}
	return n
}

func str(ctx context.Context, dsn, q string) string {
	db, err := store.Open(ctx, dsn, &store.Options{ReadOnly: true})
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	var v string
	err = db.Query(ctx, q, func([]string) error { return nil }, func(row []any) error {
		v = fmt.Sprint(row[0])
		return nil
	})
	if err != nil {
		fatalf("%s: %v", q, err)
	}
	return v
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianInt(xs []int64) int64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
