package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"proctrail/internal/pgtest"
	"proctrail/internal/testenv"
)

// TestIntegrationLoadRotatedRecording records a real rotated set (64 KiB
// files) while one process lives across every file, then loads the files
// one by one as the loader units would, in order into one database and
// in reverse into another: the same rows, and the long process is one row
// spanning every file.
func TestIntegrationLoadRotatedRecording(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "trace.zst")
	// A host process from before the recording forks subshells that
	// never exec, in every file: in a later file it is known first as
	// their parent, and each file alone must give them the same identity
	// whatever the order the files are loaded in.
	host := exec.Command("bash", "-c", `while :; do x=$(cat /etc/hostname); sleep 0.01; done`)
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		host.Process.Kill()
		host.Wait()
	}()
	// sleep lives across the whole recording; the loop fills the files.
	script := `sleep 2 & i=0; while [ $i -lt 1500 ]; do /bin/true; i=$((i+1)); done; wait`
	if code, _, stderr := runCLI(t, "record", "-o", out, "--rotate-size", "64K", "--rotate-count", "100", "--", "sh", "-c", script); code != 0 {
		t.Fatalf("record: exit %d: %s", code, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "trace*.zst"))
	if len(files) < 3 {
		t.Fatalf("the recording made %d files, want a rotated set of 3 or more", len(files))
	}
	files = loadOrder(files)
	const q = `SELECT p.pid, p.start_time, p.end_time, p.exit_code, p.exe, p.first_seq, p.last_seq,
  (SELECT count(*) FROM file_accesses f WHERE f.process = p.id) AS accesses,
  (SELECT count(*) FROM threads x WHERE x.process = p.id) AS threads
FROM processes p ORDER BY p.pid, p.start_time, p.first_seq`
	var dumps []string
	for i, dsn := range []string{filepath.Join(t.TempDir(), "t.db"), ""} {
		if dsn == "" {
			dsn = pgtest.Need(t)
		}
		order := slices.Clone(files)
		if i == 1 {
			slices.Reverse(order)
		}
		for _, f := range order {
			if code, _, stderr := runCLI(t, "load", "--db", dsn, f); code != 0 {
				t.Fatalf("load %s: exit %d: %s", f, code, stderr)
			}
		}
		code, got, stderr := runCLI(t, "query", "--db", dsn, "--format", "csv", q)
		if code != 0 {
			t.Fatal(stderr)
		}
		dumps = append(dumps, got)
		// The command's sleep (the host may run others meanwhile).
		code, sleep, stderr := runCLI(t, "query", "--db", dsn, "--format", "csv", `SELECT count(*), min(first_seq), max(last_seq), min(end_time) IS NOT NULL
FROM processes WHERE exe = '/usr/bin/sleep' AND parent IN (SELECT id FROM processes WHERE command)`)
		if code != 0 {
			t.Fatal(stderr)
		}
		lines := strings.Split(strings.TrimSpace(sleep), "\n")
		var n, first, last int
		var ended string
		if len(lines) == 2 {
			f := strings.Split(lines[1], ",")
			if len(f) == 4 {
				n, _ = strconv.Atoi(f[0])
				first, _ = strconv.Atoi(f[1])
				last, _ = strconv.Atoi(f[2])
				ended = f[3]
			}
		}
		if n != 1 || first != 0 || last < 2 || (ended != "true" && ended != "1") {
			t.Errorf("the sleep across the set: %q, want one row from file 0 over 3 files or more, ended", sleep)
		}
	}
	// PostgreSQL prints times to the microsecond: compare without them.
	strip := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			f := strings.Split(l, ",")
			if len(f) > 3 {
				f[1], f[2] = f[1][:min(len(f[1]), 26)], f[2][:min(len(f[2]), 26)]
			}
			out = append(out, strings.Join(f, ","))
		}
		return out
	}
	if a, b := strip(dumps[0]), strip(dumps[1]); !slices.Equal(a, b) {
		t.Errorf("in order into SQLite and reversed into PostgreSQL give other rows:\n%s\n---\n%s", dumps[0], dumps[1])
	}
}
