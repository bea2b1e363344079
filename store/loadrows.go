package store

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"proctrail/analyze"
)

// The rows of a load: the file accesses and the paths they name, the
// processes, and the capture's files.

// resolveFiles gives the pending file accesses their paths' ids and
// queues them.
func (l *loader) resolveFiles(ctx context.Context) error {
	if len(l.files) == 0 {
		return nil
	}
	var names []string
	for i := range l.files {
		f := &l.files[i].f
		names = append(names, f.Path)
		if f.To != "" {
			names = append(names, f.To)
		}
	}
	if err := l.paths.resolve(ctx, l, names); err != nil {
		return err
	}
	seq := int32(l.id.seq)
	for _, pf := range l.files {
		f := &pf.f
		var to any
		if f.To != "" {
			to = l.paths.ids[f.To]
		}
		var size, serial, unresolved any
		if f.Unresolved {
			unresolved = true
		}
		if n, err := strconv.ParseInt(f.Size, 10, 64); err == nil {
			size = n
		}
		if f.Serial != 0 && f.Serial <= math.MaxInt64 {
			serial = int64(f.Serial)
		}
		if err := l.b.add("file_accesses", fileCols, l.capKey, pf.process, seq, pf.n, l.paths.ids[f.Path],
			encodeText(f.Op), optText(f.Mode), l.tv(f.Open), l.otv(f.Close), to, optText(f.Error),
			nsecVal(f.Open), nsecVal(f.Close), optText(f.Target), optText(f.Perm), optText(f.Owner), optText(f.Type),
			optText(f.Flags), size, serial, optText(f.ContainerPath), optText(f.ToContainerPath), optText(f.Filesystem), unresolved); err != nil {
			return err
		}
	}
	clear(l.files)
	l.files, l.unseen = l.files[:0], 0
	return nil
}

// touchRow is a process_paths row to add to, after the walk.
type touchRow struct {
	process int64
	path    string // stored form
	n       int64
}

// addTouches adds the counts of processes visit merged into rows of
// earlier files, which may have touched the same paths.
func (l *loader) addTouches(ctx context.Context) error {
	for chunk := range slices.Chunk(l.adds, 200) {
		var args []any
		for _, r := range chunk {
			args = append(args, r.path, l.capKey, r.process, r.n)
		}
		if _, err := l.w.exec(ctx, "INSERT INTO process_paths (path, capture, process, accesses) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", len(chunk)), ",")+
			" ON CONFLICT (path, capture, process) DO UPDATE SET accesses = process_paths.accesses + excluded.accesses", args...); err != nil {
			return err
		}
	}
	l.adds = nil
	return nil
}

func optText(s string) any {
	if s == "" {
		return nil
	}
	return encodeText(s)
}

// pathBatch is how many new paths are looked up at once.
const pathBatch = 1000

// pathIDs numbers a set's paths. Under the set's lock no other loader
// adds paths to it, so the numbers are taken from the largest, and a
// path loaded with an earlier file of the set is looked up on the pool
// (it is committed).
type pathIDs struct {
	ids  map[string]int32
	next int32
	old  bool // the set had paths before this load
}

func (pi *pathIDs) init(ctx context.Context, l *loader) error {
	pi.ids = map[string]int32{}
	pi.next = 1
	if !l.found {
		return nil
	}
	r, err := l.w.query(ctx, "SELECT coalesce(max(id), 0) FROM paths WHERE capture = ?", l.capKey)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		if err := r.Scan(&pi.next); err != nil {
			return err
		}
	}
	pi.old = pi.next > 0
	pi.next++
	return r.Err()
}

func (pi *pathIDs) known(p string) bool {
	_, ok := pi.ids[p]
	return ok
}

