package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"proctrail/analyze"
	"proctrail/replay"
)

// LoadResult says what Load did with one file.
type LoadResult struct {
	File      string
	CaptureID string
	Source    string // SourceRecord, SourceImport or SourceAuditd
	Seq       int
	// Loaded is false when the file had been loaded before, with the same
	// content: nothing changed.
	Loaded bool
	// Replaced is set when an auditd log or an imported capture had been
	// loaded before with other content (a log that grew since): the
	// earlier load was replaced by this one.
	Replaced bool
	// Rows added per table; Merged counts the rows merged into a row of
	// another file of the set (the same process; see Load).
	Processes, Merged, Execs, Threads, FileAccesses, Paths int64
	// Capture is the analysis's account of the file: its span, messages
	// and losses (zero when the file was not loaded).
	Capture analyze.Capture
	// Logs tells what was skipped in an auditd log.
	Logs []replay.LogStats
}

// ErrChanged is returned by Load for a recording's file that was loaded
// before with other content: most likely it was loaded while the
// recorder was still writing it.
var ErrChanged = errors.New("store: file loaded before with other content")

// Load loads one capture file or auditd log into the database, in one
// transaction: a failure or a kill leaves the database as it was.
//
// The file is analyzed alone (analyze.Walk, no filter) and streamed into
// the tables, a batch at a time: memory stays what the analysis needs.
// Loading a file already loaded with the same content changes nothing;
// loaders of the same capture set wait for each other (PostgreSQL: an
// advisory lock per set; SQLite: one writer at a time), and those of
// different sets run at once on PostgreSQL.
//
// The files of a rotated set may come one at a time and in any order: a
// process alive across the end of one file shows in the next as
// before_capture, and is merged into the row of the file before when
// that row has the same pid, was still running at the end of its last
// file, is the latest of that pid, every file between the two is loaded,
// and its start is no later than the new row's (within 20 ms: a start
// from /proc is in clock ticks). The merged row keeps the first row's
// identity, start and parent, and takes the later row's end, exit and
// (when it exec'd) command; the accesses and threads it left open get
// its end, as analyze closes them at exit.
func (db *DB) Load(ctx context.Context, file string) (*LoadResult, error) {
	if db.ro {
		return nil, errors.New("store: the database is open read-only")
	}
	// A recorder only ever appends to a file and never writes it again
	// once closed: a file of a recording whose set and sequence number
	// are loaded with the same size is that file, unchanged, and is not
	// read again (the systemd units offer every file at each change).
	if cid, seq, size, ok := recordingID(file); ok {
		var n int
		err := db.sql.QueryRowContext(ctx, db.rebind(`SELECT count(*) FROM capture_files f JOIN captures c ON c.id = f.capture
WHERE c.capture_id = ? AND f.seq = ? AND f.bytes = ?`), cid, int32(seq), size).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("store: load %s: %w", file, err)
		}
		if n > 0 {
			return &LoadResult{File: file, CaptureID: cid, Source: SourceRecord, Seq: seq}, nil
		}
	}
	id, err := identify(file)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		res := &LoadResult{File: file, CaptureID: id.captureID, Source: id.source, Seq: id.seq}
		err := db.withTx(ctx, func(w wtx) error {
			if err := w.lockCapture(ctx, id.captureID); err != nil {
				return err
			}
			l := &loader{db: db, w: w, id: id, res: res}
			return l.run(ctx)
		})
		if err != nil && retryable(err) && attempt < 5 {
			continue // a deadlock or serialization failure: the work is undone, run it again
		}
		if err != nil {
			if errors.Is(err, ErrChanged) {
				return nil, err
			}
			return nil, fmt.Errorf("store: load %s: %w", file, err)
		}
		if res.Loaded && res.Processes+res.FileAccesses >= analyzeRows {
			db.analyze(ctx)
		}
		return res, nil
	}
}

