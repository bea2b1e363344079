package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
)

// Merging the rows of one process seen in several files of a rotated
// set. Each file is analyzed alone, so a process alive across the end of
// a file is a row in each file it shows in, and the kernel's two sources
// race across the cut: the last audit records of a process may come after
// its exit (in the next file), and the first ones of a new process before
// its fork event (in the file before). The rows of one pid in a set,
// ordered by file, are merged two by two, x (the earlier) and y (the
// first row of that pid in the next file that has one), when every file
// between them is loaded and
//
//   - x was still running at the end of its last file (a continuation),
//     or y lies within lateSlack after x's end (x's late records, or x the
//     early records of y);
//   - and y does not start more than mergeSlack before x, unless x was
//     before_capture (then x's start is only when it was first seen).
//
// The merged row keeps x's id and parent. Its start is the exact one:
// the connector's times are to the nanosecond, audit's to the
// millisecond, so a start or end that is a whole millisecond comes from
// audit records, and one that is not from the connector's fork or exit.
// Its end and exit status are y's unless x's are exact and y's are not;
// its command line is y's when y exec'd or x knew none. Threads of the
// same tid are one, execs whose EXECVE record came in the next file get
// its exe and argv, and every time is brought within the merged life, as
// analyze brings them; what was left open is closed at its end.

// mergeSlack is how much earlier than the process it continues a
// process first seen in a later file may seem to start: a start time
// read from /proc/PID/stat counts clock ticks (10 ms), rounded down.
const mergeSlack = 20_000_000

// lateSlack bounds how long after a process's exit its last audit
// records may arrive: the reassembler's bound on an event's records.
const lateSlack = 2_000_000_000

// exact reports whether ns looks like a time of the process connector
// (nanoseconds) rather than of audit (whole milliseconds).
func exact(ns int64) bool { return ns%1_000_000 != 0 }

// mergeable reports whether y, the next row of x's pid, is x too.
func mergeable(x, y procRow) bool {
	if !x.before && y.start < x.start-mergeSlack {
		return false
	}
	return x.end == 0 || (y.start <= x.end+lateSlack && (y.end == 0 || y.end <= x.end+lateSlack))
}

// mergeRows is the row of a process seen first as x, then as y.
func mergeRows(x, y procRow, yExecs bool) procRow {
	m := x
	switch {
	case !y.before && exact(y.start) && !exact(x.start):
		m.start = y.start // x began with audit records, y with the fork
	case x.before && y.before:
		m.start = min(x.start, y.start) // the earlier is /proc's
	}
	m.before = x.before && y.before
	if y.end != 0 && (x.end == 0 || exact(y.end) || !exact(x.end)) {
		m.end, m.exitCode, m.signal, m.coreDumped = y.end, y.exitCode, y.signal, y.coreDumped
	}
	if m.parent == nil && y.parent != nil {
		m.parent, m.ppid = y.parent, y.ppid
	}
	if y.uid != nil {
		m.uid = y.uid
	}
	if y.comm != "" {
		m.comm = y.comm
	}
	if y.exe != "" && (yExecs || x.exe == "") {
		m.exe, m.argv, m.cwd = y.exe, y.argv, y.cwd
	}
	if m.container == nil {
		m.container = y.container
	}
	m.command = x.command || y.command
	m.firstSeq, m.lastSeq = min(x.firstSeq, y.firstSeq), max(x.lastSeq, y.lastSeq)
	return m
}

// candidate is a row of an earlier file that a process of this file
// continues, found before the walk: that process's rows are written with
// the candidate's id at once, and merge runs after the walk.
type candidate struct {
	row    procRow
	merged bool
	y      procRow
}

