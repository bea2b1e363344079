package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

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
	src, err := replay.Open([]string{l.id.name}, &replay.Options{AuditTexts: analyze.ReadsAuditText})
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