// analyzeRows is how many rows a load adds before it refreshes the
// planner's statistics: right after a bulk load they would be stale,
// and the planner would scan where an index answers at once.
const analyzeRows = 10_000

// analyze refreshes the planner's statistics. A failure is not the
// load's: autovacuum (PostgreSQL) or the next load does it later.
func (db *DB) analyze(ctx context.Context) {
	if db.d == postgres {
		db.sql.ExecContext(ctx, "ANALYZE processes, execs, threads, paths, file_accesses, process_paths")
		return
	}
	// A sample of 1,000 rows per index: fast on any size.
	if conn, err := db.sql.Conn(ctx); err == nil {
		conn.ExecContext(ctx, "PRAGMA analysis_limit = 1000")
		conn.ExecContext(ctx, "PRAGMA optimize = 0x10002")
		conn.Close()
	}
}

// testHookBeforeCommit, when set (by tests only), runs when a load has
// written everything and not committed yet.
var testHookBeforeCommit func()

// loader is one load of one file, within its transaction.
type loader struct {
	db  *DB
	w   wtx
	id  *fileID
	res *LoadResult
	b   *bulk

	capKey int64 // captures.id
	found  bool  // the set had files loaded before
	loaded map[int]bool
	cap    analyze.Capture

	// Process ids: SQLite counts on from the largest, under its write
	// lock; PostgreSQL takes blocks from the sequence.
	nextID, lastID int64

	// stack is the path from a root to the process visited last, as
	// Walk goes depth first: a parent's id is found there.
	stack []stackEntry

	// cands are the rows of earlier files a process of this one may
	// continue, by pid; merges those continued, in order.
	cands  map[int32]*candidate
	merges []*candidate
	gone   map[int64]bool // rows merged away by mergePass

	sec     int64 // tv's cache: the second last formatted, as text
	secText []byte

	paths pathIDs
	files []pendingFile // file accesses waiting for their paths' ids
	// adds are the process_paths rows of processes merged into a row of
	// an earlier file (which may have touched the same paths): added to,
	// not inserted.
	adds   []touchRow
	unseen int // paths of files not yet resolved
}

type stackEntry struct {
	p  *analyze.Process
	id int64
}

type pendingFile struct {
	process int64
	n       int32
	f       analyze.File
}

func (l *loader) run(ctx context.Context) error {
	if already, err := l.lookup(ctx); err != nil || already {
		return err
	}
	src, err := replay.Open([]string{l.id.name}, nil)
	if err != nil {
		return err
	}
	defer src.Close()
	l.b = newBulk(ctx, l.w)
	defer l.b.close()
	if err := analyze.Walk(src, nil, func(c analyze.Capture, conts []analyze.Container) error {
		return l.head(ctx, c, conts)
	}, func(p, parent *analyze.Process, files iter.Seq[*analyze.File], net iter.Seq[*analyze.NetEntry]) error {
		return l.visit(ctx, p, parent, files, net)
	}); err != nil {
		return err
	}
	l.res.Capture, l.res.Logs = l.cap, src.Info().Logs
	if err := l.resolveFiles(ctx); err != nil {
		return err
	}
	if err := l.b.sync(); err != nil {
		return err
	}
	for t, n := range l.b.rows {
		switch t {
		case "processes":
			l.res.Processes = n
		case "execs":
			l.res.Execs = n
		case "threads":
			l.res.Threads = n
		case "file_accesses":
			l.res.FileAccesses = n
		case "paths":
			l.res.Paths = n
		}
	}
	if err := l.addTouches(ctx); err != nil {
		return err
	}
	if err := l.applyMerges(ctx); err != nil {
		return err
	}
	l.loaded[l.id.seq] = true
	if err := l.addFile(ctx); err != nil {
		return err
	}
	if err := l.mergePass(ctx); err != nil {
		return err
	}
	if testHookBeforeCommit != nil {
		testHookBeforeCommit()
	}
	l.res.Loaded = true
	return nil
}

