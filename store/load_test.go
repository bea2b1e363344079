package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/formats"
	"proctrail/replay"
)

// TestHelperLoad is not a test: TestKillMidLoad runs the test binary
// as a loader that stops before committing, to kill it there.
func TestHelperLoad(t *testing.T) {
	dsn, file := os.Getenv("STORE_HELPER_DB"), os.Getenv("STORE_HELPER_FILE")
	if dsn == "" {
		t.Skip("a helper process of TestKillMidLoad")
	}
	testHookBeforeCommit = func() {
		fmt.Println("written, not committed")
		select {} // until killed
	}
	db, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Load(context.Background(), file)
	t.Fatalf("the load ended (%v): it should have waited to be killed", err)
}

// TestKillMidLoad kills a loader (SIGKILL) once it has written all of a
// file's rows but not committed: the database is as it was.
func TestKillMidLoad(t *testing.T) {
	ctx := context.Background()
	files := testCaptures(t)
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		dsn := newDB(t)
		db := open(t, dsn)
		if _, err := db.Load(ctx, files[0]); err != nil {
			t.Fatal(err)
		}
		before := dump(t, db)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLoad$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STORE_HELPER_DB="+dsn, "STORE_HELPER_FILE="+files[1])
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.Contains(line, "written, not committed") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the loader said %q (%v)", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		// A new handle, as after a crash: SQLite rolls back what the
		// killed writer left in its journal; PostgreSQL ended its
		// transaction with its connection.
		db2 := open(t, dsn)
		if diff := cmp.Diff(before, dump(t, db2)); diff != "" {
			t.Fatalf("the killed load changed the database:\n%s", diff)
		}
		if !db2.Postgres() {
			var ok string
			if err := db2.sql.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
				t.Fatalf("integrity_check: %q, %v", ok, err)
			}
		}
		// And the file loads whole afterwards.
		res, err := db2.Load(ctx, files[1])
		if err != nil || !res.Loaded {
			t.Fatalf("load after the kill: %+v, %v", res, err)
		}
	})
}

// TestConcurrentLoaders runs loaders at once, each with a database
// handle of its own (its own connections), on the same files in
// different orders: they neither fail nor duplicate anything, and the
// database is the one that loading them one by one makes.
func TestConcurrentLoaders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	set := splitCapture(t, "../testdata/analyze/pipeline/capture.zst", dir, 3)
	var files []string
	for _, f := range testCaptures(t) {
		if !strings.Contains(f, "/pipeline/") { // the set is the pipeline's, split
			files = append(files, f)
		}
	}
	files = append(files, set...)
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		serial := open(t, newDB(t))
		for _, f := range files {
			if _, err := serial.Load(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		want := dump(t, serial)
		dsn := newDB(t)
		const loaders = 4
		var wg sync.WaitGroup
		errs := make([]error, loaders)
		loaded := make([]int, loaders)
		for i := range loaders {
			db := open(t, dsn) // migrations at once too
			order := append([]string(nil), files...)
			for j := range order { // each loader its own order
				k := (j*(i+1) + i) % len(order)
				order[j], order[k] = order[k], order[j]
			}
			wg.Go(func() {
				for _, f := range order {
					res, err := db.Load(ctx, f)
					if err != nil {
						errs[i] = err
						return
					}
					if res.Loaded {
						loaded[i]++
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("loader %d: %v", i, err)
			}
			total += loaded[i]
		}
		if total != len(files) {
			t.Errorf("%d loads loaded a file, want %d (each file once)", total, len(files))
		}
		if diff := cmp.Diff(want, dump(t, open(t, dsn))); diff != "" {
			t.Fatalf("loaders at once made another database than one by one:\n%s", diff)
		}
	})
}

// auditLog writes the audit records of a capture as auditd's log does
// (`proctrail replay --format audit`'s lines), and returns its lines.
func auditLog(t *testing.T, capture string) []string {
	t.Helper()
	s, err := replay.Open([]string{capture}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var lines []string
	for {
		m, err := s.Next()
		if err != nil {
			break
		}
		if m.Source != formats.SourceAudit || m.Audit == nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("type=%s msg=%s", m.Audit.Type, m.Audit.Text))
	}
	if len(lines) == 0 {
		t.Fatalf("%s has no audit record", capture)
	}
	return lines
}

// TestAuditLogs loads an auditd log, the same log grown (it replaces
// the first load: same set, derived from its first record), and the
// log gzip-compressed (loaded before: same set, and the content is
// compared as the file's bytes, so it replaces again, with the same
// rows).
func TestAuditLogs(t *testing.T) {
	ctx := context.Background()
	lines := auditLog(t, "../testdata/analyze/pipeline/capture.zst")
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	half := strings.Join(lines[:len(lines)/2], "\n") + "\n"
	whole := strings.Join(lines, "\n") + "\n"
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		db := open(t, newDB(t))
		if err := os.WriteFile(log, []byte(half), 0o644); err != nil {
			t.Fatal(err)
		}
		first, err := db.Load(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		if first.Source != SourceAuditd || !first.Loaded || first.Processes == 0 || first.Seq != 0 {
			t.Fatalf("first load: %+v", first)
		}
		again, err := db.Load(ctx, log)
		if err != nil || again.Loaded {
			t.Fatalf("the same log again: %+v, %v", again, err)
		}
		if err := os.WriteFile(log, []byte(whole), 0o644); err != nil {
			t.Fatal(err)
		}
		grown, err := db.Load(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		if !grown.Replaced || grown.CaptureID != first.CaptureID || grown.FileAccesses <= first.FileAccesses {
			t.Fatalf("the grown log: %+v, first %+v", grown, first)
		}
		sets, err := db.Captures(ctx, &Selection{})
		if err != nil || len(sets) != 1 || sets[0].Files != 1 {
			t.Fatalf("sets %+v, %v: want the one log", sets, err)
		}
		// Its model is analyze's of the log.
		got, err := db.Model(ctx, &Selection{CaptureID: first.CaptureID})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(build(t, []string{log}, nil), got, modelOpts); d != "" {
			t.Fatalf("model of the log (-analyze +database):\n%s", d)
		}
	})
}

// TestChangedRecording refuses a recording's file loaded before with
// other content, and leaves the database as it was.
func TestChangedRecording(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	set := splitCapture(t, "../testdata/analyze/pipeline/capture.zst", dir, 2)
	other := splitCapture(t, "../testdata/analyze/pipeline/capture.zst", t.TempDir(), 3)
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		db := open(t, newDB(t))
		if _, err := db.Load(ctx, set[0]); err != nil {
			t.Fatal(err)
		}
		before := dump(t, db)
		_, err := db.Load(ctx, other[0]) // same set and sequence, cut elsewhere
		if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "file 0 of capture 9e4ef834") {
			t.Fatalf("error %v, want ErrChanged naming the file", err)
		}
		if diff := cmp.Diff(before, dump(t, db)); diff != "" {
			t.Fatalf("the refused load changed the database:\n%s", diff)
		}
	})
}

func TestNotACapture(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(p, []byte{0, 1, 2, 0xff, 0xfe, 0}, 0o644)
	db := open(t, filepath.Join(t.TempDir(), "t.db"))
	_, err := db.Load(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v, want one naming %s", err, p)
	}
}