// resolve gives every name an id: an earlier file's, or a new one whose
// row it queues.
func (pi *pathIDs) resolve(ctx context.Context, l *loader, names []string) error {
	var unknown []string
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := pi.ids[n]; !ok && !seen[n] {
			seen[n] = true
			unknown = append(unknown, n)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	if pi.old {
		for chunk := range slices.Chunk(unknown, 500) {
			args := []any{l.capKey}
			for _, n := range chunk {
				args = append(args, encodeText(n))
			}
			q := l.db.rebind("SELECT id, path FROM paths WHERE capture = ? AND path IN (" + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + ")")
			rs, err := l.db.sql.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			for rs.Next() {
				var id int32
				var p string
				if err := rs.Scan(&id, &p); err != nil {
					rs.Close()
					return err
				}
				pi.ids[decodeText(p)] = id
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				return err
			}
		}
	}
	for _, n := range unknown {
		if _, ok := pi.ids[n]; ok {
			continue
		}
		pi.ids[n] = pi.next
		if err := l.b.add("paths", pathCols, l.capKey, pi.next, encodeText(n)); err != nil {
			return err
		}
		pi.next++
	}
	return nil
}

// procRow is a processes row, its values in the stored form.
type procRow struct {
	id         int64
	pid        int32
	start, end int64
	ppid       int32
	parent     any // int64 or nil
	exitCode   any // int32 or nil
	signal     any // int32 or nil
	coreDumped bool
	uid        any // int64 or nil
	comm       string
	exe        string
	argv       string
	cwd        string
	before     bool
	command    bool
	container  any // string or nil
	firstSeq   int32
	lastSeq    int32
}

func (l *loader) procRow(p *analyze.Process, parentID any) procRow {
	r := procRow{pid: p.PID, start: p.Start, end: p.End, ppid: p.PPID, parent: parentID, coreDumped: p.CoreDumped,
		comm: encodeText(p.Comm), exe: encodeText(p.Exe), argv: encodeArgv(p.Argv), cwd: encodeText(p.Cwd),
		before: p.BeforeCapture, command: p.Command, firstSeq: int32(l.id.seq), lastSeq: int32(l.id.seq)}
	if p.Exited {
		if p.Signal != 0 {
			r.signal = int32(p.Signal)
		} else {
			r.exitCode = int32(p.ExitCode)
		}
	}
	if p.UID >= 0 {
		r.uid = p.UID
	}
	if p.Container != "" {
		r.container = encodeText(p.Container)
	}
	return r
}

func (l *loader) procVals(r *procRow) []any {
	return []any{r.id, l.capKey, r.pid, l.tv(r.start), l.otv(r.end), r.ppid, r.parent, r.exitCode, r.signal,
		r.coreDumped, r.uid, r.comm, r.exe, r.argv, r.cwd, r.before, r.command, r.container, r.firstSeq, r.lastSeq,
		nsecVal(r.start), nsecVal(r.end)}
}

const procSelect = "SELECT id, pid, start_time, start_time_nsec, end_time, end_time_nsec, ppid, parent, exit_code, signal, core_dumped, uid, comm, exe, argv, cwd, before_capture, command, container, first_seq, last_seq FROM processes"

// scanProc reads a row of procSelect.
func scanProc(r rows) (procRow, error) {
	var p procRow
	var start, end any
	var startN, endN int64
	var parent, exitCode, signal, uid *int64
	var container *string
	if err := r.Scan(&p.id, &p.pid, &start, &startN, &end, &endN, &p.ppid, &parent, &exitCode, &signal, &p.coreDumped,
		&uid, &p.comm, &p.exe, &p.argv, &p.cwd, &p.before, &p.command, &container, &p.firstSeq, &p.lastSeq); err != nil {
		return p, err
	}
	var err error
	if p.start, err = scanTime(start, startN); err != nil {
		return p, err
	}
	if p.end, err = scanTime(end, endN); err != nil {
		return p, err
	}
	if parent != nil {
		p.parent = *parent
	}
	if exitCode != nil {
		p.exitCode = int32(*exitCode)
	}
	if signal != nil {
		p.signal = int32(*signal)
	}
	if uid != nil {
		p.uid = *uid
	}
	if container != nil {
		p.container = *container
	}
	return p, nil
}

// addFile records the file, and the set's totals over its files.
func (l *loader) addFile(ctx context.Context) error {
	db, c := l.db, l.cap
	q := "INSERT INTO capture_files (capture, seq, sha256, name, bytes, start_time, end_time, " + strings.Join(countCols, ", ") +
		", start_time_nsec, end_time_nsec) VALUES (?, ?, ?, ?, ?, ?, ?, " + strings.TrimSuffix(strings.Repeat("?, ", len(countCols)), " ") + " ?, ?)"
	args := []any{l.capKey, int32(l.id.seq), l.id.sha256, encodeText(l.id.name), l.id.size, db.optTimeVal(c.Start), db.optTimeVal(c.End)}
	args = append(args, countVals(c)...)
	args = append(args, nsecVal(c.Start), nsecVal(c.End))
	if _, err := l.w.exec(ctx, q, args...); err != nil {
		return err
	}
	files, err := readFiles(ctx, l.w, l.capKey)
	if err != nil {
		return err
	}
	t := totals(files)
	args = []any{db.optTimeVal(t.Start), db.optTimeVal(t.End)}
	args = append(args, countVals(t)...)
	args = append(args, nsecVal(t.Start), nsecVal(t.End), l.capKey)
	_, err = l.w.exec(ctx, "UPDATE captures SET start_time = ?, end_time = ?, "+strings.Join(countCols, " = ?, ")+
		" = ?, start_time_nsec = ?, end_time_nsec = ? WHERE id = ?", args...)
	return err
}

// fileRow is a capture_files row as a Capture of that file alone.
type fileRow struct {
	seq  int
	name string
	c    analyze.Capture
}

func readFiles(ctx context.Context, w interface {
	query(ctx context.Context, q string, args ...any) (rows, error)
}, capKey int64) ([]fileRow, error) {
	r, err := w.query(ctx, "SELECT seq, name, start_time, start_time_nsec, end_time, end_time_nsec, "+strings.Join(countCols, ", ")+
		" FROM capture_files WHERE capture = ? ORDER BY seq", capKey)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []fileRow
	for r.Next() {
		var f fileRow
		var start, end any
		var startN, endN int64
		var n [9]int64
		if err := r.Scan(&f.seq, &f.name, &start, &startN, &end, &endN, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7], &n[8]); err != nil {
			return nil, err
		}
		c := &f.c
		if c.Start, err = scanTime(start, startN); err != nil {
			return nil, err
		}
		if c.End, err = scanTime(end, endN); err != nil {
			return nil, err
		}
		f.name = decodeText(f.name)
		c.Files = []string{f.name}
		c.ConnectorMessages, c.ConnectorLost, c.AuditMessages, c.AuditEvents = uint64(n[0]), uint64(n[1]), uint64(n[2]), uint64(n[3])
		c.AuditLost, c.AuditGaps, c.ProcfsRecords, c.UnreadableBytes, c.SkippedLines = uint64(n[4]), uint64(n[5]), uint64(n[6]), n[7], n[8]
		out = append(out, f)
	}
	return out, r.Err()
}