// lookup finds the set and the files of it loaded before, and reports
// whether this very file was.
func (l *loader) lookup(ctx context.Context) (already bool, err error) {
	l.loaded = map[int]bool{}
	r, err := l.w.query(ctx, "SELECT id FROM captures WHERE capture_id = ?", l.id.captureID)
	if err != nil {
		return false, err
	}
	for r.Next() {
		if err := r.Scan(&l.capKey); err != nil {
			r.Close()
			return false, err
		}
		l.found = true
	}
	r.Close()
	if err := r.Err(); err != nil || !l.found {
		return false, err
	}
	r, err = l.w.query(ctx, "SELECT seq, sha256, name FROM capture_files WHERE capture = ?", l.capKey)
	if err != nil {
		return false, err
	}
	var same, other bool
	var otherSum, otherName string
	for r.Next() {
		var seq int
		var sum, name string
		if err := r.Scan(&seq, &sum, &name); err != nil {
			r.Close()
			return false, err
		}
		l.loaded[seq] = true
		if seq == l.id.seq {
			same = sum == l.id.sha256
			other, otherSum, otherName = !same, sum, decodeText(name)
		}
	}
	r.Close()
	if err := r.Err(); err != nil {
		return false, err
	}
	switch {
	case same:
		return true, nil
	case other && l.id.source == SourceRecord:
		return false, fmt.Errorf("%w: %s is file %d of capture %s, loaded before from %s with other content (sha256 %s…, now %s…); it was probably loaded while the recorder still wrote it: load the files of a set once they are closed (a rotated file is closed when the next one starts)",
			ErrChanged, l.id.name, l.id.seq, l.id.captureID, otherName, otherSum[:12], l.id.sha256[:12])
	case other:
		// An auditd log that grew, or an import made again: the set is
		// this one file, and its new content replaces the old.
		l.res.Replaced = true
		if err := l.deleteCapture(ctx); err != nil {
			return false, err
		}
		l.found, l.loaded = false, map[int]bool{}
	}
	return false, nil
}

// deleteCapture removes the set and everything of it.
func (l *loader) deleteCapture(ctx context.Context) error {
	for _, q := range []string{
		"DELETE FROM file_accesses WHERE capture = ?",
		"DELETE FROM net WHERE capture = ?",
		"DELETE FROM signals WHERE capture = ?",
		"DELETE FROM process_paths WHERE capture = ?",
		"DELETE FROM execs WHERE process IN (SELECT id FROM processes WHERE capture = ?)",
		"DELETE FROM threads WHERE process IN (SELECT id FROM processes WHERE capture = ?)",
		"DELETE FROM processes WHERE capture = ?",
		"DELETE FROM paths WHERE capture = ?",
		"DELETE FROM containers WHERE capture = ?",
		"DELETE FROM capture_files WHERE capture = ?",
		"DELETE FROM captures WHERE id = ?",
	} {
		if _, err := l.w.exec(ctx, q, l.capKey); err != nil {
			return err
		}
	}
	return nil
}

