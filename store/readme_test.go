package store

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/internal/pgtest"
)

// readme returns the README's SQL block that follows <!-- marker -->.
func readme(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- " + marker + " -->\n```sql\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("README.md has no ```sql block after <!-- %s -->", marker)
	}
	return string(m[1])
}

// queryRows runs q and returns its rows, each value as fmt.Sprint
// prints it.
func queryRows(t *testing.T, db *DB, q string) [][]string {
	t.Helper()
	var out [][]string
	err := db.Query(context.Background(), q, func([]string) error { return nil }, func(row []any) error {
		r := make([]string, len(row))
		for i, v := range row {
			r[i] = fmt.Sprint(v)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return out
}

func TestReadmeSchemaDiagram(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "```mermaid\n" + mermaid() + "```"
	if !strings.Contains(string(b), want) {
		t.Fatalf("README.md's schema diagram is not the schema's; it should read:\n%s", want)
	}
}

// wrote reports whether f changed its path (the README's rule).
func wrote(f analyze.File) bool {
	return f.Error == "" && (f.Mode == "w" || f.Mode == "rw" || !slices.Contains([]string{"open", "exec", "chdir"}, f.Op))
}

// TestReadmeQuestions runs the README's five questions on both
// databases, loaded with the test captures, and checks the answers
// against analyze's models of those captures.
func TestReadmeQuestions(t *testing.T) {
	ctx := context.Background()
	files := testCaptures(t)
	var models []*analyze.Model
	for _, f := range files {
		models = append(models, build(t, []string{f}, nil))
	}
	each := func(fn func(p *analyze.Process)) {
		for _, m := range models {
			walk(m, fn)
		}
	}
	const (
		path      = "/tmp/proctrail-testdata.IYOlgH/container/bundle/config.json"
		container = "9516a9c4b2bf47cb60c9cb98f2a20c69c732ecbb65d0e9c820a6f9e5dfe325d5"
		dayStart  = "2026-11-26T00:00:00.000000000Z"
		// The container's /data, on the host (under its rootfs).
		volume = "/tmp/proctrail-testdata.IYOlgH/container/bundle/rootfs/data/"
		dayEnd = "2026-11-27T00:00:00.000000000Z"
	)
	day := func(ns int64) bool { return ns >= 1795651200e9 && ns < 1795737600e9 } // 26 November 2026, UTC

	// The answers, from analyze.
	var want1, want2, want3, want4, want5 []string
	each(func(p *analyze.Process) {
		for _, e := range p.Net {
			if e.Addr == "::1" && e.Op == "connect" {
				want3 = append(want3, fmt.Sprint(p.PID, " ", e.Port))
			}
		}
		for _, f := range p.Files {
			if (f.Path == path || f.To == path) && wrote(f) {
				want1 = append(want1, fmt.Sprint(p.PID, " ", f.Op))
			}
			if (strings.HasPrefix(f.Path, volume) || strings.HasPrefix(f.To, volume)) && wrote(f) && day(f.Open) {
				want5 = append(want5, strings.TrimSpace(fmt.Sprint(p.PID, " ", f.Op, " ", f.Path, " ", f.To)))
			}
		}
		if p.Container == container && p.Start < 1795737600e9 && (p.End == 0 || p.End >= 1795651200e9) {
			want2 = append(want2, fmt.Sprint(p.PID))
		}
		for _, x := range p.Execs {
			if strings.HasPrefix(x.Exe, "/tmp/") || strings.HasPrefix(x.Exe, "/dev/shm/") {
				want4 = append(want4, fmt.Sprint(p.PID, " ", x.Exe))
			}
		}
	})
	for _, w := range [][]string{want1, want2, want3, want4, want5} {
		if len(w) == 0 {
			t.Fatal("a question has no answer in the test captures: the test proves nothing")
		}
		slices.Sort(w)
	}

	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		db := open(t, newDB(t))
		for _, f := range files {
			if _, err := db.Load(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name string, want []string, q string, cols ...int) {
			t.Helper()
			var got []string
			for _, r := range queryRows(t, db, q) {
				var parts []string
				for _, c := range cols {
					parts = append(parts, strings.TrimSuffix(r[c], "<nil>"))
				}
				got = append(got, strings.TrimSpace(strings.Join(parts, " ")))
			}
			slices.Sort(got)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s (-analyze +query):\n%s\n%s", name, d, q)
			}
		}
		q1 := strings.Replace(readme(t, "q1"), "'/etc/cron.d/backup'", "'"+path+"'", 1)
		check("question 1", want1, q1, 1, 5)
		q2 := strings.NewReplacer("'3f2a%'", "'"+container[:8]+"%'",
			"'2026-11-25T00:00:00.000000000Z'", "'"+dayEnd+"'", "'2026-11-24T00:00:00.000000000Z'", "'"+dayStart+"'").Replace(readme(t, "q2"))
		check("question 2", want2, q2, 2)
		check("question 3", want3, strings.Replace(readme(t, "q3"), "'203.0.113.7'", "'::1'", 1), 1, 4)
		check("question 4", want4, readme(t, "q4"), 2, 1)
		q5 := strings.NewReplacer("'/etc/%'", "'"+volume+"%'",
			"'2026-11-24T00:00:00.000000000Z'", "'"+dayStart+"'", "'2026-11-24T06:00:00.000000000Z'", "'"+dayEnd+"'").Replace(readme(t, "q5"))
		check("question 5", want5, q5, 5, 2, 3, 4)
		// Unchanged, the examples' path, container, address, day and
		// directory are not in the test captures.
		for _, q := range []string{"q1", "q2", "q3", "q5"} {
			if rows := queryRows(t, db, readme(t, q)); len(rows) != 0 {
				t.Errorf("%s as in the README: %d rows, want none", q, len(rows))
			}
		}
	})
}

// TestReadmePartitioning runs the README's partitioning of
// file_accesses on PostgreSQL, loads into the partitioned table, asks a
// question, then runs the retention statements.
func TestReadmePartitioning(t *testing.T) {
	ctx := context.Background()
	files := testCaptures(t)
	db := open(t, pgtest.Need(t))
	if _, err := db.Load(ctx, files[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.sql.ExecContext(ctx, readme(t, "partition")); err != nil {
		t.Fatalf("partitioning: %v", err)
	}
	for _, f := range files[1:] {
		if _, err := db.Load(ctx, f); err != nil {
			t.Fatalf("load into the partitioned table: %v", err)
		}
	}
	count := func(q string) string { return queryRows(t, db, q)[0][0] }
	if n := count("SELECT count(*) FROM file_accesses_2026_11"); n == "0" {
		t.Fatal("no access in the November partition")
	}
	// The model still comes back whole.
	for _, f := range files {
		id, err := identify(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Model(ctx, &Selection{CaptureID: id.captureID})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(build(t, []string{f}, nil), got, modelOpts); d != "" {
			t.Fatalf("%s from the partitioned table (-analyze +database):\n%s", f, d)
		}
	}
	// Retention removes the sets that ended before December 2026 and
	// keeps the others (the test captures were recorded in November and
	// December), but for their accesses of November.
	const cut = "'2026-12-01T00:00:00Z'"
	kept := "(SELECT id FROM captures WHERE end_time >= " + cut + ")"
	keptProcs := "(SELECT id FROM processes WHERE capture IN " + kept + ")"
	tables := map[string]string{
		"captures":      "id IN " + kept,
		"capture_files": "capture IN " + kept,
		"processes":     "capture IN " + kept,
		"execs":         "process IN " + keptProcs,
		"threads":       "process IN " + keptProcs,
		"paths":         "capture IN " + kept,
		"containers":    "capture IN " + kept,
		"file_accesses": "capture IN " + kept + " AND open_time >= " + cut,
		"process_paths": "capture IN " + kept,
	}
	names := slices.Sorted(maps.Keys(tables))
	want := map[string]string{}
	for _, tb := range names {
		want[tb] = count("SELECT count(*) FROM " + tb + " WHERE " + tables[tb])
	}
	if want["captures"] == count("SELECT count(*) FROM captures") {
		t.Fatal("every test capture ended after the retention cut: the test removes nothing")
	}
	if _, err := db.sql.ExecContext(ctx, readme(t, "retention")); err != nil {
		t.Fatalf("retention: %v", err)
	}
	for _, tb := range names {
		if n := count("SELECT count(*) FROM " + tb); n != want[tb] {
			t.Errorf("%s: %s rows left after retention, want %s (of the sets that ended after it)", tb, n, want[tb])
		}
	}
	// And loading goes on.
	if res, err := db.Load(ctx, files[0]); err != nil || !res.Loaded {
		t.Fatalf("load after retention: %+v, %v", res, err)
	}
}
