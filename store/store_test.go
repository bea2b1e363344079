package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"proctrail/analyze"
	"proctrail/internal/pgtest"
	"proctrail/replay"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// eachDB runs fn against SQLite and against PostgreSQL (the shared test
// server): newDB makes a new, empty database of that kind.
func eachDB(t *testing.T, fn func(t *testing.T, newDB func(t *testing.T) string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "t.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		pgtest.Need(t) // skips, or fails under CI, before fn runs
		fn(t, func(t *testing.T) string { return pgtest.Need(t) })
	})
}

func open(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testCaptures are the analyze testdata captures.
func testCaptures(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../testdata/analyze/*/capture.zst")
	if len(files) == 0 {
		t.Fatal("no capture matches ../testdata/analyze/*/capture.zst")
	}
	return files
}

// build is what analyze makes of files with opts.
func build(t *testing.T, files []string, opts *analyze.Options) *analyze.Model {
	t.Helper()
	s, err := replay.Open(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := analyze.Build(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var modelOpts = cmp.Options{cmpopts.EquateEmpty()}

func jsonOf(t *testing.T, m *analyze.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := analyze.WriteJSON(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pids returns every pid of the model.
func pids(m *analyze.Model) []int32 {
	var out []int32
	seen := map[int32]bool{}
	stack := append([]*analyze.Process(nil), m.Processes...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen[p.PID] {
			seen[p.PID] = true
			out = append(out, p.PID)
		}
		stack = append(stack, p.Children...)
	}
	return out
}

func TestLoadRebuildsModel(t *testing.T) {
	ctx := context.Background()
	files := testCaptures(t)
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		db := open(t, newDB(t))
		for _, f := range files {
			res, err := db.Load(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Loaded || res.Processes == 0 {
				t.Fatalf("%s: %+v", f, res)
			}
		}
		for _, f := range files {
			t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
				want := build(t, []string{f}, nil)
				id, err := identify(f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := db.Model(ctx, &Selection{CaptureID: id.captureID})
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, got, modelOpts); d != "" {
					t.Fatalf("model (-analyze +database):\n%s", d)
				}
				if !bytes.Equal(jsonOf(t, want), jsonOf(t, got)) {
					t.Fatal("JSON differs")
				}
				ps := pids(want)
				for _, pid := range ps[:min(len(ps), 8)] {
					want := build(t, []string{f}, &analyze.Options{Pid: pid})
					got, err := db.Model(ctx, &Selection{Host: "vm", CaptureID: id.captureID, Pid: pid})
					if err != nil {
						t.Fatal(err)
					}
					if d := cmp.Diff(want, got, modelOpts); d != "" {
						t.Fatalf("pid %d: model (-analyze +database):\n%s", pid, d)
					}
				}
			})
		}
	})
}

// TestMigrateNetProto takes a database of schema 1 (net without proto,
// port 32-bit) to the current one, then loads the network capture into
// it: the same model as analyze's.
func TestMigrateNetProto(t *testing.T) {
	ctx := context.Background()
	f := "../testdata/analyze/net/capture.zst"
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		dsn := newDB(t)
		db := open(t, dsn)
		// Back to schema 1.
		stmts := []string{"ALTER TABLE net DROP COLUMN proto", "UPDATE schema_version SET version = 1"}
		if db.d == postgres {
			stmts = append(stmts, "ALTER TABLE net ALTER COLUMN port TYPE integer")
		}
		for _, s := range stmts {
			if _, err := db.SQL().ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		db.Close()
		db = open(t, dsn)
		if v, err := db.version(ctx, db.sql); err != nil || v != SchemaVersion {
			t.Fatalf("version %d, %v after Open; want %d", v, err, SchemaVersion)
		}
		if _, err := db.Load(ctx, f); err != nil {
			t.Fatal(err)
		}
		id, err := identify(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Model(ctx, &Selection{CaptureID: id.captureID})
		if err != nil {
			t.Fatal(err)
		}
		want := build(t, []string{f}, nil)
		if !bytes.Equal(jsonOf(t, want), jsonOf(t, got)) {
			t.Fatal("JSON differs")
		}
		if !bytes.Contains(jsonOf(t, got), []byte(`"proto": "route"`)) {
			t.Fatal("no netlink entry with its protocol")
		}
	})
}