// head runs when the analysis is done, before the first process: it
// makes the set's row if it is new, adds the containers, and prepares
// the ids and the merges.
func (l *loader) head(ctx context.Context, c analyze.Capture, conts []analyze.Container) error {
	l.cap = c
	db := l.db
	if !l.found {
		q := "INSERT INTO captures (capture_id, source, host, kernel, start_time, end_time, " + strings.Join(countCols, ", ") +
			", start_time_nsec, end_time_nsec) VALUES (?, ?, ?, ?, ?, ?, " + strings.TrimSuffix(strings.Repeat("?, ", len(countCols)), " ") + " ?, ?) RETURNING id"
		args := []any{l.id.captureID, l.id.source, encodeText(c.Host), encodeText(c.Kernel), db.optTimeVal(c.Start), db.optTimeVal(c.End)}
		args = append(args, countVals(c)...)
		args = append(args, nsecVal(c.Start), nsecVal(c.End))
		r, err := l.w.query(ctx, q, args...)
		if err != nil {
			return err
		}
		for r.Next() {
			if err := r.Scan(&l.capKey); err != nil {
				r.Close()
				return err
			}
		}
		r.Close()
		if err := r.Err(); err != nil {
			return err
		}
	}
	for _, ct := range conts {
		// A container seen in several files: the first rootfs and
		// runtime known stay.
		if _, err := l.w.exec(ctx, `INSERT INTO containers (capture, id, runtime, rootfs) VALUES (?, ?, ?, ?)
ON CONFLICT (capture, id) DO UPDATE SET
  runtime = CASE WHEN containers.runtime = 'unknown' THEN excluded.runtime ELSE containers.runtime END,
  rootfs = CASE WHEN containers.rootfs = '' THEN excluded.rootfs ELSE containers.rootfs END`,
			l.capKey, encodeText(ct.ID), encodeText(ct.Runtime), encodeText(ct.Rootfs)); err != nil {
			return err
		}
	}
	if db.d == sqlite {
		r, err := l.w.query(ctx, "SELECT coalesce(max(id), 0) FROM processes")
		if err != nil {
			return err
		}
		for r.Next() {
			if err := r.Scan(&l.nextID); err != nil {
				r.Close()
				return err
			}
		}
		r.Close()
		if err := r.Err(); err != nil {
			return err
		}
		l.nextID++
		l.lastID = 1<<63 - 1
	}
	if err := l.paths.init(ctx, l); err != nil {
		return err
	}
	if l.found {
		return l.candidates(ctx)
	}
	return nil
}

var countCols = []string{"connector_messages", "connector_lost", "audit_messages", "audit_events", "audit_lost", "audit_gaps", "procfs_records", "unreadable_bytes", "skipped_lines"}

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

// newID returns the id of a new process row.
func (l *loader) newID(ctx context.Context) (int64, error) {
	if l.nextID > l.lastID || l.nextID == 0 {
		// A block of ids from the sequence, on a connection of the pool:
		// sequences are not transactional, and the load's connection
		// may be busy writing.
		rs, err := l.db.sql.QueryContext(ctx, "SELECT nextval(pg_get_serial_sequence('processes', 'id')) FROM generate_series(1, 4096)")
		if err != nil {
			return 0, err
		}
		var ids []int64
		for rs.Next() {
			var v int64
			if err := rs.Scan(&v); err != nil {
				rs.Close()
				return 0, err
			}
			ids = append(ids, v)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return 0, err
		}
		slices.Sort(ids)
		// The block is contiguous unless another loader took ids at the
		// same time: use its longest run from the start.
		n := 1
		for n < len(ids) && ids[n] == ids[n-1]+1 {
			n++
		}
		l.nextID, l.lastID = ids[0], ids[n-1]
	}
	id := l.nextID
	l.nextID++
	return id, nil
}

