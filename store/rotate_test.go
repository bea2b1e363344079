package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"proctrail/analyze"
	"proctrail/formats"
)

// splitCapture rewrites the capture src as a rotated set of parts files
// in dir, cut at equal counts of packets, as the recorder rotates: each
// file starts with the set's section header (the same capture id, the
// next sequence number) and carries the sources' cumulative counters.
// It returns the files in sequence order.
func splitCapture(t *testing.T, src, dir string, parts int) []string {
	t.Helper()
	count := func() int {
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := formats.NewReader(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return n
			}
			n++
		}
	}
	total := count()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := formats.NewReader(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hdr := r.Header()
	if hdr.CaptureID == "" {
		t.Fatalf("%s has no capture id", src)
	}
	var files []string
	var w *formats.Writer
	var out *os.File
	closeFile := func() {
		for s := range formats.Source(formats.NumSources) {
			if st, ok := r.Stats(s); ok {
				w.SetStats(s, st)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; ; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if w == nil || (i >= total*len(files)/parts && len(files) < parts) {
			if w != nil {
				closeFile()
			}
			h := hdr
			h.Sequence = len(files)
			name := filepath.Join(dir, fmt.Sprintf("trace.%d.zst", h.Sequence))
			if h.Sequence == 0 {
				name = filepath.Join(dir, "trace.zst")
			}
			if out, err = os.Create(name); err != nil {
				t.Fatal(err)
			}
			if w, err = formats.NewWriter(out, &formats.Options{Header: h}); err != nil {
				t.Fatal(err)
			}
			for s := range formats.Source(formats.NumSources) {
				if st, ok := r.Stats(s); ok {
					w.SetStats(s, st)
				}
			}
			files = append(files, name)
		}
		if err := w.WritePacket(rec.Source, rec.Time, rec.Data); err != nil {
			t.Fatal(err)
		}
	}
	closeFile()
	return files
}

// dump is the content of every table, ids replaced by what they stand
// for, in a stable order: equal dumps are equal databases.
func dump(t *testing.T, db *DB) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	q := func(prefix, query string) {
		rs, err := db.sql.QueryContext(ctx, query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer rs.Close()
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString(prefix)
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&b, " %s=%v", cols[i], v)
			}
			out = append(out, b.String())
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	const proc = "c.capture_id, p.pid, p.start_time, p.start_time_nsec"
	q("capture", "SELECT capture_id, source, host, kernel, start_time, end_time, connector_messages, connector_lost, audit_messages, audit_events, audit_lost, audit_gaps, procfs_records, unreadable_bytes, skipped_lines FROM captures")
	q("file", "SELECT c.capture_id, f.seq, f.sha256, f.name FROM capture_files f JOIN captures c ON c.id = f.capture")
	q("container", "SELECT c.capture_id, k.id, k.runtime, k.rootfs FROM containers k JOIN captures c ON c.id = k.capture")
	q("process", "SELECT "+proc+", p.end_time, p.end_time_nsec, p.ppid, q.pid AS parent_pid, q.start_time AS parent_start, p.exit_code, p.signal, p.core_dumped, p.uid, p.comm, p.exe, p.argv, p.cwd, p.before_capture, p.command, p.container, p.first_seq, p.last_seq FROM processes p JOIN captures c ON c.id = p.capture LEFT JOIN processes q ON q.id = p.parent")
	q("exec", "SELECT "+proc+", x.seq, x.n, x.exec_time, x.exe, x.argv, x.cwd FROM execs x JOIN processes p ON p.id = x.process JOIN captures c ON c.id = p.capture")
	q("thread", "SELECT "+proc+", x.seq, x.n, x.tid, x.start_time, x.end_time, x.end_time_nsec FROM threads x JOIN processes p ON p.id = x.process JOIN captures c ON c.id = p.capture")
	q("file_access", "SELECT "+proc+", x.seq, x.n, a.path, x.op, x.mode, x.open_time, x.close_time, x.close_time_nsec, b.path AS to_path, x.error FROM file_accesses x JOIN processes p ON p.id = x.process JOIN captures c ON c.id = p.capture JOIN paths a ON a.capture = x.capture AND a.id = x.path LEFT JOIN paths b ON b.capture = x.capture AND b.id = x.to_path")
	q("process_path", "SELECT "+proc+", x.path, x.accesses FROM process_paths x JOIN processes p ON p.id = x.process JOIN captures c ON c.id = p.capture")
	slices.Sort(out)
	return out
}

func TestRotatedSet(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		capture string
		parts   int
		orders  [][]int
	}{
		{"pipeline", 3, [][]int{{0, 1, 2}, {2, 1, 0}, {0, 2, 1}, {1, 0, 2}}},
		{"container", 5, [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {0, 2, 4, 1, 3}, {3, 1, 4, 0, 2}}},
		{"threads", 4, [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.capture, func(t *testing.T) {
			src := "../testdata/analyze/" + tc.capture + "/capture.zst"
			files := splitCapture(t, src, t.TempDir(), tc.parts)
			whole := build(t, []string{src}, nil)
			id, err := identify(src)
			if err != nil {
				t.Fatal(err)
			}
			eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
				var first []string
				for _, order := range tc.orders {
					t.Run(fmt.Sprint(order), func(t *testing.T) {
						db := open(t, newDB(t))
						for _, i := range order {
							res, err := db.Load(ctx, files[i])
							if err != nil {
								t.Fatal(err)
							}
							if !res.Loaded {
								t.Fatalf("%s not loaded: %+v", files[i], res)
							}
						}
						d := dump(t, db)
						if first == nil {
							first = d
							checkOneRowPerProcess(t, db, id.captureID, whole)
						} else if diff := cmp.Diff(first, d); diff != "" {
							t.Fatalf("loading %v gives another database than in order (-in order +this order):\n%s", order, diff)
						}
						// Loading them again changes nothing.
						for _, f := range files {
							res, err := db.Load(ctx, f)
							if err != nil {
								t.Fatal(err)
							}
							if res.Loaded {
								t.Fatalf("%s loaded twice: %+v", f, res)
							}
						}
						if diff := cmp.Diff(d, dump(t, db)); diff != "" {
							t.Fatalf("loading the files again changed the database:\n%s", diff)
						}
					})
				}
			})
		})
	}
}

