package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMigrateFromVersion1 makes a database of schema 1 (the tables as
// they were, without what schema 2 added), loads a capture into it, and
// checks that the migration brought it to the schema a new database has
// (the same columns, in the same order) and that the model comes back as
// analyze makes it.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	files := testCaptures(t)
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		dsn := newDB(t)
		db := open(t, dsn)
		// A new database is of the latest schema; make one of schema 1.
		for _, tb := range slices.Backward(tables) {
			if _, err := db.sql.ExecContext(ctx, "DROP TABLE "+tb.name); err != nil {
				t.Fatal(err)
			}
		}
		for _, stmt := range append(db.d.ddlAt(1), "INSERT INTO schema_version (version) VALUES (1)") {
			if _, err := db.sql.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%v\n%s", err, stmt)
			}
		}
		if cols := columnsOf(t, db, "file_accesses"); slices.Contains(cols, "perm") {
			t.Fatalf("schema 1's file_accesses has perm: %q", cols)
		}
		db.Close()
		db = open(t, dsn) // migrates
		if v, err := db.version(ctx, db.sql); err != nil || v != SchemaVersion {
			t.Fatalf("version %d, %v after the migration; want %d", v, err, SchemaVersion)
		}
		fresh := open(t, newDB(t))
		for _, tb := range tables {
			if d := cmp.Diff(columnsOf(t, fresh, tb.name), columnsOf(t, db, tb.name)); d != "" {
				t.Errorf("%s: columns (-new database +migrated):\n%s", tb.name, d)
			}
		}
		f := files[0]
		for _, c := range files {
			if filepath.Base(filepath.Dir(c)) == "overlay" {
				f = c // mounts: file accesses with details, a container's paths
			}
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
		if want := build(t, []string{f}, nil); !bytes.Equal(jsonOf(t, want), jsonOf(t, got)) {
			t.Fatal("JSON differs after the migration")
		}
	})
}

// columnsOf lists the columns of a table in their order.
func columnsOf(t *testing.T, db *DB, table string) []string {
	t.Helper()
	q := fmt.Sprintf("SELECT name FROM pragma_table_info('%s') ORDER BY cid", table)
	if db.d == postgres {
		q = fmt.Sprintf("SELECT column_name FROM information_schema.columns WHERE table_name = '%s' AND table_schema = current_schema() ORDER BY ordinal_position", table)
	}
	rs, err := db.sql.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