// visit writes one process, or merges it into the row it continues.
func (l *loader) visit(ctx context.Context, p, parent *analyze.Process, files iter.Seq[*analyze.File], net iter.Seq[*analyze.NetEntry]) error {
	for len(l.stack) > 0 && l.stack[len(l.stack)-1].p != parent {
		l.stack = l.stack[:len(l.stack)-1]
	}
	var parentID any
	if parent != nil {
		if len(l.stack) == 0 {
			return errors.New("analyze.Walk gave a parent that was not visited before its child")
		}
		parentID = l.stack[len(l.stack)-1].id
	}
	row := l.procRow(p, parentID)
	var id int64
	merged := false
	if c := l.cands[p.PID]; c != nil && p.BeforeCapture && !c.merged && mergeable(c.row, row) {
		merged = true
		// It continues a row of an earlier file: its rows go under that
		// row's id, and merge makes one row of the two after the walk.
		id, c.merged, c.y = c.row.id, true, row
		c.y.id = id
		l.merges = append(l.merges, c)
	} else {
		var err error
		if id, err = l.newID(ctx); err != nil {
			return err
		}
		row.id = id
		if err := l.b.add("processes", procCols, l.procVals(&row)...); err != nil {
			return err
		}
	}
	l.stack = append(l.stack, stackEntry{p, id})
	seq := int32(l.id.seq)
	for i, x := range p.Execs {
		if err := l.b.add("execs", execCols, id, seq, int32(i), l.tv(x.Time), encodeText(x.Exe),
			encodeArgv(x.Argv), encodeText(x.Cwd), nsecVal(x.Time), x.Fileless); err != nil {
			return err
		}
	}
	for i, sg := range p.Signals {
		var sig, tpid, tstart, tcomm any
		if sg.Op != "ptrace" {
			sig = sg.Signal
		}
		if sg.TargetPID != 0 {
			tpid, tstart, tcomm = sg.TargetPID, l.otv(sg.TargetStart), encodeText(sg.TargetComm)
		}
		if err := l.b.add("signals", signalCols, l.capKey, id, seq, int32(i), encodeText(sg.Op), l.tv(sg.Time), sg.PID, sig,
			optText(sg.Request), tpid, tstart, tcomm, optText(sg.Error), nsecVal(sg.Time), nsecVal(sg.TargetStart)); err != nil {
			return err
		}
	}
	for i, t := range p.Threads {
		if err := l.b.add("threads", threadCols, id, seq, int32(i), t.TID, l.tv(t.Start), l.otv(t.End),
			nsecVal(t.Start), nsecVal(t.End)); err != nil {
			return err
		}
	}
	if net != nil {
		n := int32(0)
		for e := range net {
			var addr, port any
			if e.Addr != "" {
				addr = e.Addr
			}
			if e.Port != 0 || e.Addr != "" {
				port = int64(e.Port)
			}
			var path any
			if e.Path != "" {
				path = encodeText(e.Path)
			}
			if err := l.b.add("net", netCols, l.capKey, id, seq, n, encodeText(e.Op), encodeText(e.Family),
				addr, port, path, l.tv(e.Time), optText(e.Error), nsecVal(e.Time), optText(e.Proto)); err != nil {
				return err
			}
			n++
		}
	}
	if files == nil {
		return nil
	}
	// The accesses come from the spool one at a time: a process with
	// millions of them is never held whole, only its paths' counts.
	var counts map[string]int64
	n := int32(0)
	for f := range files {
		l.files = append(l.files, pendingFile{process: id, n: n, f: *f})
		n++
		if !l.paths.known(f.Path) {
			l.unseen++
		}
		if f.To != "" && !l.paths.known(f.To) {
			l.unseen++
		}
		if counts == nil {
			counts = map[string]int64{}
		}
		counts[f.Path]++
		if f.To != "" && f.To != f.Path {
			counts[f.To]++
		}
		if len(l.files) >= bulkRows || l.unseen >= pathBatch {
			if err := l.resolveFiles(ctx); err != nil {
				return err
			}
		}
	}
	// In path order: the rows do not depend on map order.
	for _, path := range slices.Sorted(maps.Keys(counts)) {
		if merged {
			l.adds = append(l.adds, touchRow{process: id, path: encodeText(path), n: counts[path]})
			continue
		}
		if err := l.b.add("process_paths", touchCols, encodeText(path), l.capKey, id, counts[path]); err != nil {
			return err
		}
	}
	return nil
}

var (
	procCols   = tableColumns("processes")
	execCols   = tableColumns("execs")
	thrCols    = tableColumns("threads")
	fileCols   = tableColumns("file_accesses")
	signalCols = tableColumns("signals")
	pathCols   = tableColumns("paths")
	touchCols  = tableColumns("process_paths")
	netCols    = tableColumns("net")
)

var threadCols = thrCols

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