// checkOneRowPerProcess checks that every process of the whole
// capture's analysis is one row of the rotated set's: the same pid,
// start, end and exit, whichever files it was seen in.
func checkOneRowPerProcess(t *testing.T, db *DB, captureID string, whole *analyze.Model) {
	t.Helper()
	m, err := db.Model(context.Background(), &Selection{CaptureID: captureID})
	if err != nil {
		t.Fatal(err)
	}
	type life struct {
		start, end int64
		exited     bool
		code, sig  int
	}
	rows := map[int32][]life{}
	spanning := 0
	walk(m, func(p *analyze.Process) {
		rows[p.PID] = append(rows[p.PID], life{p.Start, p.End, p.Exited, p.ExitCode, p.Signal})
	})
	rs, err := db.sql.QueryContext(context.Background(), "SELECT count(*) FROM processes WHERE first_seq < last_seq")
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		rs.Scan(&spanning)
	}
	rs.Close()
	if spanning == 0 {
		t.Fatal("no process spans two files: the test proves nothing")
	}
	walk(whole, func(p *analyze.Process) {
		var hits []life
		for _, r := range rows[p.PID] {
			if (p.End == 0 || r.start <= p.End) && (r.end == 0 || r.end >= p.Start) {
				hits = append(hits, r)
			}
		}
		want := life{p.Start, p.End, p.Exited, p.ExitCode, p.Signal}
		switch {
		case len(hits) != 1:
			t.Errorf("pid %d (%s, %s to %s) is %d rows: %+v", p.PID, p.Comm, fmtTime(p.Start), fmtTime(p.End), len(hits), hits)
		default:
			got := hits[0]
			// Analyzed alone, a file whose audit records of a process
			// come before its fork event may start it at their time
			// (whole milliseconds), within the millisecond; a process
			// alive before recording starts when first seen.
			if !exact(got.start) && got.start <= want.start && want.start-got.start < 1_000_000 || p.BeforeCapture {
				got.start = want.start
			}
			if got != want {
				t.Errorf("pid %d (%s) is %+v, want %+v", p.PID, p.Comm, hits[0], want)
			}
		}
	})
	t.Logf("%d processes span files", spanning)
}

func walk(m *analyze.Model, fn func(p *analyze.Process)) {
	stack := slices.Clone(m.Processes)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(p)
		stack = append(stack, p.Children...)
	}
}

// TestRecordedRotatedSet loads a set the recorder rotated (four files,
// a pipeline whose processes span them) in several orders: the
// database's model is what analyze makes of the whole set, every time.
func TestRecordedRotatedSet(t *testing.T) {
	ctx := context.Background()
	files := []string{
		"../testdata/analyze/rotated/capture.zst",
		"../testdata/analyze/rotated/capture.1.zst",
		"../testdata/analyze/rotated/capture.2.zst",
		"../testdata/analyze/rotated/capture.3.zst",
	}
	whole := build(t, files, nil)
	id, err := identify(files[0])
	if err != nil {
		t.Fatal(err)
	}
	eachDB(t, func(t *testing.T, newDB func(*testing.T) string) {
		for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}} {
			t.Run(fmt.Sprint(order), func(t *testing.T) {
				db := open(t, newDB(t))
				for _, i := range order {
					if res, err := db.Load(ctx, files[i]); err != nil || !res.Loaded {
						t.Fatalf("%s: %+v, %v", files[i], res, err)
					}
				}
				got, err := db.Model(ctx, &Selection{CaptureID: id.captureID})
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(whole, got, modelOpts); d != "" {
					t.Fatalf("loaded in order %v (-analyze of the set +database):\n%s", order, d)
				}
			})
		}
	})
}
