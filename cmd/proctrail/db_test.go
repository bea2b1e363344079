package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"proctrail/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// eachDB runs fn against a new SQLite file and a new database of the
// shared PostgreSQL test server.
func eachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "t.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Need(t)) })
}

// captureID is the capture id `info --json` shows.
func captureID(t *testing.T, capture string) string {
	t.Helper()
	code, out, stderr := runCLI(t, "info", "--json", capture)
	if code != 0 {
		t.Fatalf("info: %s", stderr)
	}
	var fi []struct {
		CaptureID string `json:"capture_id"`
	}
	if err := json.Unmarshal([]byte(out), &fi); err != nil || len(fi) != 1 {
		t.Fatalf("info --json: %v: %s", err, out)
	}
	return fi[0].CaptureID
}

// TestAnalyzeFromDatabase checks that `analyze --db DB --host H --pid N`
// writes the very bytes `analyze CAPTURE --pid N` writes, in every
// format, for each test capture.
func TestAnalyzeFromDatabase(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/analyze/*")
	// Each test capture is a set: one file, or (rotated) several.
	var sets [][]string
	var all []string
	for _, d := range dirs {
		if files, _ := filepath.Glob(filepath.Join(d, "capture*.zst")); len(files) > 0 {
			sets = append(sets, files)
			all = append(all, files...)
		}
	}
	if len(sets) == 0 {
		t.Fatal("no capture matches ../../testdata/analyze/*/capture*.zst")
	}
	eachDB(t, func(t *testing.T, dsn string) {
		args := append([]string{"load", "--db", dsn}, all...)
		if code, out, stderr := runCLI(t, args...); code != 0 || strings.Count(out, "\n") != len(all) {
			t.Fatalf("load: exit %d\n%s%s", code, out, stderr)
		}
		for _, set := range sets {
			name := filepath.Base(filepath.Dir(set[0]))
			id := captureID(t, set[0])
			// The command's process, and the whole capture.
			code, out, stderr := runCLI(t, append([]string{"analyze"}, append(set, "--cmd", "--json")...)...)
			if code != 0 {
				t.Fatalf("%s: analyze --cmd: exit %d: %s", name, code, stderr)
			}
			var doc struct {
				Processes []struct {
					PID int `json:"pid"`
				} `json:"processes"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Processes) == 0 {
				t.Fatalf("%s: no command process (%v)", name, err)
			}
			pid := fmt.Sprint(doc.Processes[0].PID)
			for _, sel := range [][]string{{"--pid", pid}, {"--cmd"}, {}} {
				for _, format := range [][]string{{"--tree"}, {"--tree", "--files"}, {"--json"}, {"--html"}, {"--dot", "--files"}, {"--prov"}} {
					flags := append(append([]string(nil), sel...), format...)
					t.Run(name+" "+strings.Join(flags, " "), func(t *testing.T) {
						code, want, stderr := runCLI(t, append(append([]string{"analyze"}, set...), flags...)...)
						if code != 0 {
							t.Fatalf("analyze capture: exit %d: %s", code, stderr)
						}
						code, got, stderr := runCLI(t, append([]string{"analyze", "--db", dsn, "--host", "vm", "--capture", id[:8]}, flags...)...)
						if code != 0 {
							t.Fatalf("analyze --db: exit %d: %s", code, stderr)
						}
						if want != got {
							t.Fatalf("analyze --db wrote other bytes than analyze of the capture:\n%s", firstDiff(want, got))
						}
					})
				}
			}
		}
		// The test captures all come from host vm: without --capture a
		// pid they share is ambiguous, and the error lists the sets.
		code, _, stderr := runCLI(t, "analyze", "--db", dsn, "--host", "vm", "--pid", "1", "--tree")
		if code != 1 || !strings.Contains(stderr, "several capture sets match host \"vm\", with pid 1") || strings.Count(stderr, "\n") != len(sets)+1 {
			t.Errorf("ambiguous pid: exit %d, stderr:\n%s", code, stderr)
		}
		code, _, stderr = runCLI(t, "analyze", "--db", dsn, "--host", "nohost", "--pid", "1")
		if code != 1 || !strings.Contains(stderr, `no capture set matches host "nohost"`) {
			t.Errorf("unknown host: exit %d, stderr %s", code, stderr)
		}
	})
}

// firstDiff shows where two outputs part.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-200)
	return fmt.Sprintf("at byte %d:\n--- capture:\n%s\n--- database:\n%s", i, a[lo:min(len(a), i+200)], b[lo:min(len(b), i+200)])
}

func TestLoadCommand(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	eachDB(t, func(t *testing.T, dsn string) {
		code, out, stderr := runCLI(t, "load", "--db", dsn, capture)
		if code != 0 || !strings.Contains(out, "capture 9e4ef834acf0566c32b68c19d7a16402 file 0: loaded 86 processes") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		code, out, _ = runCLI(t, "load", "--db", dsn, capture, "/nonexistent.zst")
		if code != 1 || !strings.Contains(out, "loaded before, unchanged") {
			t.Fatalf("again: exit %d, stdout %q", code, out)
		}
	})
	if code, _, stderr := runCLI(t, "load"); code != 2 || !strings.Contains(stderr, "no file given") {
		t.Errorf("no file: exit %d, %s", code, stderr)
	}
}

func TestQueryCommand(t *testing.T) {
	capture := "../../testdata/analyze/pipeline/capture.zst"
	const q = "SELECT p.pid, p.comm, p.start_time, p.before_capture, p.uid, p.exit_code FROM processes p WHERE p.pid IN (11821, 11824) ORDER BY p.pid"
	eachDB(t, func(t *testing.T, dsn string) {
		if code, _, stderr := runCLI(t, "load", "--db", dsn, capture); code != 0 {
			t.Fatal(stderr)
		}
		// Not a terminal: JSON.
		code, out, stderr := runCLI(t, "query", "--db", dsn, q)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if len(rows) != 2 || rows[0]["comm"] != "mv" || rows[0]["pid"] != float64(11821) || rows[0]["before_capture"] != false || rows[1]["comm"] != "rm" || rows[0]["exit_code"] != float64(0) {
			t.Errorf("rows %v", rows)
		}
		if s, _ := rows[0]["start_time"].(string); !strings.HasPrefix(s, "2026-11-26T21:03:47.3734") || len(s) != len("2026-11-26T21:03:47.373472827Z") {
			t.Errorf("start_time %q", rows[0]["start_time"])
		}
		code, out, _ = runCLI(t, "query", "--db", dsn, "--format", "csv", q)
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if code != 0 || err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "pid,comm,start_time,before_capture,uid,exit_code" || recs[2][1] != "rm" {
			t.Errorf("csv: exit %d, %v, %q", code, err, out)
		}
		code, out, _ = runCLI(t, "query", "--db", dsn, "--format", "table", q)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[0], "pid    comm  start_time") || !strings.HasPrefix(lines[1], "-----  ----  ---") || lines[4] != "(2 rows)" {
			t.Errorf("table: exit %d:\n%s", code, out)
		}
		// Read-only: a statement that writes fails, and changes nothing.
		code, _, stderr = runCLI(t, "query", "--db", dsn, "DELETE FROM processes")
		if code != 1 || !strings.Contains(stderr, "proctrail: query:") {
			t.Errorf("DELETE: exit %d, %s", code, stderr)
		}
		_, out, _ = runCLI(t, "query", "--db", dsn, "--format", "csv", "SELECT count(*) AS n FROM processes")
		if out != "n\n86\n" {
			t.Errorf("after the DELETE: %q", out)
		}
		code, _, stderr = runCLI(t, "query", "--db", dsn, "SELEKT 1")
		if code != 1 || !strings.Contains(stderr, "syntax") {
			t.Errorf("bad SQL: exit %d, %s", code, stderr)
		}
	})
	if code, _, stderr := runCLI(t, "query", "--db", filepath.Join(t.TempDir(), "none.db"), "SELECT 1"); code != 1 || !strings.Contains(stderr, "no database") {
		t.Errorf("missing database: exit %d, %s", code, stderr)
	}
}

// TestQueryHostileNames: names from a capture reach a terminal table
// quoted, and come back byte for byte in CSV, also when they are not
// UTF-8 (stored escaped; see store).
func TestQueryHostileNames(t *testing.T) {
	p := testCapture(t) // a process named "a\nb"
	eachDB(t, func(t *testing.T, dsn string) {
		if code, _, stderr := runCLI(t, "load", "--db", dsn, p); code != 0 {
			t.Fatal(stderr)
		}
		_, out, _ := runCLI(t, "query", "--db", dsn, "--format", "table", "SELECT comm, argv FROM processes")
		if !strings.Contains(out, `"a\nb"`) || strings.Contains(out, "a\nb") {
			t.Errorf("table:\n%s", out)
		}
		_, out, _ = runCLI(t, "query", "--db", dsn, "--format", "csv", "SELECT comm FROM processes")
		if !bytes.Contains([]byte(out), []byte("\"a\nb\"")) {
			t.Errorf("csv: %q", out)
		}
	})
}

// TestLoadClosedOnly: a file held open for writing (as the recorder
// holds its current file) is skipped, and loaded once closed.
func TestLoadClosedOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("open files are found in /proc")
	}
	src, err := os.ReadFile("../../testdata/analyze/threads/capture.zst")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trace.zst")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(src); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "t.db")
	code, out, stderr := runCLI(t, "load", "--closed-only", "--db", db, p)
	if code != 0 || out != "" || !strings.Contains(stderr, "still open for writing, not loaded") {
		t.Fatalf("open file: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	f.Close()
	code, out, stderr = runCLI(t, "load", "--closed-only", "--db", db, p)
	if code != 0 || !strings.Contains(out, "loaded 79 processes") {
		t.Fatalf("closed file: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