// totals is the Capture of a set's files: their names in order, the
// span of them all, the messages summed; the losses are the recorder's
// counters, cumulative over a rotated set, so the largest is the total.
func totals(files []fileRow) analyze.Capture {
	var t analyze.Capture
	for _, f := range files {
		c := f.c
		t.Files = append(t.Files, f.name)
		if c.Start != 0 && (t.Start == 0 || c.Start < t.Start) {
			t.Start = c.Start
		}
		t.End = max(t.End, c.End)
		t.ConnectorMessages += c.ConnectorMessages
		t.ConnectorLost = max(t.ConnectorLost, c.ConnectorLost)
		t.AuditMessages += c.AuditMessages
		t.AuditEvents += c.AuditEvents
		t.AuditLost = max(t.AuditLost, c.AuditLost)
		t.AuditGaps += c.AuditGaps
		t.ProcfsRecords += c.ProcfsRecords
		t.UnreadableBytes += c.UnreadableBytes
		t.SkippedLines += c.SkippedLines
	}
	return t
}

func countVals(c analyze.Capture) []any {
	return []any{int64(c.ConnectorMessages), int64(c.ConnectorLost), int64(c.AuditMessages), int64(c.AuditEvents),
		int64(c.AuditLost), int64(c.AuditGaps), int64(c.ProcfsRecords), c.UnreadableBytes, c.SkippedLines}
}

// tv is db.timeVal, faster for SQLite: most times of a capture share
// their second with the one before.
func (l *loader) tv(ns int64) any {
	if l.db.d == postgres {
		return l.db.timeVal(ns)
	}
	sec := ns / 1e9
	if ns%1e9 < 0 {
		sec--
	}
	if l.secText == nil || sec != l.sec {
		l.sec = sec
		l.secText = time.Unix(sec, 0).UTC().AppendFormat(l.secText[:0], "2006-01-02T15:04:05")
	}
	frac := ns - sec*1e9
	var b [30]byte
	copy(b[:], l.secText)
	b[19], b[29] = '.', 'Z'
	for i := 28; i >= 20; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return string(b[:])
}

// otv is tv, or NULL for 0.
func (l *loader) otv(ns int64) any {
	if ns == 0 {
		return nil
	}
	return l.tv(ns)
}

// process converts a stored row back to analyze's form, without its
// execs, threads, files and children.
func (r *procRow) process() (*analyze.Process, error) {
	p := &analyze.Process{PID: r.pid, PPID: r.ppid, Start: r.start, End: r.end, CoreDumped: r.coreDumped, UID: -1,
		Comm: decodeText(r.comm), Exe: decodeText(r.exe), Cwd: decodeText(r.cwd), BeforeCapture: r.before, Command: r.command}
	if v, ok := r.exitCode.(int32); ok {
		p.Exited, p.ExitCode = true, int(v)
	}
	if v, ok := r.signal.(int32); ok {
		p.Exited, p.Signal = true, int(v)
	}
	if v, ok := r.uid.(int64); ok {
		p.UID = v
	}
	if v, ok := r.container.(string); ok {
		p.Container = decodeText(v)
	}
	var err error
	if p.Argv, err = decodeArgv(r.argv); err != nil {
		return nil, fmt.Errorf("process %d: argv: %w", r.id, err)
	}
	return p, nil
}