// candidates finds the rows of earlier files that processes of this
// one may continue in the common case, a file loaded after the one
// before it: for each pid, its latest row in the files before, when that
// row was still running at the end of its last file and every file
// between is loaded. A process of this file shown as before_capture
// with that pid is that row's process: while it runs, its pid is not
// reused.
func (l *loader) candidates(ctx context.Context) error {
	seq := l.id.seq
	open, err := l.procs(ctx, " WHERE capture = ? AND end_time IS NULL AND last_seq < ?", l.capKey, seq)
	if err != nil {
		return err
	}
	latestOpen := map[int32]procRow{}
	for _, p := range open {
		if q, ok := latestOpen[p.pid]; !ok || later(p, q) {
			latestOpen[p.pid] = p
		}
	}
	if len(latestOpen) == 0 {
		return nil
	}
	pids := make([]int32, 0, len(latestOpen))
	for pid := range latestOpen {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	latest := map[int32]procRow{}
	for chunk := range slices.Chunk(pids, 500) {
		args := []any{l.capKey, seq}
		for _, p := range chunk {
			args = append(args, p)
		}
		ps, err := l.procs(ctx, " WHERE capture = ? AND first_seq < ? AND pid IN ("+placeholders(len(chunk))+")", args...)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if q, ok := latest[p.pid]; !ok || later(p, q) {
				latest[p.pid] = p
			}
		}
	}
	l.cands = map[int32]*candidate{}
	for _, pid := range pids {
		p := latestOpen[pid]
		if latest[pid].id == p.id && l.between(int(p.lastSeq), seq) {
			l.cands[pid] = &candidate{row: p}
		}
	}
	return nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// procs reads the processes rows that where selects.
func (l *loader) procs(ctx context.Context, where string, args ...any) ([]procRow, error) {
	r, err := l.w.query(ctx, procSelect+where, args...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []procRow
	for r.Next() {
		p, err := scanProc(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, r.Err()
}

// later reports whether p started after q (then by id).
func later(p, q procRow) bool {
	return cmp.Or(cmp.Compare(p.start, q.start), cmp.Compare(p.id, q.id)) > 0
}

// between reports whether every file strictly between a and b is
// loaded.
func (l *loader) between(a, b int) bool {
	for s := a + 1; s < b; s++ {
		if !l.loaded[s] {
			return false
		}
	}
	return true
}

// applyMerges merges the processes visit wrote under a candidate's id.
func (l *loader) applyMerges(ctx context.Context) error {
	for _, c := range l.merges {
		if _, err := l.merge(ctx, c.row, c.y); err != nil {
			return err
		}
	}
	return nil
}

// mergePass makes one row of two that are the same process, beyond what
// visit did: the rows of a file loaded before the file before it, a file
// that fills the gap between two loaded ones, a process the next file
// does not show as before_capture (a late clone record names its creator
// there), late and early records. The rules are applied to whatever is
// loaded, so the rows do not depend on the order the files came in.
func (l *loader) mergePass(ctx context.Context) error {
	if len(l.loaded) < 2 {
		return nil
	}
	l.gone = map[int64]bool{}
	// Rows running at the end of their last file, each chained from its
	// first file on.
	open, err := l.procs(ctx, " WHERE capture = ? AND end_time IS NULL", l.capKey)
	if err != nil {
		return err
	}
	slices.SortFunc(open, func(a, b procRow) int {
		return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.firstSeq, b.firstSeq), cmp.Compare(a.start, b.start), cmp.Compare(a.id, b.id))
	})
	for _, x := range open {
		if err := l.mergeChain(ctx, x); err != nil {
			return err
		}
	}
	// Rows that ended near the end of this file or of the one before:
	// their late records, or the fork of their early ones, may be in the
	// next file.
	files, err := readFiles(ctx, l.w, l.capKey)
	if err != nil {
		return err
	}
	for _, f := range files {
		if (f.seq != l.id.seq && f.seq != l.id.seq-1) || f.c.End == 0 {
			continue
		}
		xs, err := l.procs(ctx, " WHERE capture = ? AND end_time >= ? AND last_seq = ? ORDER BY pid, start_time, start_time_nsec, id",
			l.capKey, l.db.timeVal(f.c.End-lateSlack), int32(f.seq))
		if err != nil {
			return err
		}
		for _, x := range xs {
			if err := l.mergeChain(ctx, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeChain merges into x the rows that are x too, one after the
// other.
func (l *loader) mergeChain(ctx context.Context, x procRow) error {
	if l.gone[x.id] {
		return nil
	}
	for {
		ys, err := l.procs(ctx, " WHERE capture = ? AND pid = ? AND first_seq > ? ORDER BY first_seq, start_time, start_time_nsec, id LIMIT 1",
			l.capKey, x.pid, x.lastSeq)
		if err != nil || len(ys) == 0 {
			return err
		}
		y := ys[0]
		if !l.between(int(x.lastSeq), int(y.firstSeq)) || !mergeable(x, y) {
			return nil
		}
		if x, err = l.merge(ctx, x, y); err != nil {
			return err
		}
	}
}

// merge makes rows x and y one, x's; y's row may be x's already (visit
// wrote its rows under x's id). Rows of x from y's files on are y's.
func (l *loader) merge(ctx context.Context, x, y procRow) (procRow, error) {
	if y.id != x.id {
		if err := l.moveRows(ctx, x.id, y.id); err != nil {
			return x, err
		}
	}
	l.res.Merged++
	yExecs, err := l.mergeExecs(ctx, x.id, y.firstSeq)
	if err != nil {
		return x, err
	}
	if err := l.mergeThreads(ctx, x.id, y.firstSeq); err != nil {
		return x, err
	}
	m := mergeRows(x, y, yExecs)
	if err := l.update(ctx, m); err != nil {
		return m, err
	}
	// Either row may be the one its file knew nothing of (a later file
	// of a rotated set has no snapshot: there a process from before is
	// first met as the parent of a fork): its children there forked
	// with no identity, whichever file is loaded first.
	if (unknown(x) || unknown(y)) && !yExecs && m.exe != "" {
		return m, l.inheritIdentity(ctx, x.id, m)
	}
	return m, nil
}

// moveRows gives process y's rows (paths, execs, threads, files, network,
// signals, children) to process x and deletes y.
func (l *loader) moveRows(ctx context.Context, x, y int64) error {
	w := l.w
	// y's paths: added to x's counts where x touched them too.
	if _, err := w.exec(ctx, `INSERT INTO process_paths (path, capture, process, accesses)
SELECT path, capture, ?, accesses FROM process_paths WHERE process = ?
ON CONFLICT (path, capture, process) DO UPDATE SET accesses = process_paths.accesses + excluded.accesses`, x, y); err != nil {
		return err
	}
	if _, err := w.exec(ctx, "DELETE FROM process_paths WHERE process = ?", y); err != nil {
		return err
	}
	for _, q := range []string{
		"UPDATE execs SET process = ? WHERE process = ?",
		"UPDATE threads SET process = ? WHERE process = ?",
		"UPDATE file_accesses SET process = ? WHERE process = ?",
		"UPDATE net SET process = ? WHERE process = ?",
		"UPDATE signals SET process = ? WHERE process = ?",
		"UPDATE processes SET parent = ? WHERE parent = ?",
	} {
		if _, err := w.exec(ctx, q, x, y); err != nil {
			return err
		}
	}
	if _, err := w.exec(ctx, "DELETE FROM processes WHERE id = ?", y); err != nil {
		return err
	}
	if l.gone != nil {
		l.gone[y] = true
	}
	return nil
}

// mergeExecs pairs the execs of process x from before file yFirst with
// those from it, which are y's, when they are halves of one exec cut by
// the file boundary; yExecs says whether y has execs of its own left.
func (l *loader) mergeExecs(ctx context.Context, x int64, yFirst int32) (yExecs bool, _ error) {
	w, db := l.w, l.db
	// An exec of x without its EXECVE record (the connector's event
	// came before the cut) takes the first execs of y made of audit
	// records alone (whole milliseconds), close after it.
	type execRow struct {
		seq, n         int32
		t              int64
		exe, argv, cwd string
	}
	var old, young []execRow
	r, err := w.query(ctx, "SELECT seq, n, exec_time, exec_time_nsec, exe, argv, cwd FROM execs WHERE process = ? ORDER BY seq, n", x)
	if err != nil {
		return false, err
	}
	for r.Next() {
		var e execRow
		var t any
		var tn int64
		if err := r.Scan(&e.seq, &e.n, &t, &tn, &e.exe, &e.argv, &e.cwd); err != nil {
			r.Close()
			return false, err
		}
		if e.t, err = scanTime(t, tn); err != nil {
			r.Close()
			return false, err
		}
		if e.seq < yFirst {
			old = append(old, e)
		} else {
			young = append(young, e)
		}
	}
	r.Close()
	if err := r.Err(); err != nil {
		return false, err
	}
	var blank []execRow
	for i := len(old) - 1; i >= 0 && old[i].exe == ""; i-- {
		blank = append([]execRow{old[i]}, blank...)
	}
	paired := 0
	for paired < len(blank) && paired < len(young) {
		b, e := blank[paired], young[paired]
		if e.exe == "" || exact(e.t) || e.t > b.t+lateSlack {
			break
		}
		if _, err := w.exec(ctx, "UPDATE execs SET exe = ?, argv = ?, cwd = ? WHERE process = ? AND seq = ? AND n = ?", e.exe, e.argv, e.cwd, x, b.seq, b.n); err != nil {
			return false, err
		}
		if _, err := w.exec(ctx, "DELETE FROM execs WHERE process = ? AND seq = ? AND n = ?", x, e.seq, e.n); err != nil {
			return false, err
		}
		paired++
	}
	// And the other way round: an exec of x made of audit records alone
	// (whole milliseconds; its connector event came after the cut) is the
	// first exact exec of y close to it, when y's names nothing else: it
	// keeps x's exe, argv and cwd and takes the connector's time.
	if paired == 0 {
		var audited []execRow
		for i := len(old) - 1; i >= 0 && old[i].exe != "" && !exact(old[i].t); i-- {
			audited = append([]execRow{old[i]}, audited...)
		}
		for paired < len(audited) && paired < len(young) {
			a, e := audited[paired], young[paired]
			if !exact(e.t) || (e.exe != "" && e.exe != a.exe) || e.t > a.t+lateSlack || a.t > e.t+lateSlack {
				break
			}
			if _, err := w.exec(ctx, "UPDATE execs SET exec_time = ?, exec_time_nsec = ? WHERE process = ? AND seq = ? AND n = ?", db.timeVal(e.t), nsecVal(e.t), x, a.seq, a.n); err != nil {
				return false, err
			}
			if _, err := w.exec(ctx, "DELETE FROM execs WHERE process = ? AND seq = ? AND n = ?", x, e.seq, e.n); err != nil {
				return false, err
			}
			paired++
		}
	}
	return len(young) > paired, nil
}

// mergeThreads makes the rows of one task of process x, one from before
// file yFirst and one from it, one row: the first, from the earliest
// start to the latest end (none while running).
func (l *loader) mergeThreads(ctx context.Context, x int64, yFirst int32) error {
	w, db := l.w, l.db
	type threadRow struct {
		seq, n     int32
		tid        int32
		start, end int64
	}
	var ts []threadRow
	r, err := w.query(ctx, "SELECT seq, n, tid, start_time, start_time_nsec, end_time, end_time_nsec FROM threads WHERE process = ? ORDER BY seq, n", x)
	if err != nil {
		return err
	}
	for r.Next() {
		var t threadRow
		var s, e any
		var sn, en int64
		if err := r.Scan(&t.seq, &t.n, &t.tid, &s, &sn, &e, &en); err != nil {
			r.Close()
			return err
		}
		if t.start, err = scanTime(s, sn); err != nil {
			r.Close()
			return err
		}
		if t.end, err = scanTime(e, en); err != nil {
			r.Close()
			return err
		}
		ts = append(ts, t)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return err
	}
	first := map[int32]int{}
	for i, t := range ts {
		j, ok := first[t.tid]
		if !ok {
			first[t.tid] = i
			continue
		}
		if t.seq < yFirst || ts[j].seq >= yFirst {
			continue // two tasks of one file with one tid: analyze's to tell
		}
		o := &ts[j]
		o.start = min(o.start, t.start)
		switch {
		case o.end == 0:
			o.end = t.end
		case t.end != 0:
			o.end = max(o.end, t.end)
		}
		if _, err := w.exec(ctx, "UPDATE threads SET start_time = ?, start_time_nsec = ?, end_time = ?, end_time_nsec = ? WHERE process = ? AND seq = ? AND n = ?",
			db.timeVal(o.start), nsecVal(o.start), db.optTimeVal(o.end), nsecVal(o.end), x, o.seq, o.n); err != nil {
			return err
		}
		if _, err := w.exec(ctx, "DELETE FROM threads WHERE process = ? AND seq = ? AND n = ?", x, t.seq, t.n); err != nil {
			return err
		}
	}
	return nil
}

// unknown reports whether r's file knew nothing of what its process ran.
func unknown(r procRow) bool { return r.exe == "" && r.comm == "" && r.cwd == "" }

// inheritIdentity gives m's identity to the children of x that forked
// from it while its file knew nothing of it, as analyze resolves a
// child's identity from its parent's once the parent is known: children
// with no identity of their own (no exec, no procfs record, no audit
// record that named them), and theirs in turn.
func (l *loader) inheritIdentity(ctx context.Context, x int64, m procRow) error {
	parents := []int64{x}
	for len(parents) > 0 {
		p := parents[0]
		parents = parents[1:]
		r, err := l.w.query(ctx, `SELECT id FROM processes WHERE parent = ? AND exe = '' AND comm = '' AND cwd = '' AND argv = '[]'
AND NOT before_capture AND NOT EXISTS (SELECT 1 FROM execs WHERE execs.process = processes.id) ORDER BY id`, p)
		if err != nil {
			return err
		}
		var ids []int64
		for r.Next() {
			var id int64
			if err := r.Scan(&id); err != nil {
				r.Close()
				return err
			}
			ids = append(ids, id)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := l.w.exec(ctx, "UPDATE processes SET comm = ?, exe = ?, argv = ?, cwd = ? WHERE id = ?", m.comm, m.exe, m.argv, m.cwd, id); err != nil {
				return err
			}
		}
		parents = append(parents, ids...)
	}
	return nil
}

// update writes a merged row, and brings the times of its execs,
// threads and accesses within its life; what it left open is closed at
// its end.
func (l *loader) update(ctx context.Context, m procRow) error {
	db, w := l.db, l.w
	if _, err := w.exec(ctx, `UPDATE processes SET start_time = ?, start_time_nsec = ?, end_time = ?, end_time_nsec = ?, ppid = ?, parent = ?,
exit_code = ?, signal = ?, core_dumped = ?, uid = ?, comm = ?, exe = ?, argv = ?, cwd = ?, before_capture = ?, container = ?, command = ?,
first_seq = ?, last_seq = ? WHERE id = ?`,
		db.timeVal(m.start), nsecVal(m.start), db.optTimeVal(m.end), nsecVal(m.end), m.ppid, m.parent, m.exitCode, m.signal,
		m.coreDumped, m.uid, m.comm, m.exe, m.argv, m.cwd, m.before, m.container, m.command, m.firstSeq, m.lastSeq, m.id); err != nil {
		return err
	}
	// (time, nsec) pairs compare as the time, then the nanoseconds.
	before := func(c string) string { return "(" + c + " < ? OR (" + c + " = ? AND " + c + "_nsec < ?))" }
	after := func(c string) string { return "(" + c + " > ? OR (" + c + " = ? AND " + c + "_nsec > ?))" }
	start, startN := db.timeVal(m.start), nsecVal(m.start)
	for _, c := range [][2]string{{"file_accesses", "open_time"}, {"file_accesses", "close_time"}, {"execs", "exec_time"}, {"threads", "start_time"}, {"threads", "end_time"}, {"signals", "signal_time"}} {
		if _, err := w.exec(ctx, "UPDATE "+c[0]+" SET "+c[1]+" = ?, "+c[1]+"_nsec = ? WHERE process = ? AND "+before(c[1]),
			start, startN, m.id, start, start, startN); err != nil {
			return err
		}
	}
	if m.end == 0 {
		return nil
	}
	end, endN := db.timeVal(m.end), nsecVal(m.end)
	for _, c := range [][2]string{{"file_accesses", "open_time"}, {"execs", "exec_time"}, {"threads", "start_time"}, {"signals", "signal_time"}} {
		if _, err := w.exec(ctx, "UPDATE "+c[0]+" SET "+c[1]+" = ?, "+c[1]+"_nsec = ? WHERE process = ? AND "+after(c[1]),
			end, endN, m.id, end, end, endN); err != nil {
			return err
		}
	}
	for _, c := range [][2]string{{"file_accesses", "close_time"}, {"threads", "end_time"}} {
		if _, err := w.exec(ctx, "UPDATE "+c[0]+" SET "+c[1]+" = ?, "+c[1]+"_nsec = ? WHERE process = ? AND ("+c[1]+" IS NULL OR "+after(c[1])+")",
			end, endN, m.id, end, end, endN); err != nil {
			return err
		}
	}
	return nil
}
